/**
 * The receiver docs/events.md shows, run as a reader would run it (plain node, its own process),
 * fed by the gateway's webhook: it accepts what the gateway signs, each event once, and refuses
 * a forged signature and a replayed (old) delivery.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { signDelivery, Webhook } from '../../src/ops/webhook.js'
import { ROOT } from '../helpers/cli.js'

const SECRET = 'the-receivers-shared-secret-0123'

function example(): string {
  const page = readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8')
  const block = /<!-- example:receiver:start -->\s*```js\n([\s\S]*?)```\s*<!-- example:receiver:end -->/.exec(page)
  if (!block) throw new Error('docs/events.md: the receiver example block is missing')
  return block[1]!
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('the documented receiver accepts signed deliveries once per event and refuses forged or old ones', async (t) => {
  const file = join(t.testdir(), 'receiver.mjs')
  writeFileSync(file, example())
  const port = await freePort()
  const child = spawn(process.execPath, [file], { env: { EVENTS_SECRET: SECRET, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill())
  const printed: string[] = []
  const waiters = new Set<() => void>()
  createInterface({ input: child.stdout }).on('line', (line) => {
    printed.push(line)
    for (const w of waiters) w()
  })
  const url = `http://127.0.0.1:${port}/`
  // Ready when it answers (a refusal of an unsigned request is an answer).
  for (let i = 0; i < 100; i++) {
    const up = await fetch(url, { method: 'POST', body: '{}' }).then(
      (r) => r.status,
      () => 0,
    )
    if (up !== 0) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  const delivered: number[] = []
  const hook = new Webhook(
    { url, secret: SECRET, timeout: 2000 },
    {
      log: { warn() {}, error() {} },
      counters: { eventsDelivered: (n) => delivered.push(n), eventDeliveryRetried() {}, eventsDropped() {} },
    },
  )
  const event = (id: string) =>
    JSON.stringify({ id, type: 'session.ended', time: new Date().toISOString(), data: { sessionId: 's', reason: 'admin' } })
  hook.push(event('a'))
  hook.push(event('b'))
  hook.push(event('a')) // a retried delivery's event, seen again
  await hook.close()
  t.same(delivered, [3], 'the delivery was accepted')
  const body = `{"events":[${event('c')}]}`
  const post = (timestamp: number, signature: string) =>
    fetch(url, { method: 'POST', body, headers: { 'x-portcullis-timestamp': String(timestamp), 'x-portcullis-signature': signature } }).then(
      (r) => r.status,
    )
  const now = Math.floor(Date.now() / 1000)
  t.equal(await post(now, signDelivery(SECRET, now, body)), 204, 'a fresh, signed delivery is accepted')
  t.equal(await post(now, signDelivery('some-other-secret-000000', now, body)), 401, 'another secret is refused')
  t.equal(await post(now - 600, signDelivery(SECRET, now - 600, body)), 401, 'a ten-minute-old delivery is refused as a replay')
  t.equal(await post(now + 1, signDelivery(SECRET, now, body)), 401, 'a timestamp moved after signing is refused')
  // The last event printed is c's: every line before it is in.
  const ids = await new Promise<string[]>((resolve) => {
    const check = () => {
      const seen = printed.map((l) => String(JSON.parse(l).id))
      if (seen.includes('c')) resolve(seen)
    }
    waiters.add(check)
    check()
  })
  t.same(ids, ['a', 'b', 'c'], 'each event printed once, a repeated id skipped')
})
