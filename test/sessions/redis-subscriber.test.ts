/**
 * The revocation subscriber of src/sessions/redis-client.ts against a real redis-server that
 * refuses its SUBSCRIBE after a reconnect (an ACL change): the refusal reaches the error
 * handler, never the process as an unhandled rejection (which would end a gateway).
 */
import { once } from 'node:events'
import { Redis } from 'ioredis'
import t from 'tap'
import { createRedisClients } from '../../src/sessions/redis-client.js'
import { startRedis } from '../helpers/redis.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a SUBSCRIBE refused after a reconnect is no unhandled rejection', async (t) => {
  const redis = await startRedis(t)
  const store = { type: 'redis', url: redis.url, keyPrefix: 'p:', commandTimeout: 500 } as Parameters<typeof createRedisClients>[0]
  const errors: string[] = []
  const { client, subscriber } = createRedisClients(store, (err) => errors.push(String(err)))
  const sub = subscriber()
  t.teardown(() => {
    sub.disconnect()
    client.disconnect()
  })
  await sub.subscribe('ch')
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => void process.off('unhandledRejection', onUnhandled))

  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', 'default', '-subscribe')
  const reconnected = once(sub, 'ready')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  // Reconnecting takes 100 ms (the backoff's second step).
  t.ok(await Promise.race([reconnected.then(() => true), sleep(2000).then(() => false)]), 'the subscriber reconnected')
  const refused = await sub.subscribe('ch').then(
    () => 'subscribed',
    (err: Error) => err.message,
  )
  t.match(refused, /NOPERM/, 'and a SUBSCRIBE is now refused')
  await sleep(200)
  t.same(unhandled, [], 'nothing rejected unhandled')
})
