import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { raw, send, statusOf } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const config = (up: string, other = up) => `
auth:
  cookies: { secure: false }
routes:
  - { name: api, prefix: /api, upstream: "${up}" }
  - { name: orders, prefix: /api/orders, upstream: "${other}", rewritePrefix: /orders }
  - { name: public, prefix: /public, upstream: "${up}", auth: none }
  - { name: maybe, prefix: /maybe, upstream: "${up}", auth: optional }
  - { name: admin, prefix: /admin-api, upstream: "${up}", roles: [admin] }
  - { name: passthrough, prefix: /with-auth, upstream: "${up}", forwardAuthorization: true }
`

t.test('a protected route without a token answers 401 missing_token and never reaches the upstream', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const res = await send(gw.url, '/api/things')
  t.equal(res.status, 401)
  t.equal(res.json()['code'], 'missing_token')
  t.equal(res.headers['www-authenticate'], 'Bearer')
  t.match(res.headers['content-type'], /application\/problem\+json/)
  t.equal(up.seen.length, 0)
})

t.test('a valid bearer token is forwarded as identity headers, without the Authorization header', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring, { sub: 'u-1', sid: 'SIDsid0000000000000000000000', roles: ['user', 'ops'] })
  const res = await send(gw.url, '/api/things?x=1', { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  const seen = up.last()
  t.equal(seen.url, '/api/things?x=1')
  t.equal(seen.headers['x-user-id'], 'u-1')
  t.equal(seen.headers['x-user-roles'], 'user,ops')
  t.equal(seen.headers['x-session-id'], 'SIDsid0000000000000000000000')
  t.equal(seen.headers['authorization'], undefined)
  t.ok(seen.headers['x-request-id'], 'the request id travels upstream')
  t.equal(res.headers['x-request-id'], seen.headers['x-request-id'])
})

t.test('an invalid token gets WWW-Authenticate with error="invalid_token"', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const res = await send(gw.url, '/api/x', { headers: { authorization: 'Bearer not.a.token' } })
  t.equal(res.status, 401)
  t.equal(res.json()['code'], 'invalid_token')
  t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token"/)
})

t.test('forwardAuthorization passes the Authorization header on', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring)
  await send(gw.url, '/with-auth/x', { headers: { authorization: `Bearer ${token}` } })
  t.equal(up.last().headers['authorization'], `Bearer ${token}`)
})

t.test('client-sent identity headers are stripped in every spelling, on public and protected routes', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const spoofed: [string, string][] = [
    ['X-User-Id', 'root'],
    ['x_user_id', 'root'],
    ['X_USER_ROLES', 'admin'],
    ['x-user-roles', 'admin'],
    ['X-Session-Id', 'evil'],
    ['x_session_id', 'evil'],
    ['X-uSeR_iD', 'root'],
  ]
  await send(gw.url, '/public/x', { headers: spoofed })
  const names = up
    .last()
    .rawHeaders.filter((_, i) => i % 2 === 0)
    .map((n) => n.toLowerCase().replaceAll('_', '-'))
  t.notOk(names.includes('x-user-id') || names.includes('x-user-roles') || names.includes('x-session-id'), 'none reach a public route')

  const token = await makeToken(gw.keyring, { sub: 'u-real' })
  await send(gw.url, '/api/x', { headers: [...spoofed, ['authorization', `Bearer ${token}`]] })
  const seen = up.last()
  t.equal(seen.headers['x-user-id'], 'u-real', 'ours replaces theirs')
  t.equal(seen.headers['x-user-roles'], 'user')
  const rawNames = seen.rawHeaders.filter((_, i) => i % 2 === 0)
  t.equal(rawNames.filter((n) => n.toLowerCase().replaceAll('_', '-') === 'x-user-id').length, 1, 'exactly one x-user-id')
})

t.test('naming identity headers in Connection cannot make the gateway drop its own', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring, { sub: 'u-conn' })
  await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}`, connection: 'keep-alive, x-user-id, x-user-roles, x-session-id' } })
  const seen = up.last()
  t.equal(seen.headers['x-user-id'], 'u-conn')
  t.equal(seen.headers['x-user-roles'], 'user')
  t.ok(seen.headers['x-session-id'])
})

t.test('the access cookie authenticates, and the gateway cookies never reach the upstream', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring, { sub: 'u-cookie' })
  const res = await send(gw.url, '/api/x', {
    headers: { cookie: `theme=dark; portcullis_at=${token}; portcullis_rt=abc; __Host-portcullis_at=zzz; lang=en` },
  })
  t.equal(res.status, 200)
  const seen = up.last()
  t.equal(seen.headers['x-user-id'], 'u-cookie')
  t.equal(seen.headers['cookie'], 'theme=dark; lang=en')
})

t.test('X-Forwarded-* describe the real client when no proxy is trusted', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  await send(gw.url, '/public/x', {
    headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6', host: 'gw.example:8080' },
  })
  const seen = up.last()
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'gw.example:8080')
  t.equal(seen.headers['forwarded'], undefined)
})

t.test("an upstream's Set-Cookie for the gateway's cookie names is dropped; others pass", async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  up.handle((_req, res) => {
    res.setHeader('set-cookie', [
      'portcullis_at=evil; Path=/',
      '__Host-portcullis_at=evil; Path=/; Secure',
      '__Secure-portcullis_rt=x',
      'app=1; Path=/',
    ])
    res.setHeader('connection', 'x-internal')
    res.setHeader('x-internal', 'secret-hop')
    res.end('ok')
  })
  const res = await send(gw.url, '/public/x')
  t.same(res.headers['set-cookie'], ['app=1; Path=/'])
  t.equal(res.headers['x-internal'], undefined, 'headers the upstream named in Connection are hop-by-hop')
})

t.test('the longest prefix wins, on segment boundaries', async (t) => {
  const a = await startUpstream(t)
  const b = await startUpstream(t)
  const gw = await startGateway(t, config(a.url, b.url))
  const token = await makeToken(gw.keyring)
  const auth = { authorization: `Bearer ${token}` }
  await send(gw.url, '/api/orders/7', { headers: auth })
  t.equal(b.last().url, '/orders/7', 'the orders route, with its rewritePrefix')
  await send(gw.url, '/api/ordersx', { headers: auth })
  t.equal(a.last().url, '/api/ordersx', 'not a segment boundary: the shorter prefix')
  t.equal((await send(gw.url, '/apix', { headers: auth })).status, 404)
})

t.test('roles are checked per route: 403 forbidden without one of them', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const user = await makeToken(gw.keyring, { roles: ['user'] })
  const admin = await makeToken(gw.keyring, { roles: ['user', 'admin'] })
  const res = await send(gw.url, '/admin-api/x', { headers: { authorization: `Bearer ${user}` } })
  t.equal(res.status, 403)
  t.equal(res.json()['code'], 'forbidden')
  t.equal((await send(gw.url, '/admin-api/x', { headers: { authorization: `Bearer ${admin}` } })).status, 200)
})

t.test('an optional route forwards anonymous requests without identity, and identifies those with a token', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  t.equal((await send(gw.url, '/maybe/x', { headers: { 'x-user-id': 'spoof' } })).status, 200)
  t.equal(up.last().headers['x-user-id'], undefined)
  const token = await makeToken(gw.keyring, { sub: 'u-opt' })
  await send(gw.url, '/maybe/x', { headers: { authorization: `Bearer ${token}` } })
  t.equal(up.last().headers['x-user-id'], 'u-opt')
  t.equal((await send(gw.url, '/maybe/x', { headers: { authorization: 'Bearer garbage' } })).status, 401, 'a bad token is still refused')
})

t.test('a token of an ended session is refused with token_revoked', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const sid = 'REVOKEDsid000000000000000000'
  const token = await makeToken(gw.keyring, { sid })
  t.equal((await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}` } })).status, 200)
  gw.revocations.apply({ type: 'session', sessionId: sid, forgetAfter: Date.now() + 60_000 })
  const res = await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 401)
  t.equal(res.json()['code'], 'token_revoked')
})

t.test('cookie-authenticated unsafe requests from another origin are refused as CSRF', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring)
  const host = new URL(gw.url).host
  const cookie = `portcullis_at=${token}`
  const post = (headers: Record<string, string>) => send(gw.url, '/api/x', { method: 'POST', headers: { cookie, host, ...headers }, body: '{}' })
  t.equal((await post({ origin: 'https://evil.example' })).json()['code'], 'csrf_rejected')
  t.equal((await post({ referer: 'https://evil.example/page' })).status, 403)
  t.equal((await post({ origin: 'null' })).status, 403)
  t.equal((await post({ origin: gw.url, 'sec-fetch-site': 'cross-site' })).status, 403)
  t.equal((await post({ origin: gw.url })).status, 200, 'our own origin')
  t.equal((await send(gw.url, '/api/x', { headers: { cookie, origin: 'https://evil.example' } })).status, 200, 'safe methods pass')
  const bearer = await send(gw.url, '/api/x', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example' },
    body: '{}',
  })
  t.equal(bearer.status, 200, 'a bearer token is not ambient: no CSRF check')
})

t.test('an upstream that refuses connections gives 502, one that stalls gives 504, both JSON', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
routes:
  - { name: down, prefix: /down, upstream: "http://127.0.0.1:1", auth: none }
  - { name: slow, prefix: /slow, upstream: "${up.url}", auth: none, timeout: 300ms }
`,
  )
  up.handle(() => {}) // never answers
  const down = await send(gw.url, '/down/x')
  t.equal(down.status, 502)
  t.equal(down.json()['code'], 'upstream_unavailable')
  const slow = await send(gw.url, '/slow/x')
  t.equal(slow.status, 504)
  t.equal(slow.json()['code'], 'upstream_timeout')
})

t.test("a client's Connection: close closes the connection after the response", async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const answer = await raw(gw.url, 'GET /public/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(statusOf(answer), 200)
  t.match(answer, /\r\nconnection: close\r\n/i)
})

t.test('the JWKS publishes public keys only', async (t) => {
  const gw = await startGateway(t, 'routes: []')
  const res = await send(gw.url, '/.well-known/jwks.json')
  const { keys } = res.json<{ keys: Record<string, unknown>[] }>()
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: gw.keyring.signer.kid })
  t.equal(keys[0]!['d'], undefined, 'no private part')
})

t.test('every request log line carries the request id, and no credential appears in the logs', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring)
  const res = await send(gw.url, '/api/x?access_token=leak', {
    headers: { authorization: `Bearer ${token}`, cookie: 'portcullis_at=cookie-secret', 'x-request-id': 'trace-123' },
  })
  t.equal(res.status, 200)
  // The access line is written when the response has finished, just after the client has it.
  for (let i = 0; i < 50 && !gw.logs().some((l) => l['reqId'] === 'trace-123'); i++) await new Promise((r) => setTimeout(r, 10))
  const lines = gw.logs().filter((l) => l['reqId'] === 'trace-123')
  t.ok(lines.length >= 1, 'the request is logged under its id')
  t.ok(lines.every((l) => l['reqId'] === 'trace-123'))
  t.notMatch(gw.logText(), token.split('.')[2]!)
  t.notMatch(gw.logText(), 'cookie-secret')
  t.notMatch(gw.logText(), 'leak')
})

t.test("the client's hop-by-hop headers stay on its hop and never break the upstream call", async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const res = await send(gw.url, '/public/x', {
    headers: {
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic c2VjcmV0',
      'x-kept': 'yes',
    },
  })
  t.equal(res.status, 200)
  const seen = up.last().headers
  for (const name of ['keep-alive', 'te', 'trailer', 'proxy-connection', 'proxy-authorization']) t.equal(seen[name], undefined, name)
  t.equal(seen['x-kept'], 'yes')
})

t.test('a token served from the verified-token cache is still refused once it expires, is revoked or lacks the role', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring, { sid: 'CACHEDsid0000000000000000000', iat: 0, exp: 60 }, gw.clock.now)
  const call = (path: string) => send(gw.url, path, { headers: { authorization: `Bearer ${token}` } })
  t.equal((await call('/api/x')).status, 200, 'verified once')
  t.equal((await call('/api/x')).status, 200, 'then from the cache')
  t.equal((await call('/admin-api/x')).json()['code'], 'forbidden', 'roles are checked on every request')
  gw.clock.now += 95_000
  t.equal((await call('/api/x')).json()['code'], 'token_expired', 'exp is checked on every request')
  gw.clock.now -= 95_000
  gw.revocations.apply({ type: 'session', sessionId: 'CACHEDsid0000000000000000000', forgetAfter: gw.clock.now + 60_000 })
  t.equal((await call('/api/x')).json()['code'], 'token_revoked', 'revocation is checked on every request')
})
