/**
 * GET /metrics against real gateways: what is counted, under which bounded labels, and that
 * each gateway keeps its own registry.
 */
import { writeFile } from 'node:fs/promises'
import { register as globalRegistry } from 'prom-client'
import t from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { LISTEN, startRunning } from '../helpers/running.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'
import { identityConfig, startIdentityService, TOKEN_MODE } from './identity-service.js'
import { samples, total, value } from './prometheus.js'

const scrape = async (base: string) => (await send(base, '/metrics')).body

const routes = (up: string) => `
routes:
  - { name: api, prefix: /api, upstream: "${up}", auth: none }
  - { name: protected, prefix: /protected, upstream: "${up}" }
  - { name: maybe, prefix: /maybe, upstream: "${up}", auth: optional }
  - { name: admin, prefix: /admin-api, upstream: "${up}", roles: [admin] }
`

t.test('GET /metrics answers Prometheus text, uncached, with every gateway metric named portcullis_*', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, routes(up.url))
  const res = await send(gw.url, '/metrics')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(res.headers['cache-control'], 'no-store')
  const families = [...res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => `${name} ${type}`)
  t.ok(families.length >= 18, `${families.length} families`)
  for (const family of families) t.match(family, /^portcullis_[a-z_]+ (counter|gauge|histogram)$/)
  for (const family of families.filter((f) => f.endsWith(' counter'))) t.match(family, /_total counter$/, 'counters end in _total')
  t.ok(families.includes('portcullis_request_duration_seconds histogram'))
  t.ok(families.includes('portcullis_upstream_duration_seconds histogram'))
})

t.test('requests are counted by route name, method and status class; paths never become labels', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, routes(up.url))
  await send(gw.url, '/api/orders/123')
  await send(gw.url, '/api/orders/456?secret-query=1')
  await send(gw.url, '/api/orders/9', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  await send(gw.url, '/protected/x')
  await send(gw.url, '/nowhere/secret-path')
  await send(gw.url, '/api/x', { method: 'PROPFIND' })
  await send(gw.url, '/healthz')
  await send(gw.url, '/auth/me')
  const text = await scrape(gw.url)
  const requests = (route: string, method: string, statusClass: string) =>
    value(text, 'portcullis_requests_total', { route, method, status_class: statusClass })
  t.equal(requests('api', 'GET', '2xx'), 2)
  t.equal(requests('api', 'POST', '2xx'), 1)
  t.equal(requests('protected', 'GET', '4xx'), 1)
  t.equal(requests('unmatched', 'GET', '4xx'), 1)
  t.equal(requests('unmatched', 'OTHER', '4xx'), 1, 'an unusual method is counted as OTHER')
  t.equal(requests('health', 'GET', '2xx'), 1)
  t.equal(requests('auth', 'GET', '4xx'), 1)
  t.equal(value(text, 'portcullis_request_duration_seconds_count', { route: 'api' }), 3)
  t.notMatch(text, /orders|secret|nowhere|PROPFIND/, 'no path, query or raw method in any label')
  const routeLabels = new Set(samples(text).flatMap((s) => (s.labels['route'] ? [s.labels['route']] : [])))
  t.same([...routeLabels].sort(), ['admin', 'api', 'auth', 'health', 'maybe', 'protected', 'unmatched'])
})

t.test('the upstream histogram measures time to the upstream response headers, the request histogram the whole exchange', async (t) => {
  const up = await startUpstream(t)
  up.handle((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first ')
      setTimeout(() => res.end('last'), 250)
    }, 120)
  })
  const gw = await startGateway(t, routes(up.url))
  t.equal((await send(gw.url, '/api/slow')).body, 'first last')
  const text = await scrape(gw.url)
  t.equal(value(text, 'portcullis_upstream_duration_seconds_count', { route: 'api' }), 1)
  const upstream = value(text, 'portcullis_upstream_duration_seconds_sum', { route: 'api' })!
  const whole = value(text, 'portcullis_request_duration_seconds_sum', { route: 'api' })!
  t.ok(upstream >= 0.11 && upstream < 0.3, `upstream ${upstream}s: headers came after 120 ms`)
  t.ok(whole >= 0.36, `request ${whole}s: the body ended 250 ms later`)
  t.equal(value(text, 'portcullis_upstream_duration_seconds_bucket', { route: 'api', le: '0.1' }), 0)
  t.equal(value(text, 'portcullis_upstream_duration_seconds_bucket', { route: 'api', le: '0.25' }), 1)
})

async function authOutcomes(gw: TestGateway) {
  const now = gw.clock.now
  const good = await makeToken(gw.keyring, {}, now)
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  await send(gw.url, '/protected/a', { headers: bearer(good) })
  await send(gw.url, '/protected/a')
  await send(gw.url, '/protected/a', { headers: bearer('not.a.token') })
  await send(gw.url, '/protected/a', { headers: bearer(await makeToken(gw.keyring, { iat: -700, exp: -400 }, now)) })
  await send(gw.url, '/admin-api/a', { headers: bearer(good) })
  await send(gw.url, '/maybe/a')
  const revoked = await makeToken(gw.keyring, { sid: 'AAAAAArevokedrevokedrevoked0' }, now)
  gw.revocations.apply({ type: 'session', sessionId: 'AAAAAArevokedrevokedrevoked0', forgetAfter: now + 600_000 })
  await send(gw.url, '/protected/a', { headers: bearer(revoked) })
  await send(gw.url, '/protected/a', {
    method: 'POST',
    headers: { cookie: `portcullis_at=${good}`, origin: 'https://evil.example', 'content-type': 'application/json' },
    body: '{}',
  })
}

t.test('authentication outcomes are counted by reason', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `auth: { cookies: { secure: false } }\n${routes(up.url)}`)
  await authOutcomes(gw)
  const text = await scrape(gw.url)
  const outcome = (o: string) => value(text, 'portcullis_auth_outcomes_total', { outcome: o })
  t.same(
    Object.fromEntries(
      ['ok', 'anonymous', 'missing_token', 'invalid_token', 'token_expired', 'token_revoked', 'forbidden', 'csrf_rejected', 'error'].map((o) => [
        o,
        outcome(o),
      ]),
    ),
    { ok: 1, anonymous: 1, missing_token: 1, invalid_token: 1, token_expired: 1, token_revoked: 1, forbidden: 1, csrf_rejected: 1, error: 0 },
  )
})

t.test('sign-ins, refreshes, reuse detections and ended sessions are counted by result and reason', async (t) => {
  const id = await startIdentityService(t)
  const up = await startUpstream(t)
  const gw = await startGateway(t, identityConfig(id.url) + routes(up.url))
  const post = (path: string, body: unknown, headers: Record<string, string> = TOKEN_MODE) =>
    send(gw.url, path, { method: 'POST', headers, body: JSON.stringify(body) })
  const login = async (username: string) =>
    (await post('/auth/login', { username, password: 'right' })).json<{ refreshToken: string; accessToken: string }>()

  t.equal((await post('/auth/login', { username: 'mallory', password: 'wrong' })).status, 401)
  const first = await login('alice')
  const second = (await post('/auth/refresh', { refreshToken: first.refreshToken })).json<{ refreshToken: string }>()
  t.equal((await post('/auth/refresh', { refreshToken: first.refreshToken })).status, 200, 'within the grace window')
  gw.clock.now += 11_000
  t.equal((await post('/auth/refresh', { refreshToken: first.refreshToken })).status, 401, 'reuse after the grace window')
  t.equal((await post('/auth/refresh', { refreshToken: second.refreshToken })).status, 401, 'the session is gone')
  t.equal((await post('/auth/refresh', { refreshToken: 'garbage' })).status, 401)
  const bob = await login('bob')
  t.equal((await send(gw.url, '/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${bob.accessToken}` } })).status, 204)

  const text = await scrape(gw.url)
  t.equal(value(text, 'portcullis_logins_total', { result: 'ok' }), 2)
  t.equal(value(text, 'portcullis_logins_total', { result: 'invalid_credentials' }), 1)
  t.equal(value(text, 'portcullis_refreshes_total', { result: 'rotated' }), 1)
  t.equal(value(text, 'portcullis_refreshes_total', { result: 'grace' }), 1)
  t.equal(value(text, 'portcullis_refreshes_total', { result: 'reused' }), 1)
  t.equal(value(text, 'portcullis_refreshes_total', { result: 'unknown' }), 2, 'the dead successor and the garbage token')
  t.equal(value(text, 'portcullis_refresh_reuse_detected_total'), 1)
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'reuse' }), 1)
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'logout' }), 1)
  t.equal(total(text, 'portcullis_sessions_ended_total'), 2)
})

t.test('two gateways in one process keep separate registries and never touch the global one', async (t) => {
  const up = await startUpstream(t)
  const a = await startGateway(t, routes(up.url))
  const b = await startGateway(t, routes(up.url))
  await send(a.url, '/api/x')
  await send(a.url, '/api/x')
  t.equal(value(await scrape(a.url), 'portcullis_requests_total', { route: 'api', method: 'GET', status_class: '2xx' }), 2)
  t.equal(total(await scrape(b.url), 'portcullis_requests_total', { route: 'api' }), 0)
  const global = await globalRegistry.getMetricsAsJSON()
  t.same(
    global.filter((m) => m.name.startsWith('portcullis_')),
    [],
  )
})

t.test('the process registry (main.ts) adds process metrics, store health and the revocation sync', async (t) => {
  const { gw } = await startRunning(t, LISTEN)
  gw.revocations.apply({ type: 'session', sessionId: 'AAAAAAendedendedendedended00', forgetAfter: Date.now() + 60_000 })
  const text = await scrape(gw.url)
  t.equal(value(text, 'portcullis_store_up'), 1)
  t.equal(value(text, 'portcullis_revocation_set_size'), 1)
  t.ok(value(text, 'portcullis_revocation_resyncs_total')! >= 1, 'the first sync is counted')
  t.ok(Math.abs(value(text, 'portcullis_revocation_last_sync_timestamp_seconds')! - Date.now() / 1000) < 60)
  t.ok(value(text, 'process_cpu_user_seconds_total')! > 0, 'standard process metrics')
  t.ok(value(text, 'nodejs_eventloop_lag_seconds') !== undefined)
})

t.test('config reloads are counted by result, and counts survive a reload', async (t) => {
  const running = await startRunning(t, `${LISTEN}routes: []\n`)
  const { gw, file } = running
  await send(gw.url, '/healthz')
  await writeFile(file, `${LISTEN}routes: [ { name: broken } ]\n`)
  t.equal((await gw.reload()).ok, false)
  await writeFile(file, `${LISTEN}routes: []\n`)
  t.equal((await gw.reload()).ok, true)
  const text = await scrape(gw.url)
  t.equal(value(text, 'portcullis_config_reloads_total', { result: 'rejected' }), 1)
  t.equal(value(text, 'portcullis_config_reloads_total', { result: 'ok' }), 1)
  t.equal(
    value(text, 'portcullis_requests_total', { route: 'health', method: 'GET', status_class: '2xx' }),
    1,
    'served before the reload, still counted',
  )
})

t.test('requests the HTTP parser refuses are counted too', async (t) => {
  const { gw } = await startRunning(t, LISTEN.replace('}', ', maxHeaderSize: 4096 }'))
  await send(gw.url, '/healthz', { headers: { 'x-big': 'b'.repeat(6000) } }).catch(() => null)
  const text = await scrape(gw.url)
  t.equal(value(text, 'portcullis_client_errors_total', { reason: 'header_too_large' }), 1)
})
