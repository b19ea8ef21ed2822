/**
 * Forward-auth (`{basePath}/verify`) over a real gateway: the request an edge asks about is
 * routed and judged as the proxied request would be, and answered with the identity to send.
 */
import { createLocalJWKSet, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const NOW = Date.UTC(2026, 11, 3, 12)
const MINUTE = 60_000

async function setup(t: Test, extra = '') {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
server: { trustProxy: true }
auth:
  signInPage: true
  allowedOrigins: [https://app.example.com]
rateLimits: { invalidTokens: { perClient: { max: 2, window: 1m } } }
${extra}
routes:
  - { name: api, prefix: /api, upstream: "${up.url}", roles: [user] }
  - { name: admin, prefix: /api/admin, upstream: "${up.url}", roles: [admin] }
  - { name: public, prefix: /public, upstream: "${up.url}", auth: none }
  - { name: maybe, prefix: /maybe, upstream: "${up.url}", auth: optional }
  - { name: payments, prefix: /payments, upstream: "${up.url}", maxAuthAge: 15m }
  - { name: limited, prefix: /limited, upstream: "${up.url}", rateLimit: { max: 2, window: 1m } }
  - { name: orders, prefix: /orders, upstream: "${up.url}", identityAssertion: true, identityHeaders: { x-user-email: email } }
`,
    { now: NOW },
  )
  const token = (spec: Parameters<typeof makeToken>[1] = {}) => makeToken(gw.keyring, { exp: 600, ...spec }, gw.clock.now)
  /** Asks about `method uri` the way Traefik and Caddy do. */
  const verify = (method: string, uri: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
    gw.fetch('/auth/verify', { ...init, headers: { 'x-forwarded-method': method, 'x-forwarded-uri': uri, ...headers } })
  const bearer = async (spec: Parameters<typeof makeToken>[1] = {}) => ({ authorization: `Bearer ${await token(spec)}` })
  /** As an edge asks about a browser's navigation (undici's request: fetch() sets its own Sec-Fetch-Mode). */
  const navigate = async (method: string, uri: string, headers: Record<string, string> = {}) => {
    const r = await request(`${gw.url}/auth/verify`, {
      headers: { 'x-forwarded-method': method, 'x-forwarded-uri': uri, accept: 'text/html', 'sec-fetch-mode': 'navigate', ...headers },
    })
    const text = await r.body.text()
    return { status: r.statusCode, location: r.headers.location ?? null, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> }
  }
  return { up, gw, token, verify, bearer, navigate }
}

t.test('a valid token is answered 200 with the identity for the edge to send upstream', async (t) => {
  const { up, verify, bearer } = await setup(t)
  const auth = await bearer({ sub: 'u-alice', roles: ['user', 'ops'], sid: 'AAAAAAsession-one' })
  for (const round of ['first', 'verified before (the synchronous path)']) {
    const r = await verify('GET', '/api/orders/1?x=1', auth)
    t.equal(r.status, 200, round)
    t.equal(r.headers.get('x-user-id'), 'u-alice')
    t.equal(r.headers.get('x-user-roles'), 'user,ops')
    t.equal(r.headers.get('x-session-id'), 'AAAAAAsession-one')
    t.equal(r.headers.get('cache-control'), 'no-store', 'no cache keeps an answer made from credentials')
    t.equal(await r.text(), '', 'no body')
  }
  t.equal(up.seen.length, 0, 'the gateway asks no upstream: the edge proxies')
})

t.test('the original request can be named by X-Forwarded-*, X-Original-* or the path after /verify', async (t) => {
  const { gw, bearer } = await setup(t)
  const auth = await bearer({ roles: ['user'] })
  const admin = await bearer({ roles: ['admin'] })
  const ask = (path: string, headers: Record<string, string>, method = 'GET') => gw.fetch(path, { method, headers })
  t.equal((await ask('/auth/verify', { ...auth, 'x-original-method': 'GET', 'x-original-uri': '/api/admin/x' })).status, 403, 'nginx style')
  t.equal((await ask('/auth/verify', { ...admin, 'x-original-method': 'GET', 'x-original-uri': '/api/admin/x' })).status, 200)
  t.equal((await ask('/auth/verify/api/admin/x', auth)).status, 403, 'Envoy style: the path after /verify')
  t.equal((await ask('/auth/verify/api/admin/x?q=1', admin)).status, 200)
  t.equal((await ask('/auth/verify/public/x', {})).status, 200, 'the path after /verify chooses the route')
  const none = await ask('/auth/verify', auth)
  t.equal(none.status, 400, 'no request named at all')
  t.match(await none.json(), { status: 400, code: 'invalid_request' })
  t.equal((await ask('/auth/verify', { ...auth, 'x-forwarded-uri': '' })).status, 400, 'an empty URI names nothing')
  t.equal((await ask('/auth/verify', { ...auth, 'x-forwarded-uri': 'api/x' })).status, 400, 'nor does a relative one')
  t.equal((await ask('/auth/verify', { ...auth, 'x-forwarded-method': 'G E T', 'x-forwarded-uri': '/api/x' })).status, 400, 'a method is a token')
})

t.test('a request named twice in two ways is refused unless both agree', async (t) => {
  const { gw, bearer, token } = await setup(t)
  const auth = await bearer()
  const ask = (path: string, headers: Record<string, string>) => gw.fetch(path, { headers: { ...auth, ...headers } })
  // An edge sets one pair and passes the client's other headers on: the client must not choose.
  const uris = await ask('/auth/verify', { 'x-original-uri': '/api/admin/x', 'x-forwarded-uri': '/public/x' })
  t.equal(uris.status, 400, 'X-Forwarded-Uri against X-Original-URI')
  t.match(await uris.json(), { code: 'invalid_request', detail: /disagree/ })
  const cookie = { authorization: '', cookie: `__Host-portcullis_at=${await token()}`, origin: 'https://evil.example' }
  const methods = await ask('/auth/verify', { ...cookie, 'x-original-method': 'POST', 'x-forwarded-method': 'GET', 'x-original-uri': '/api/x' })
  t.equal(methods.status, 400, 'X-Forwarded-Method against X-Original-Method')
  t.equal((await ask('/auth/verify/api/admin/x', { 'x-forwarded-uri': '/public/x' })).status, 400, 'a header against the path after /verify')
  t.equal((await ask('/auth/verify/api/x', { 'x-forwarded-uri': '/api//x' })).status, 200, 'the same target once normalised agrees')
  t.equal((await ask('/auth/verify', { 'x-original-uri': '/api/x', 'x-forwarded-uri': '/api/x' })).status, 200, 'the same name twice agrees')
})

t.test('the route is chosen as for a proxied request: normalised path, longest prefix', async (t) => {
  const { verify, bearer } = await setup(t)
  const user = await bearer({ roles: ['user'] })
  t.equal((await verify('GET', '/api/admin/users', user)).status, 403, 'the longer prefix wins')
  t.equal((await verify('GET', '/api/administrators', user)).status, 200, 'on segment boundaries only')
  t.equal((await verify('GET', '/public/../api/admin/users', user)).status, 403, 'dot-segments resolved first')
  t.equal((await verify('GET', '/public/%2e%2e/api/admin/users', user)).status, 403, 'encoded ones too')
  t.equal((await verify('GET', '/public/..%2fapi/admin', user)).status, 400, "an encoded '/' is refused, as for a proxied request")
  t.equal((await verify('GET', '/public/..;/api/admin', user)).status, 400, '..;-style path parameters are refused')
  t.equal((await verify('GET', '/api;v=1/admin', user)).status, 400, 'as are parameters that would change the route')
  t.equal((await verify('GET', 'http://evil.example/api/admin/x', user)).status, 403, 'an absolute URI counts by its path')
  const missing = await verify('GET', '/nowhere/x', user)
  t.equal(missing.status, 404, 'no route matches')
  t.match(await missing.json(), { status: 404, code: 'not_found' })
  t.equal(missing.headers.get('x-user-id'), null)
})

t.test('public and optional routes answer 200, with an identity only for a valid token', async (t) => {
  const { verify, bearer } = await setup(t)
  const open = await verify('GET', '/public/x', { 'x-user-id': 'u-spoofed', x_user_roles: 'admin' })
  t.equal(open.status, 200, 'auth: none')
  t.equal(open.headers.get('x-user-id'), null, 'no identity, and nothing a client sent echoed back')
  t.equal(open.headers.get('x-user-roles'), null)
  const withToken = await verify('GET', '/public/x', await bearer())
  t.equal(withToken.headers.get('x-user-id'), null, 'a public route authenticates no one, as when proxied')
  const anonymous = await verify('GET', '/maybe/x')
  t.equal(anonymous.status, 200, 'auth: optional without a token')
  t.equal(anonymous.headers.get('x-user-id'), null)
  const known = await verify('GET', '/maybe/x', await bearer({ sub: 'u-bob' }))
  t.equal(known.headers.get('x-user-id'), 'u-bob', 'auth: optional with one')
  t.equal((await verify('GET', '/maybe/x', { authorization: 'Bearer not.a.token' })).status, 401, 'an invalid one is still refused')
})

t.test('refusals are the problem answers a proxied request gets', async (t) => {
  const { gw, verify, bearer, token, navigate } = await setup(t)
  for (const [what, headers, code] of [
    ['no token', {}, 'missing_token'],
    ['a malformed token', { authorization: 'Bearer abc' }, 'invalid_token'],
    ['an expired token', await bearer({ iat: -700, exp: -100 }), 'token_expired'],
    ['a token without the role', await bearer({ roles: ['guest'] }), 'forbidden'],
  ] as const) {
    const asked = await verify('GET', '/api/x', headers)
    const proxied = await gw.fetch('/api/x', { headers })
    t.equal(asked.status, proxied.status, `${what}: the same status`)
    t.equal(asked.headers.get('www-authenticate'), proxied.headers.get('www-authenticate'), `${what}: the same challenge`)
    t.equal(asked.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    t.match(await asked.json(), { code }, what)
    t.equal(asked.headers.get('x-user-id'), null, `${what}: no identity`)
  }
  // A browser's sign-in: the 401 stays (nginx passes no other status), Location says where to go.
  const navigation = await navigate('GET', '/api/orders?id=1')
  t.equal(navigation.status, 401)
  t.equal(navigation.location, '/auth/signin?return=%2Fapi%2Forders%3Fid%3D1', 'the sign-in page, back to the page asked for')
  t.match(navigation.body, { code: 'missing_token' })
  t.equal((await navigate('POST', '/api/orders')).location, null, 'only for a navigation: the original method counts')
  t.equal((await navigate('GET', '/api/orders', { accept: 'application/json' })).location, null, 'an API call gets none')
  t.equal((await navigate('GET', '/public/x')).status, 200)
  const forbidden = await navigate('GET', '/api/admin', { cookie: `__Host-portcullis_at=${await token({ roles: ['user'] })}` })
  t.equal(forbidden.status, 403, 'a sign-in cannot fix a 403')
  t.equal(forbidden.location, null)
})

t.test("a route's maxAuthAge applies", async (t) => {
  const { gw, verify, bearer, navigate, token } = await setup(t)
  const authTime = Math.floor(NOW / 1000)
  const recent = await bearer({ extra: { auth_time: authTime } })
  t.equal((await verify('GET', '/payments/1', recent)).status, 200, 'a recent sign-in')
  gw.clock.now += 16 * MINUTE
  const stale = await verify('GET', '/payments/1', await bearer({ extra: { auth_time: authTime } }))
  t.equal(stale.status, 401, 'a sign-in older than maxAuthAge')
  t.match(await stale.json(), { code: 'reauthentication_required' })
  t.match(stale.headers.get('www-authenticate'), /insufficient_user_authentication.*max_age=900/)
  const page = await navigate('GET', '/payments/1', { cookie: `__Host-portcullis_at=${await token({ extra: { auth_time: authTime } })}` })
  t.equal(page.location, '/auth/signin?return=%2Fpayments%2F1&max_age=900', 'the sign-in page is told to ask again')
})

t.test('an ended session is refused at once, and a strict route asks the store', async (t) => {
  const up = await startUpstream(t)
  const { hash } = await import('@node-rs/argon2')
  const gw = await startGateway(
    t,
    `
auth:
  refreshTokenTtl: 20m
  accessTokenTtl: 30m
  identity: [{ type: static, users: [{ username: alice, passwordHash: "${await hash('pw', { memoryCost: 1024, timeCost: 1, parallelism: 1 })}" }] }]
routes:
  - { name: catalogue, prefix: /catalogue, upstream: "${up.url}" }
  - { name: payments, prefix: /payments, upstream: "${up.url}", revocation: strict }
`,
  )
  const login = async () => {
    const r = await gw.fetch('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
      body: JSON.stringify({ username: 'alice', password: 'pw' }),
    })
    return ((await r.json()) as { accessToken: string }).accessToken
  }
  const ask = (uri: string, token: string) => gw.fetch('/auth/verify', { headers: { authorization: `Bearer ${token}`, 'x-forwarded-uri': uri } })
  const first = await login()
  t.equal((await ask('/catalogue/1', first)).status, 200)
  await gw.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${first}` } })
  const ended = await ask('/catalogue/1', first)
  t.equal(ended.status, 401, 'logged out: refused at once')
  t.match(await ended.json(), { code: 'token_revoked' })

  const second = await login()
  gw.clock.now += 21 * MINUTE
  t.equal((await ask('/catalogue/1', second)).status, 200, 'cached: the token alone is trusted until it expires')
  t.equal((await ask('/payments/1', second)).status, 401, 'strict: the store says the idle session is over')
})

t.test('CSRF is judged on the original method and the Origin the edge forwards', async (t) => {
  const { verify, token, bearer } = await setup(t)
  const cookie = { cookie: `__Host-portcullis_at=${await token()}` }
  const edge = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example.com' }
  const refused = await verify('POST', '/api/orders', { ...cookie, ...edge, origin: 'https://evil.example' })
  t.equal(refused.status, 403, 'a cross-site POST with the cookie')
  t.match(await refused.json(), { code: 'csrf_rejected' })
  t.equal((await verify('POST', '/api/orders', { ...cookie, ...edge, origin: 'https://shop.example.com' })).status, 200, "the edge's own origin")
  t.equal((await verify('DELETE', '/api/orders', { ...cookie, ...edge, origin: 'https://app.example.com' })).status, 200, 'an allowed origin')
  t.equal((await verify('PUT', '/api/orders', { ...cookie, ...edge, referer: 'https://evil.example/page' })).status, 403, 'Referer without Origin')
  t.equal((await verify('PATCH', '/api/orders', { ...cookie, ...edge, 'sec-fetch-site': 'cross-site' })).status, 403, 'Sec-Fetch-Site')
  t.equal((await verify('GET', '/api/orders', { ...cookie, ...edge, origin: 'https://evil.example' })).status, 200, 'a safe method is not checked')
  const own = await verify('POST', '/api/orders', { ...cookie, ...edge, origin: 'https://evil.example' }, { method: 'GET' })
  t.equal(own.status, 403, "the verify request's own method (Traefik always sends GET) does not count")
  t.equal(
    (await verify('POST', '/api/orders', { ...(await bearer()), ...edge, origin: 'https://evil.example' })).status,
    200,
    'a bearer token needs no check',
  )
})

t.test("the route's rate limit counts forward-auth and proxied requests alike", async (t) => {
  const { gw, verify, bearer } = await setup(t)
  const auth = await bearer()
  const client = { 'x-forwarded-for': '198.51.100.7' }
  t.equal((await verify('GET', '/limited/x', { ...auth, ...client })).status, 200)
  t.equal((await gw.fetch('/limited/x', { headers: { ...auth, ...client } })).status, 200)
  const third = await verify('GET', '/limited/x', { ...auth, ...client })
  t.equal(third.status, 429, 'the third in the window')
  t.match(await third.json(), { code: 'rate_limited' })
  t.ok(Number(third.headers.get('retry-after')) >= 1, 'Retry-After')
  t.equal((await verify('GET', '/limited/x', { ...auth, 'x-forwarded-for': '198.51.100.8' })).status, 200, "per client (the edge's X-Forwarded-For)")
})

t.test("forged tokens spend the client's invalid-token budget", async (t) => {
  const { gw, verify, token } = await setup(t)
  const { generateKeyPair } = await import('jose')
  const { privateKey } = await generateKeyPair('ES256')
  const deferred = async () => {
    const text = await (await gw.fetch('/metrics')).text()
    return Number(/portcullis_signature_checks_total\{[^}]*lane="deferred"[^}]*result="invalid"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0)
  }
  const forged = (i: number) => token({ sub: `u-${i}`, key: privateKey })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  for (let i = 0; i < 2; i++)
    t.equal((await verify('GET', '/api/x', { authorization: `Bearer ${await forged(i)}`, ...from('203.0.113.9') })).status, 401)
  t.equal(await deferred(), 0, 'within the budget')
  t.equal((await verify('GET', '/api/x', { authorization: `Bearer ${await forged(2)}`, ...from('203.0.113.9') })).status, 401)
  t.equal(await deferred(), 1, 'past it, that client waits behind the others')
  t.equal((await verify('GET', '/api/x', { authorization: `Bearer ${await forged(3)}`, ...from('203.0.113.10') })).status, 401)
  t.equal(await deferred(), 1, 'another client is not')
})

t.test("a route's identity headers and assertion are in the answer", async (t) => {
  const { gw, verify, bearer } = await setup(t)
  const jwks = createLocalJWKSet((await (await gw.fetch('/.well-known/jwks.json')).json()) as never)
  const auth = await bearer({ sub: 'u-alice', extra: { email: 'alice@example.com' } })
  for (const round of ['signed now', 'signed before']) {
    const r = await verify('GET', '/orders/7', auth)
    t.equal(r.status, 200, round)
    t.equal(r.headers.get('x-user-email'), 'alice@example.com')
    const assertion = r.headers.get('x-portcullis-assertion')!
    const { payload } = await jwtVerify(assertion, jwks, { typ: 'portcullis-assertion+jwt', currentDate: new Date(gw.clock.now) })
    t.match(payload, { sub: 'u-alice', iss: 'portcullis' }, round)
    t.equal(typeof payload.aud, 'string', 'audience: the upstream origin')
  }
  const plain = await verify('GET', '/api/x', auth)
  t.equal(plain.headers.get('x-portcullis-assertion'), null, 'only where the route asks for it')
  t.equal(plain.headers.get('x-user-email'), null)
  const bad = await verify('GET', '/orders/7', await bearer({ extra: { email: 'a\u0001b' } }))
  t.equal(bad.status, 401, 'a claim a header cannot carry refuses the token, as when proxied')
})

t.test('any method, with or without a body, which is never read', async (t) => {
  const { gw, bearer } = await setup(t)
  const auth = await bearer()
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const r = await gw.fetch('/auth/verify', { method, headers: { ...auth, 'x-forwarded-uri': '/api/x' } })
    t.equal(r.status, 200, method)
    t.equal(r.headers.get('x-user-id'), 'u-alice', method)
  }
  const body = await gw.fetch('/auth/verify', {
    method: 'POST',
    headers: { ...auth, 'x-forwarded-uri': '/api/x', 'content-type': 'application/json' },
    body: '{not json'.repeat(100_000),
  })
  t.equal(body.status, 200, 'a body the gateway would refuse to parse, beyond any limit')
})
