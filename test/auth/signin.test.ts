/**
 * auth.signInPage over real HTTP: which requests are sent to the sign-in page, which keep
 * their 401, and what the page and its scripts are served with.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { signInPath } from '../../src/auth/signin.js'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const config = (up: string, signInPage: boolean) => `
auth:
  signInPage: ${signInPage}
  cookies: { secure: false }
routes:
  - { name: app, prefix: /app, upstream: "${up}" }
  - { name: maybe, prefix: /maybe, upstream: "${up}", auth: optional }
  - { name: admin, prefix: /admin-app, upstream: "${up}", roles: [admin] }
`

/** What Chromium sends when the address bar opens a page. */
const NAVIGATION = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'sec-fetch-site': 'none',
}

async function setup(t: Test, signInPage = true) {
  const up = await startUpstream(t)
  return { up, gw: await startGateway(t, config(up.url, signInPage)) }
}
/** secure: false in this config, so the access cookie has no prefix. */
const cookie = (token: string) => ({ cookie: `portcullis_at=${token}` })

t.test('a navigation without a session is redirected to the sign-in page with its path and query', async (t) => {
  const { up, gw } = await setup(t)
  const res = await send(gw.url, '/app/orders?id=42&x=a%20b', { headers: NAVIGATION })
  t.equal(res.status, 302)
  t.equal(res.headers.location, '/auth/signin?return=%2Fapp%2Forders%3Fid%3D42%26x%3Da%2520b')
  t.equal(res.headers['cache-control'], 'no-store', 'no cache may replay the redirect after sign-in')
  t.equal(up.seen.length, 0, 'the upstream never sees it')
})

t.test('a navigation with an expired, revoked or forged token is redirected too', async (t) => {
  const { up, gw } = await setup(t)
  const sid = 'REVOKEDsid000000000000000000'
  gw.revocations.apply({ type: 'session', sessionId: sid, forgetAfter: Date.now() + 60_000 })
  const tokens = {
    expired: await makeToken(gw.keyring, { iat: -900, exp: -600 }),
    revoked: await makeToken(gw.keyring, { sid }),
    forged: 'not.a.token',
  }
  for (const [kind, token] of Object.entries(tokens)) {
    const res = await send(gw.url, '/app/', { headers: { ...NAVIGATION, ...cookie(token) } })
    t.equal(res.status, 302, kind)
    t.equal(res.headers.location, '/auth/signin?return=%2Fapp%2F', kind)
  }
  t.equal(up.seen.length, 0)
})

t.test('a HEAD navigation and one from a browser without Fetch Metadata are redirected', async (t) => {
  const { gw } = await setup(t)
  t.equal((await send(gw.url, '/app/', { method: 'HEAD', headers: NAVIGATION })).status, 302)
  t.equal((await send(gw.url, '/app/', { headers: { accept: 'text/html' } })).status, 302)
})

t.test('the return path is the normalised one', async (t) => {
  const { gw } = await setup(t)
  const res = await send(gw.url, '/app/a/./b/../c', { headers: NAVIGATION })
  t.equal(res.headers.location, '/auth/signin?return=%2Fapp%2Fa%2Fc')
})

t.test('API calls keep their 401 JSON', async (t) => {
  const { gw } = await setup(t)
  const cases: [string, { method?: string; headers: Record<string, string> }][] = [
    ['fetch() asking for anything', { headers: { accept: '*/*', 'sec-fetch-mode': 'cors' } }],
    ['fetch() asking for HTML', { headers: { accept: 'text/html', 'sec-fetch-mode': 'same-origin' } }],
    ['an API client asking for JSON', { headers: { accept: 'application/json' } }],
    ['a client without Accept', { headers: {} }],
    ['a POST from a form', { method: 'POST', headers: { ...NAVIGATION, 'content-type': 'application/x-www-form-urlencoded' } }],
    ['a bearer token that is no good', { headers: { ...NAVIGATION, authorization: 'Bearer not.a.token' } }],
  ]
  for (const [why, opts] of cases) {
    const res = await send(gw.url, '/app/', opts)
    t.equal(res.status, 401, why)
    t.match(res.headers['content-type'], /json/, why)
  }
})

t.test('a signed-in navigation goes through; a missing role is a 403, not a sign-in', async (t) => {
  const { up, gw } = await setup(t)
  const token = await makeToken(gw.keyring, { roles: ['user'] })
  t.equal((await send(gw.url, '/app/', { headers: { ...NAVIGATION, ...cookie(token) } })).status, 200)
  t.equal(up.seen.length, 1)
  const res = await send(gw.url, '/admin-app/', { headers: { ...NAVIGATION, ...cookie(token) } })
  t.equal(res.status, 403)
  t.equal(res.json()['code'], 'forbidden')
})

t.test('optional routes are not redirected', async (t) => {
  const { gw } = await setup(t)
  t.equal((await send(gw.url, '/maybe/', { headers: NAVIGATION })).status, 200)
})

t.test('with signInPage off, a navigation gets the 401 and there is no sign-in page', async (t) => {
  const { gw } = await setup(t, false)
  t.equal((await send(gw.url, '/app/', { headers: NAVIGATION })).status, 401)
  t.equal((await send(gw.url, '/auth/signin', { headers: NAVIGATION })).status, 404)
  t.equal((await send(gw.url, '/auth/signin.js')).status, 404)
  t.equal((await send(gw.url, '/auth/return-path.js')).status, 404)
  t.equal((await send(gw.url, '/auth/client.js')).status, 200, 'the fetch helper is served either way')
})

t.test('a basePath of / gives /signin, not //signin', async (t) => {
  t.equal(signInPath('/'), '/signin')
  t.equal(signInPath('/auth'), '/auth/signin')
  t.equal(signInPath('/auth/'), '/auth/signin')
})

t.test('the sign-in page is served with a strict policy and the checked return path', async (t) => {
  const { gw } = await setup(t)
  const res = await send(gw.url, '/auth/signin?return=%2Fapp%2F%3Fa%3D1', { headers: NAVIGATION })
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(res.headers['cache-control'], 'no-store')
  const csp = String(res.headers['content-security-policy'])
  t.match(csp, "default-src 'none'")
  t.match(csp, "script-src 'self'")
  t.match(csp, "frame-ancestors 'none'")
  t.notMatch(csp, 'unsafe-inline')
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.match(res.body, 'data-return="/app/?a=1"')
  t.match(res.body, '<script type="module" src="/auth/signin.js"></script>')
  t.notMatch(res.body, /<script>/, 'no inline script')
  t.match(res.body, /<label for="username">/)
  t.match(res.body, /<label for="password">/)
  t.match(res.body, /id="error" aria-live="assertive"/)
})

t.test('the sign-in page never renders an unsafe return path, and escapes what it renders', async (t) => {
  const { gw } = await setup(t)
  for (const bad of ['//evil.example', '/%5Cevil.example', 'https://evil.example/', 'javascript:alert(1)', '%2F%09%2Fevil.example']) {
    const res = await send(gw.url, `/auth/signin?return=${bad}`)
    t.match(res.body, 'data-return="/"', bad)
  }
  const twice = await send(gw.url, '/auth/signin?return=/app/&return=//evil.example')
  t.match(twice.body, 'data-return="/"', 'a repeated parameter is refused as a whole')
  const quoted = await send(gw.url, `/auth/signin?return=${encodeURIComponent('/x?q="><script>alert(1)</script>')}`)
  t.match(quoted.body, 'data-return="/x?q=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
  t.notMatch(quoted.body, '<script>alert(1)')
})

t.test("the page's script imports its return-path check from the module the gateway itself runs", async (t) => {
  const { gw } = await setup(t)
  t.match((await send(gw.url, '/auth/signin.js')).body, "import { safeReturnPath } from './return-path.js'")
  const served = (await send(gw.url, '/auth/return-path.js')).body
  t.equal(served, readFileSync(new URL('../../client/return-path.js', import.meta.url), 'utf8'), 'served as the server imports it')
})

t.test('the scripts are JavaScript, revalidated by ETag', async (t) => {
  const { gw } = await setup(t)
  for (const path of ['/auth/signin.js', '/auth/return-path.js', '/auth/client.js']) {
    const res = await send(gw.url, path)
    t.equal(res.status, 200, path)
    t.equal(res.headers['content-type'], 'text/javascript; charset=utf-8', path)
    t.equal(res.headers['cache-control'], 'no-cache', path)
    t.equal(res.headers['pragma'], undefined, path)
    t.equal(res.headers['x-content-type-options'], 'nosniff', path)
    t.match(res.body, /^(import|export) /m, path) // an ES module
    const again = await send(gw.url, path, { headers: { 'if-none-match': String(res.headers.etag) } })
    t.equal(again.status, 304, path)
    t.equal(again.body, '', path)
  }
})
