/**
 * Per-route freshness over a real gateway and upstream: routes[].revocation overriding the
 * global mode, and routes[].maxAuthAge (RFC 9470's step-up challenge) for API calls, browser
 * navigations and the web app's fetch helper.
 */
import { hash, type Algorithm } from '@node-rs/argon2'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { createAuthFetch, type ReauthenticationRequired } from '../../client/portcullis-fetch.js'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'

const MINUTE = 60_000
const passwordHash = await hash('pw', { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm })

async function setup(t: Test) {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
auth:
  accessTokenTtl: 30m
  refreshTokenTtl: 20m
  signInPage: true
  cookies: { secure: false }
  identity: [{ type: static, users: [{ username: alice, passwordHash: "${passwordHash}", subject: u-alice }] }]
routes:
  - { name: catalogue, prefix: /catalogue, upstream: "${up.url}" }
  - { name: payments, prefix: /payments, upstream: "${up.url}", revocation: strict, maxAuthAge: 15m }
  - { name: stats, prefix: /stats, upstream: "${up.url}", revocation: "off" }
`,
  )
  const login = async () => {
    const r = await gw.fetch('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
      body: JSON.stringify({ username: 'alice', password: 'pw' }),
    })
    return (await r.json()) as { accessToken: string; refreshToken: string }
  }
  const call = (path: string, token: string) => gw.fetch(path, { headers: { authorization: `Bearer ${token}` } })
  return { up, gw, login, call }
}

t.test('a route can be stricter or laxer about ended sessions than revocation.mode', async (t) => {
  const { gw, login, call } = await setup(t)
  const { accessToken } = await login()
  for (const path of ['/catalogue/1', '/payments/1', '/stats/1']) t.equal((await call(path, accessToken)).status, 200, `${path}: a live session`)
  // Idle past refreshTokenTtl: the session is over in the store, though its access token still
  // has 9 minutes and no revocation was ever published for it.
  gw.clock.now += 21 * MINUTE
  t.equal((await call('/catalogue/1', accessToken)).status, 200, 'cached: the token alone is trusted until it expires')
  const strict = await call('/payments/1', accessToken)
  t.equal(strict.status, 401, 'strict: the store is asked and the session is gone')
  t.match(await strict.json(), { code: 'token_revoked' })

  const second = await login()
  await gw.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${second.accessToken}` } })
  t.equal((await call('/catalogue/1', second.accessToken)).status, 401, 'cached: a logout is refused at once')
  t.equal((await call('/stats/1', second.accessToken)).status, 200, 'off: signature and claims only')
})

t.test('maxAuthAge wants a recent sign-in: a refresh does not renew it, signing in again does', async (t) => {
  const { gw, login, call } = await setup(t)
  const first = await login()
  t.equal((await call('/payments/1', first.accessToken)).status, 200, 'just signed in')
  gw.clock.now += 16 * MINUTE
  const stale = await call('/payments/1', first.accessToken)
  t.equal(stale.status, 401)
  t.match(await stale.json(), { code: 'reauthentication_required' })
  t.equal(
    stale.headers.get('www-authenticate'),
    'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=900',
    "RFC 9470's challenge, max_age in seconds",
  )
  t.equal((await call('/catalogue/1', first.accessToken)).status, 200, 'other routes do not care')

  const refreshed = await gw.fetch('/auth/refresh', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ refreshToken: first.refreshToken }),
  })
  const { accessToken: renewed } = (await refreshed.json()) as { accessToken: string }
  t.equal((await call('/payments/1', renewed)).status, 401, 'a refreshed token keeps the old auth_time')

  const again = await login()
  t.equal((await call('/payments/1', again.accessToken)).status, 200, 'a new sign-in is recent')
  const me = (await (await call('/auth/me', again.accessToken)).json()) as { authTime: string }
  t.equal(Date.parse(me.authTime), Math.floor(gw.clock.now / 1000) * 1000, 'auth_time is the sign-in')
})

t.test('a browser on a stale route goes to the sign-in page, which asks for a sign-in instead of refreshing', async (t) => {
  const { gw, login } = await setup(t)
  const { accessToken } = await login()
  gw.clock.now += 16 * MINUTE
  const navigation = await request(`${gw.url}/payments/checkout?id=7`, {
    headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', cookie: `portcullis_at=${accessToken}` },
  })
  t.equal(navigation.statusCode, 302)
  t.equal(navigation.headers.location, '/auth/signin?return=%2Fpayments%2Fcheckout%3Fid%3D7&max_age=900')
  await navigation.body.dump()
  const page = await (await gw.fetch('/auth/signin?return=%2Fpayments%2Fcheckout%3Fid%3D7&max_age=900')).text()
  t.match(page, 'data-reauth="1"', 'the page script skips the silent refresh')
  t.match(page, '<h1>Sign in again</h1>')
  const api = await gw.fetch('/payments/checkout', { headers: { authorization: `Bearer ${accessToken}`, accept: 'text/html' } })
  t.equal(api.status, 401, 'a program gets the 401')
})

t.test('the fetch helper tells the app to have the user sign in again, without a useless refresh', async (t) => {
  const { gw, login } = await setup(t)
  const { accessToken } = await login()
  gw.clock.now += 16 * MINUTE
  let refreshes = 0
  const told: ReauthenticationRequired[] = []
  const authFetch = createAuthFetch({
    basePath: `${gw.url}/auth`,
    crossTab: false,
    fetch: (input, init) => {
      if (String(input).endsWith('/auth/refresh')) refreshes++
      return fetch(input, { ...init, headers: { authorization: `Bearer ${accessToken}` } })
    },
    onReauthenticationRequired: (r) => told.push(r),
  })
  const response = await authFetch(`${gw.url}/payments/1`)
  t.equal(response.status, 401, 'the response is still the caller’s')
  t.equal(refreshes, 0, 'no refresh: it would keep the old sign-in time')
  t.same(told, [{ maxAge: 900, signInUrl: `${gw.url}/auth/signin?return=%2F&max_age=900` }])
})
