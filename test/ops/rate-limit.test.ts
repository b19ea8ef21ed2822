/**
 * Rate limits with the memory store, over real HTTP with an injected clock: sign-in per
 * username and per client address, refresh per session, per-route limits.
 */
import t, { type Test } from 'tap'
import { hashId } from '../../src/ops/rate-limit.js'
import { normalizeUsername } from '../../src/auth/username.js'
import { createMemoryRateLimitStore } from '../../src/ops/rate-limit-memory.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send, type Answer } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'
import { identityConfig, startIdentityService, TOKEN_MODE } from './identity-service.js'
import { value } from './prometheus.js'

const MINUTE = 60_000

async function gateway(t: Test, limits: string, extra = '') {
  const id = await startIdentityService(t)
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `${identityConfig(id.url)}${extra}
rateLimits:
${limits}
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
  - { name: search, prefix: /search, upstream: "${up.url}", auth: none, rateLimit: { max: 2, window: 30s } }
`,
  )
  return { gw, id, up }
}

const login = (gw: TestGateway, username: string, password: string, headers: Record<string, string> = {}) =>
  send(gw.url, '/auth/login', { method: 'POST', headers: { ...TOKEN_MODE, ...headers }, body: JSON.stringify({ username, password }) })
const refresh = (gw: TestGateway, refreshToken: string) =>
  send(gw.url, '/auth/refresh', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ refreshToken }) })
const codeOf = (res: Answer) => (res.status === 200 ? 'ok' : res.json()['code'])
const metric = async (gw: TestGateway, name: string, labels: Record<string, string>) => value(await (await gw.fetch('/metrics')).text(), name, labels)

t.test('past perUser failed sign-ins a username gets 429 with Retry-After, and its password is not even checked', async (t) => {
  const { gw, id } = await gateway(t, '  login: { perUser: { max: 5, window: 15m } }')
  for (let i = 0; i < 5; i++) t.equal(codeOf(await login(gw, 'alice', `guess-${i}`)), 'invalid_credentials')
  const refused = await login(gw, 'alice', 'right')
  t.equal(refused.status, 429)
  t.equal(refused.json()['code'], 'rate_limited')
  t.match(refused.headers['content-type'], /application\/problem\+json/)
  t.equal(refused.headers['retry-after'], '900', 'seconds until the 15-minute window ends')
  t.equal(id.asked, 5, 'the sixth attempt never reached the password check')
  t.equal(codeOf(await login(gw, 'bob', 'right')), 'ok', 'other usernames are not affected')
  gw.clock.now += 15 * MINUTE
  t.equal(codeOf(await login(gw, 'alice', 'right')), 'ok', 'a new window')
  t.equal(await metric(gw, 'portcullis_rate_limited_total', { limiter: 'login_user', route: 'auth' }), 1)
  t.equal(await metric(gw, 'portcullis_logins_total', { result: 'rate_limited' }), 1)
})

t.test('spellings of one username share one count', async (t) => {
  const { gw } = await gateway(t, '  login: { perUser: { max: 3, window: 15m } }')
  for (const spelling of ['Alice', ' alice ', 'ALICE']) t.equal(codeOf(await login(gw, spelling, 'wrong')), 'invalid_credentials')
  t.equal(codeOf(await login(gw, 'ａｌｉｃｅ', 'wrong')), 'rate_limited', 'fullwidth letters fold too (NFKC)')
  t.equal(normalizeUsername(' ＡLice\t'), 'alice')
})

t.test('a successful sign-in clears the failures counted for that username', async (t) => {
  const { gw } = await gateway(t, '  login: { perUser: { max: 3, window: 15m } }')
  for (let i = 0; i < 2; i++) await login(gw, 'alice', 'wrong')
  t.equal(codeOf(await login(gw, 'alice', 'right')), 'ok')
  for (let i = 0; i < 3; i++) t.equal(codeOf(await login(gw, 'alice', 'wrong')), 'invalid_credentials', `failure ${i + 1} after the success`)
  t.equal(codeOf(await login(gw, 'alice', 'wrong')), 'rate_limited')
})

t.test('sign-in attempts are limited per client address, whatever the usernames and outcomes', async (t) => {
  const { gw, id } = await gateway(t, '  login: { perClient: { max: 3, window: 1m } }')
  t.equal(codeOf(await login(gw, 'alice', 'right')), 'ok')
  t.equal(codeOf(await login(gw, 'bob', 'wrong')), 'invalid_credentials')
  t.equal(codeOf(await login(gw, 'carol', 'right')), 'ok')
  const refused = await login(gw, 'dave', 'right')
  t.equal(codeOf(refused), 'rate_limited')
  t.equal(refused.headers['retry-after'], '60')
  t.equal(id.asked, 3)
  t.equal(
    codeOf(await login(gw, 'dave', 'right', { 'x-forwarded-for': '203.0.113.9' })),
    'rate_limited',
    'X-Forwarded-For is not believed without trustProxy',
  )
})

t.test('with server.trustProxy the client address is the forwarded one', async (t) => {
  const { gw } = await gateway(t, '  login: { perClient: { max: 1, window: 1m } }', 'server: { trustProxy: true }\n')
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  t.equal(codeOf(await login(gw, 'alice', 'right', from('203.0.113.1'))), 'ok')
  t.equal(codeOf(await login(gw, 'alice', 'right', from('203.0.113.1'))), 'rate_limited')
  t.equal(codeOf(await login(gw, 'alice', 'right', from('203.0.113.2'))), 'ok', 'another client has its own count')
})

t.test('refreshes are limited per session', async (t) => {
  const { gw } = await gateway(t, '  refresh: { perSession: { max: 2, window: 1m } }')
  const mine = (await login(gw, 'alice', 'right')).json<{ refreshToken: string }>()
  const other = (await login(gw, 'bob', 'right')).json<{ refreshToken: string }>()
  const r1 = (await refresh(gw, mine.refreshToken)).json<{ refreshToken: string }>()
  const r2 = (await refresh(gw, r1.refreshToken)).json<{ refreshToken: string }>()
  const refused = await refresh(gw, r2.refreshToken)
  t.equal(codeOf(refused), 'rate_limited')
  t.equal(refused.headers['retry-after'], '60')
  t.equal(codeOf(await refresh(gw, other.refreshToken)), 'ok', 'another session is not affected')
  gw.clock.now += MINUTE
  t.equal(codeOf(await refresh(gw, r2.refreshToken)), 'ok', 'the refused token still works in the next window')
  t.equal(await metric(gw, 'portcullis_refreshes_total', { result: 'rate_limited' }), 1)
  t.equal(await metric(gw, 'portcullis_rate_limited_total', { limiter: 'refresh_session', route: 'auth' }), 1)
})

t.test('a route rateLimit limits requests per client address on that route alone, before authentication', async (t) => {
  const { gw, up } = await gateway(t, '  login: { perClient: { max: 100, window: 1m } }')
  t.equal((await send(gw.url, '/search/a')).status, 200)
  t.equal((await send(gw.url, '/search/b')).status, 200)
  const refused = await send(gw.url, '/search/c')
  t.equal(refused.status, 429)
  t.equal(refused.json()['code'], 'rate_limited')
  t.equal(refused.headers['retry-after'], '30')
  t.equal(up.seen.length, 2, 'the refused request never reached the upstream')
  t.equal((await send(gw.url, '/api/x')).status, 401, 'a route without rateLimit is not limited')
  gw.clock.now += 30_000
  t.equal((await send(gw.url, '/search/d')).status, 200, 'a new window')
  t.equal(await metric(gw, 'portcullis_rate_limited_total', { limiter: 'route', route: 'search' }), 1)
})

t.test('the memory store counts fixed windows and keeps at most maxKeys counters', async (t) => {
  const clock = { now: 0 }
  const store = createMemoryRateLimitStore(() => clock.now, 2)
  t.same(await store.hit('s', 'a', 1000), { count: 1, resetInMs: 1000 })
  clock.now = 400
  t.same(await store.hit('s', 'a', 1000), { count: 2, resetInMs: 600 })
  clock.now = 1000
  t.same(await store.hit('s', 'a', 1000), { count: 1, resetInMs: 1000 }, 'the window has ended')
  await store.hit('s', 'b', 1000)
  await store.hit('s', 'c', 1000)
  t.equal((await store.hit('s', 'a', 1000)).count, 1, 'the least recently hit counter made room')
  await store.reset('s', 'c')
  t.equal((await store.hit('s', 'c', 1000)).count, 1)
})

t.test('ids become 22 URL-safe characters, whatever they were', async (t) => {
  for (const id of ['', '127.0.0.1', '{tag}', 'x'.repeat(100_000), 'üñí\u0000']) t.match(hashId(id), /^[A-Za-z0-9_-]{22}$/)
  t.not(hashId('a'), hashId('b'))
})
