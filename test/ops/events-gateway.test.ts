/**
 * Security events from a whole gateway (src/main.ts, events.webhook in its config file) to a
 * real receiver on loopback: what each endpoint emits, signed, retried past a receiver that
 * fails at first, re-pointed by a reload, and never waited for by the request that caused it.
 */
import { createHmac } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { hash, type Algorithm } from '@node-rs/argon2'
import t from 'tap'
import { startGateway, type RunningGateway } from '../../src/main.js'
import { send } from '../helpers/http.js'
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js'
import { value } from './prometheus.js'

const SECRET = 'a-webhook-secret-of-32-characters'
const JSON_TOKEN = { 'content-type': 'application/json', 'x-auth-transport': 'token' }
// Tiny argon2 parameters: these tests are about events, not password hashing.
const passwordHash = hash('ann-pw', { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm })

async function configText(webhook: string, extra = ''): Promise<string> {
  return `server: { host: 127.0.0.1, port: 0, shutdownTimeout: 500ms }
auth:
  keys: { algorithm: HS256, signing: [{ kid: k1, secret: "0123456789abcdef0123456789abcdef" }] }
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${await passwordHash}", subject: u-ann, roles: [user] }] }]
  refreshReuseGrace: 0
rateLimits: { login: { perUser: { max: 2, window: 15m } } }
${webhook}
${extra}`
}

interface Started {
  gw: RunningGateway
  file: string
  clock: { now: number }
  logLines(): Record<string, unknown>[]
  logText(): string
}

async function start(t: Tap, yaml: string): Promise<Started> {
  const dir = t.testdir()
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, yaml)
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const clock = { now: Date.now() }
  const gw = await startGateway({
    configPath: file,
    env: {},
    logDestination: sink,
    now: () => clock.now,
    eventDelivery: { backoffBase: 20, backoffMax: 100 },
  })
  t.teardown(() => gw.close())
  return { gw, file, clock, logLines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), logText: () => lines.join('\n') }
}
type Tap = { teardown(fn: () => unknown): void; testdir(): string }

const webhookAt = (receiver: Receiver, timeout = '300ms') =>
  `events: { webhook: { url: "${receiver.url}", secret: "${SECRET}", timeout: ${timeout} } }`

function login(url: string, username: string, password: string, userAgent = 'test/1') {
  return send(url, '/auth/login', {
    method: 'POST',
    headers: { ...JSON_TOKEN, 'user-agent': userAgent },
    body: JSON.stringify({ username, password }),
  })
}
function refresh(url: string, refreshToken: string, userAgent: string) {
  return send(url, '/auth/refresh', { method: 'POST', headers: { ...JSON_TOKEN, 'user-agent': userAgent }, body: JSON.stringify({ refreshToken }) })
}
const logout = (url: string, accessToken: string) =>
  send(url, '/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } })

t.test(
  'sign-in, theft, logout and a rate limit reach the log and, past a failing receiver, the webhook once each, in order and signed',
  async (t) => {
    const receiver = await startReceiver(t, SECRET, [500, 500, 'hang'])
    const { gw, file, clock, logLines, logText } = await start(t, await configText(webhookAt(receiver)))

    const first = await login(gw.url, 'ann', 'ann-pw', 'phone/1')
    t.equal(first.status, 200)
    const r0 = String(first.json()['refreshToken'])
    const sessionId = String(first.json()['sessionId'])
    const rotated = await refresh(gw.url, r0, 'phone/2')
    t.equal(rotated.status, 200)
    clock.now += 1000
    const stolen = await refresh(gw.url, r0, 'thief/1')
    t.equal(stolen.json()['code'], 'refresh_token_reused')
    const second = await login(gw.url, 'ann', 'ann-pw')
    t.equal((await logout(gw.url, String(second.json()['accessToken']))).status, 204)
    const refusals: number[] = []
    for (let i = 0; i < 4; i++) refusals.push((await login(gw.url, 'Mallory ', 'guess-' + i)).status)
    t.same(refusals, [401, 401, 429, 429], 'the per-user limit refused the third guess')

    const got = await receiver.until(6)
    t.same(
      got.map((e) => [e.type, e.data['reason'] ?? e.data['limiter'] ?? '']),
      [
        ['session.created', ''],
        ['session.ended', 'reuse'],
        ['refresh.reuse_detected', ''],
        ['session.created', ''],
        ['session.ended', 'logout'],
        ['login.rate_limited', 'login_user'],
      ],
      'in the order they happened, one rate-limit event however many refusals',
    )
    t.equal(new Set(got.map((e) => e.id)).size, 6, 'each event once')
    t.same(
      receiver.deliveries.slice(0, 3).map((d) => d.answer),
      [500, 500, 'hang'],
      'after two 500s and a timeout',
    )
    t.ok(
      receiver.deliveries.every((d) => d.signed),
      'every delivery signed',
    )

    t.match(got[0]!.data, { sessionId, subject: 'u-ann', ip: '127.0.0.1', userAgent: 'phone/1' })
    t.match(got[1]!.data, { sessionId, subject: 'u-ann', reason: 'reuse' })
    t.same(
      got[2]!.data,
      {
        sessionId,
        subject: 'u-ann',
        rotatedBy: { ip: '127.0.0.1', userAgent: 'phone/2', at: new Date(clock.now - 1000).toISOString() },
        reusedBy: { ip: '127.0.0.1', userAgent: 'thief/1' },
      },
      'both presentations: the last rotation as stored, and the reuse',
    )
    const usernameKey = createHmac('sha256', SECRET).update('portcullis username').digest()
    t.same(got[5]!.data, {
      limiter: 'login_user',
      ip: '127.0.0.1',
      usernameHash: createHmac('sha256', usernameKey).update('mallory').digest('hex'),
      retryAfter: 900,
    })

    const logged = logLines().filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('security event '))
    t.same(
      logged.map((l) => (l['event'] as { id: string }).id),
      got.map((e) => e.id),
      'the log has the same events',
    )
    const secrets = [r0, String(rotated.json()['refreshToken']), String(first.json()['accessToken']), 'ann-pw', 'guess-', 'allory']
    const bodies = receiver.deliveries.map((d) => d.body).join('\n')
    const eventLines = logged.map((l) => JSON.stringify(l)).join('\n')
    for (const secret of secrets) {
      t.notOk(bodies.includes(secret) || eventLines.includes(secret), `no ${secret.slice(0, 8)}… in an event`)
    }
    t.notOk(logText().includes(SECRET), 'the webhook secret is never logged')

    const metrics = (await send(gw.url, '/metrics')).body
    t.equal(value(metrics, 'portcullis_events_delivered_total'), 6)
    t.equal(value(metrics, 'portcullis_events_retries_total', { reason: 'status' }), 2)
    t.equal(value(metrics, 'portcullis_events_retries_total', { reason: 'timeout' }), 1)
    t.equal(value(metrics, 'portcullis_events_dropped_total', { reason: 'overflow' }), 0)
    t.equal(value(metrics, 'portcullis_events_queued'), 0)

    // A reload re-points the webhook for the events that follow.
    const next = await startReceiver(t, SECRET)
    await writeFile(file, await configText(webhookAt(next)))
    t.equal((await gw.reload()).ok, true)
    const third = await login(gw.url, 'ann', 'ann-pw')
    t.equal(third.status, 200)
    t.same(
      (await next.until(1)).map((e) => e.type),
      ['session.created'],
      'the new receiver gets the next event',
    )
    t.equal(receiver.accepted().length, 6, 'and the old one nothing more')
  },
)

t.test('a logout does not wait for a receiver that hangs', async (t) => {
  const receiver = await startReceiver(t, SECRET, [])
  receiver.answerWith('hang')
  const withHook = await start(t, await configText(webhookAt(receiver, '5s')))
  const without = await start(t, await configText(''))
  const sessions = async (url: string) => {
    const tokens: string[] = []
    for (let i = 0; i < 20; i++) tokens.push(String((await login(url, 'ann', 'ann-pw')).json()['accessToken']))
    return tokens
  }
  const timeLogouts = async (url: string, tokens: string[]) => {
    const ms: number[] = []
    for (const token of tokens) {
      const started = performance.now()
      t.equal((await logout(url, token)).status, 204)
      ms.push(performance.now() - started)
    }
    return ms.sort((a, b) => a - b)
  }
  const hooked = await sessions(withHook.gw.url)
  const plain = await sessions(without.gw.url)
  await receiver.posts(1)
  const slow = await timeLogouts(withHook.gw.url, hooked)
  const base = await timeLogouts(without.gw.url, plain)
  t.equal(receiver.accepted().length, 0, 'nothing was delivered during the logouts: the receiver held the first POST open')
  const median = (xs: number[]) => xs[xs.length >> 1]!.toFixed(1)
  const max = (xs: number[]) => xs[xs.length - 1]!.toFixed(1)
  t.comment(`logout with a hanging receiver: median ${median(slow)} ms, max ${max(slow)} ms; without a webhook: ${median(base)} ms, ${max(base)} ms`)
  t.ok(slow[slow.length - 1]! < 1000, `every logout answered in under 1 s (max ${max(slow)} ms) while a delivery hung for up to 5 s`)
  const started = performance.now()
  await withHook.gw.close()
  const took = performance.now() - started
  t.ok(took < 2500, `shutdown gave the receiver shutdownTimeout (500 ms), not the 5 s timeout: ${took.toFixed(0)} ms`)
})
