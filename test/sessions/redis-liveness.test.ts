/**
 * The connection watchdog (src/sessions/redis-liveness.ts) against a real redis-server that
 * stalls (SIGSTOP) for longer than the watchdog's deadline, then resumes (SIGCONT).
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { watchLiveness } from '../../src/sessions/redis-liveness.js'
import { startRedis } from '../helpers/redis.js'

const INTERVAL = 100
const DEADLINE = 300

t.test('a subscriber dropped after a stall is reconnected once, then pinged again and left alone', async (t) => {
  const redis = await startRedis(t)
  // The revocation subscriber's settings (src/sessions/redis-client.ts): no command timeout, so
  // a PING sent into the stall is never answered on the connection it was sent on.
  const sub = new Redis(redis.url, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    retryStrategy: () => 50,
    disconnectTimeout: 100,
  })
  sub.on('error', () => {})
  t.teardown(() => sub.disconnect())
  let drops = 0
  watchLiveness(sub, { interval: INTERVAL, deadline: DEADLINE, onDrop: () => drops++ })
  await sub.subscribe('ch')
  await sleep(INTERVAL * 3)
  t.equal(drops, 0, 'a healthy, quiet subscriber is not dropped')

  redis.pause()
  await sleep(DEADLINE * 3)
  redis.resume()
  t.ok(drops >= 1, 'the stalled connection was dropped')
  await until(() => sub.status === 'ready')
  const settled = drops
  const pingsBefore = await pingsServed(redis.port)
  await sleep(DEADLINE * 5)
  t.equal(drops, settled, 'after the stall, no further drops: the watchdog keeps pinging the new connection')
  t.ok((await pingsServed(redis.port)) - pingsBefore >= 5, 'and Redis keeps receiving its PINGs')
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(20)
  }
}

/** PINGs the server has answered so far, from INFO commandstats. */
async function pingsServed(port: number): Promise<number> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true })
  await probe.connect()
  try {
    const stats = await probe.info('commandstats')
    return Number(/cmdstat_ping:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  } finally {
    probe.disconnect()
  }
}
