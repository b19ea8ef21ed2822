/**
 * The security events webhook against real receivers on loopback: failing at first, refusing,
 * down for good, and at shutdown. Backoff is shortened through its options, never slept out.
 */
import { createServer } from 'node:net'
import t from 'tap'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { Webhook, type DeliveryOptions, type DropReason, type RetryReason, type WebhookSettings } from '../../src/ops/webhook.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { value } from './prometheus.js'

const SECRET = 'a-webhook-secret-of-32-characters'
const FAST: DeliveryOptions = { backoffBase: 20, backoffMax: 100 }
const quiet = { warn() {}, error() {} }

/** GatewayMetrics, plus a way to wait until a counter has moved (the webhook works in the background). */
function counting() {
  const metrics = new GatewayMetrics()
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const w of waiters) w()
  }
  const counters = {
    eventsDelivered(n: number) {
      metrics.eventsDelivered(n)
      wake()
    },
    eventDeliveryRetried(r: RetryReason) {
      metrics.eventDeliveryRetried(r)
      wake()
    },
    eventsDropped(r: DropReason, n: number) {
      metrics.eventsDropped(r, n)
      wake()
    },
  }
  const read = async (name: string, labels: Record<string, string> = {}) => value(await metrics.registry.metrics(), name, labels) ?? 0
  const until = (name: string, labels: Record<string, string>, atLeast: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} ${JSON.stringify(labels)} did not reach ${atLeast}`)), 5000)
      const check = () =>
        void read(name, labels).then((v) => {
          if (v < atLeast) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        })
      waiters.add(check)
      check()
    })
  return { counters, read, until }
}

const event = (i: number) =>
  JSON.stringify({ id: `e${i}`, type: i % 2 ? 'session.ended' : 'session.created', time: new Date().toISOString(), data: { i } })
const ids = (events: { id: string }[]) => events.map((e) => e.id)

/** A loopback port with nothing listening on it: every connection is refused. */
async function deadUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}/events`
}

t.test('a receiver that fails at first (500, 429, then a timeout) gets every event once, in order, every attempt signed', async (t) => {
  const receiver = await startReceiver(t, SECRET, [500, 429, 'hang'])
  const { counters, read, until } = counting()
  const settings: WebhookSettings = { url: receiver.url, secret: SECRET, timeout: 300 }
  const hook = new Webhook(settings, { ...FAST, maxBatch: 2, log: quiet, counters })
  t.teardown(() => hook.close(0))
  for (let i = 0; i < 5; i++) hook.push(event(i))
  await receiver.posts(1)
  // More come while the first batch is still failing: they queue behind it.
  for (let i = 5; i < 7; i++) hook.push(event(i))

  const got = await receiver.until(7)
  t.same(ids(got), ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6'], 'each event once, in the order emitted')
  t.same(
    receiver.deliveries.slice(0, 4).map((d) => d.answer),
    [500, 429, 'hang', 200],
    'the failing attempts came first',
  )
  t.same(
    receiver.deliveries.slice(0, 4).map((d) => ids(JSON.parse(d.body).events)),
    [
      ['e0', 'e1'],
      ['e0', 'e1'],
      ['e0', 'e1'],
      ['e0', 'e1'],
    ],
    'a failed batch is sent again as it was',
  )
  t.ok(
    receiver.deliveries.every((d) => d.signed),
    'every attempt carries a valid signature',
  )
  const stamps = receiver.deliveries.map((d) => Number(d.headers['x-portcullis-timestamp']))
  t.ok(
    stamps.every((s) => Math.abs(s - Date.now() / 1000) < 60),
    'and a current timestamp',
  )
  // The receiver records a POST before the webhook reads its answer.
  await until('portcullis_events_delivered_total', {}, 7)
  t.equal(await read('portcullis_events_retries_total', { reason: 'status' }), 2, '500 and 429 retried')
  t.equal(await read('portcullis_events_retries_total', { reason: 'timeout' }), 1, 'the timeout retried')
  t.equal(await read('portcullis_events_delivered_total'), 7)
  t.equal(await read('portcullis_events_dropped_total', { reason: 'overflow' }), 0)
  t.equal(hook.queued, 0)
})

t.test('a receiver down for good: beyond the bound the oldest are dropped and counted, and the next delivery says how many', async (t) => {
  const { counters, read, until } = counting()
  const hook = new Webhook({ url: await deadUrl(), secret: SECRET, timeout: 300 }, { ...FAST, maxQueue: 10, maxBatch: 4, log: quiet, counters })
  t.teardown(() => hook.close(0))
  for (let i = 0; i < 25; i++) hook.push(event(i))
  t.equal(hook.queued, 10, 'never more than the bound held')
  t.equal(await read('portcullis_events_dropped_total', { reason: 'overflow' }), 15)
  await until('portcullis_events_retries_total', { reason: 'network' }, 2)
  // Some of the oldest are in the batch being retried: they are dropped all the same.
  for (let i = 25; i < 28; i++) hook.push(event(i))
  t.equal(hook.queued, 10)
  t.equal(await read('portcullis_events_dropped_total', { reason: 'overflow' }), 18)

  const receiver = await startReceiver(t, SECRET)
  hook.configure({ url: receiver.url, secret: SECRET, timeout: 300 })
  const got = await receiver.until(10)
  t.same(ids(got), ['e18', 'e19', 'e20', 'e21', 'e22', 'e23', 'e24', 'e25', 'e26', 'e27'], 'the newest ten arrive, in order')
  t.equal(JSON.parse(receiver.deliveries[0]!.body).dropped, 18, 'the first delivery says 18 were missed')
  t.equal(JSON.parse(receiver.deliveries[1]!.body).dropped, undefined, 'and only the first')
  await until('portcullis_events_delivered_total', {}, 10)
  t.equal(hook.queued, 0)
})

t.test('a 4xx is not retried: that batch is dropped and counted as refused, later ones are delivered', async (t) => {
  const receiver = await startReceiver(t, SECRET, [400])
  const { counters, read } = counting()
  const hook = new Webhook({ url: receiver.url, secret: SECRET, timeout: 1000 }, { ...FAST, log: quiet, counters })
  t.teardown(() => hook.close(0))
  for (let i = 0; i < 3; i++) hook.push(event(i))
  await receiver.posts(1)
  hook.push(event(3))
  t.same(ids(await receiver.until(1)), ['e3'])
  t.equal(receiver.deliveries.length, 2, 'no second attempt for the refused batch')
  t.equal(JSON.parse(receiver.deliveries[1]!.body).dropped, 3)
  t.equal(await read('portcullis_events_dropped_total', { reason: 'rejected' }), 3)
  t.equal(await read('portcullis_events_retries_total', { reason: 'status' }), 0)
})

t.test('close delivers what is queued before it resolves', async (t) => {
  const receiver = await startReceiver(t, SECRET)
  const hook = new Webhook({ url: receiver.url, secret: SECRET, timeout: 1000 }, { ...FAST, maxBatch: 2, log: quiet })
  for (let i = 0; i < 5; i++) hook.push(event(i))
  await hook.close()
  t.same(ids(receiver.accepted()), ['e0', 'e1', 'e2', 'e3', 'e4'])
})

t.test('close gives a hanging receiver its budget only, then drops the rest and counts it', async (t) => {
  const receiver = await startReceiver(t, SECRET, [])
  receiver.answerWith('hang')
  const { counters, read } = counting()
  const hook = new Webhook({ url: receiver.url, secret: SECRET, timeout: 10_000 }, { ...FAST, log: quiet, counters })
  for (let i = 0; i < 5; i++) hook.push(event(i))
  await receiver.posts(1)
  const started = performance.now()
  await hook.close(200)
  const took = performance.now() - started
  t.ok(took < 2000, `closed in ${Math.round(took)} ms with a 200 ms budget (attempt timeout 10 s)`)
  t.equal(await read('portcullis_events_dropped_total', { reason: 'shutdown' }), 5)
  hook.push(event(5))
  t.equal(await read('portcullis_events_dropped_total', { reason: 'shutdown' }), 6, 'an event after close is dropped and counted')
  t.equal(hook.queued, 0)
})
