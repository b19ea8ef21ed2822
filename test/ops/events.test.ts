/**
 * The security events emitter: the log always, the webhook when configured, usernames only as
 * keyed hashes, and a reload that re-points the webhook without losing what is queued.
 */
import { createHash, createHmac } from 'node:crypto'
import { Writable } from 'node:stream'
import t from 'tap'
import { SecurityEvents } from '../../src/ops/events.js'
import { createLogger } from '../../src/ops/logger.js'
import { startReceiver } from '../helpers/webhook-receiver.js'

const SECRET = 'a-webhook-secret-of-32-characters'

function capturedLogger() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: createLogger('info', sink), lines }
}

t.test('an event is written to the log at once and reaches the webhook as the same JSON', async (t) => {
  const receiver = await startReceiver(t, SECRET)
  const { logger, lines } = capturedLogger()
  const events = new SecurityEvents({ logger, instance: 'gw-1', webhook: { url: receiver.url, secret: SECRET, timeout: 1000 } })
  t.teardown(() => events.close())
  events.emit('session.ended', { sessionId: 'AAAAAAsession', subject: 'u-alice', reason: 'admin' })
  const logged = lines.find((l) => l['msg'] === 'security event session.ended')
  t.ok(logged, 'logged before emit returned')
  const [received] = await receiver.until(1)
  t.same(received, (logged as { event: unknown }).event, 'the webhook gets what the log has')
  t.match(received, { type: 'session.ended', instance: 'gw-1', data: { sessionId: 'AAAAAAsession', subject: 'u-alice', reason: 'admin' } })
  t.match(received!.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a random uuid')
  t.equal(new Date(received!.time).toISOString(), received!.time, 'an ISO time')
})

t.test('a theft and a rate limit are logged as warnings, the rest as info', async (t) => {
  const { logger, lines } = capturedLogger()
  const events = new SecurityEvents({ logger })
  events.emit('session.created', { sessionId: 's', subject: 'u', ip: null, userAgent: null })
  events.emit('refresh.reuse_detected', {
    sessionId: 's',
    subject: 'u',
    rotatedBy: { ip: '10.0.0.1', userAgent: 'a', at: new Date(0).toISOString() },
    reusedBy: { ip: '10.0.0.2', userAgent: 'b' },
  })
  events.emit('login.rate_limited', { limiter: 'login_client', ip: '10.0.0.2', retryAfter: 60 })
  t.same(
    lines.map((l) => l['level']),
    [30, 40, 40],
  )
  t.equal(events.queued, 0, 'nothing is held without a webhook')
})

t.test('a username is hashed with a key derived from the webhook secret, so a receiver can check a name but a bare hash cannot', async (t) => {
  const { logger } = capturedLogger()
  const events = new SecurityEvents({ logger, webhook: { url: 'http://127.0.0.1:9/', secret: SECRET, timeout: 100 } })
  t.teardown(() => events.close())
  const key = createHmac('sha256', SECRET).update('portcullis username').digest()
  t.equal(events.hashUsername('alice'), createHmac('sha256', key).update('alice').digest('hex'), 'as docs/events.md tells receivers')
  t.not(events.hashUsername('alice'), createHash('sha256').update('alice').digest('hex'))
  const other = new SecurityEvents({ logger })
  const another = new SecurityEvents({ logger })
  t.not(other.hashUsername('alice'), another.hashUsername('alice'), 'without a webhook each process has its own key')
  t.equal(other.hashUsername('alice'), other.hashUsername('alice'), 'that still matches its own hashes')
})

t.test('a reload re-points the webhook: what was queued for the old receiver goes to the new one, signed with the new secret', async (t) => {
  const { logger } = capturedLogger()
  const old = await startReceiver(t, SECRET, [])
  old.answerWith(503)
  const events = new SecurityEvents({
    logger,
    webhook: { url: old.url, secret: SECRET, timeout: 1000 },
    delivery: { backoffBase: 20, backoffMax: 50 },
  })
  t.teardown(() => events.close())
  events.emit('session.ended', { sessionId: 'one', reason: 'expired' })
  await old.posts(1)
  const newSecret = 'another-secret-of-enough-length'
  const next = await startReceiver(t, newSecret)
  events.configure({ url: next.url, secret: newSecret, timeout: 1000 })
  events.emit('session.ended', { sessionId: 'two', reason: 'expired' })
  const got = await next.until(2)
  t.same(
    got.map((e) => e.data['sessionId']),
    ['one', 'two'],
  )
  t.ok(
    next.deliveries.every((d) => d.signed),
    'signed with the new secret',
  )
})

t.test('a reload that removes the webhook flushes to it once more; later events go to the log only', async (t) => {
  const { logger, lines } = capturedLogger()
  const receiver = await startReceiver(t, SECRET)
  const events = new SecurityEvents({ logger, webhook: { url: receiver.url, secret: SECRET, timeout: 1000 } })
  events.emit('session.ended', { sessionId: 'one', reason: 'logout' })
  events.configure(undefined)
  events.emit('session.ended', { sessionId: 'two', reason: 'logout' })
  t.same(
    (await receiver.until(1)).map((e) => e.data['sessionId']),
    ['one'],
  )
  t.equal(lines.length, 2, 'both logged')
  await events.close()
  t.equal(receiver.deliveries.length, 1)
})
