/**
 * The fetch helper against a real gateway (in process, injected clock) in cookie mode: the
 * error codes it reacts to are the ones the gateway really sends.
 */
import t, { type Test } from 'tap'
import { createAuthFetch, type SessionEnded } from '../../client/portcullis-fetch.js'
import { hashPassword } from '../../src/auth/passwords.js'
import { cookieFetch, type CookieFetch } from '../helpers/cookie-fetch.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'

async function gateway(t: Test) {
  const up = await startUpstream(t)
  const hash = await hashPassword('alice-pw')
  return startGateway(
    t,
    `
auth:
  accessTokenTtl: 2m
  clockTolerance: 5s
  cookies: { secure: true }
  identity:
    - type: static
      users: [{ username: alice, passwordHash: "${hash}", roles: [user] }]
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`,
  )
}

/** A browser signed in as alice through the login endpoint (cookie mode). */
async function browser(gw: TestGateway) {
  const jar = cookieFetch()
  const res = await jar(`${gw.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-pw' }),
  })
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`)
  const ended: SessionEnded[] = []
  const authFetch = createAuthFetch({ basePath: `${gw.url}/auth`, fetch: jar, onSessionEnded: (e) => ended.push(e), crossTab: false })
  return { jar, ended, authFetch }
}
const refreshesOf = (jar: CookieFetch) => jar.sent.filter((s) => s.url.endsWith('/auth/refresh')).length
const accessCookie = (jar: CookieFetch) => jar.jar.get('__Host-portcullis_at')

t.test('an expired access token is refreshed and the call goes through', async (t) => {
  const gw = await gateway(t)
  const { jar, authFetch } = await browser(gw)
  t.equal((await authFetch(`${gw.url}/api/x`)).status, 200)
  const before = accessCookie(jar)
  gw.clock.now += 2 * 60_000 + 6_000
  const res = await authFetch(`${gw.url}/api/x`)
  t.equal(res.status, 200)
  t.equal(refreshesOf(jar), 1)
  t.not(accessCookie(jar), before, 'a new access cookie')
})

t.test('an access cookie the browser dropped (it expired) is refreshed too', async (t) => {
  const gw = await gateway(t)
  const { jar, authFetch } = await browser(gw)
  jar.jar.delete('__Host-portcullis_at')
  t.equal((await authFetch(`${gw.url}/auth/me`)).status, 200)
  t.equal(refreshesOf(jar), 1)
})

t.test('after "log out everywhere" elsewhere, the next call ends the session here', async (t) => {
  const gw = await gateway(t)
  const laptop = await browser(gw)
  const phone = await browser(gw)
  t.equal((await laptop.authFetch(`${gw.url}/auth/logout-all`, { method: 'POST' })).status, 204)
  const res = await phone.authFetch(`${gw.url}/api/x`)
  t.equal(res.status, 401)
  t.match(await res.json(), { code: 'token_revoked' })
  t.equal(refreshesOf(phone.jar), 1, 'one refresh was tried')
  t.equal(phone.ended.length, 1)
  t.match(phone.ended[0]?.code, /^(invalid_refresh_token|session_expired)$/)
  t.equal(phone.jar.jar.size, 0, 'the refusal cleared the cookies')
})
