/**
 * The session lifecycle over real HTTP, run once per store (memory, redis): login, rotation
 * with grace and theft detection, expiry, logout, logout-all, the device list, admin.
 */
import type { Test } from 'tap'
import { hashPassword } from '../../src/auth/passwords.js'
import type { SessionStore } from '../../src/sessions/types.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send, type Answer } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'

export type StoreFactory = (t: Test, opts: { revocationTtl: number; maxSessionsPerUser: number }) => Promise<SessionStore>

const DAY = 86_400_000
let hashes: Promise<{ alice: string; bob: string; root: string }> | null = null
const userHashes = () =>
  (hashes ??= Promise.all([hashPassword('alice-pw'), hashPassword('bob-pw'), hashPassword('root-pw')]).then(([alice, bob, root]) => ({
    alice,
    bob,
    root,
  })))

async function gateway(t: Test, makeStore: StoreFactory, extra = '') {
  const up = await startUpstream(t)
  const h = await userHashes()
  const yaml = `
auth:
  accessTokenTtl: 10m
  refreshTokenTtl: 14d
  sessionMaxAge: 30d
  refreshReuseGrace: 10s
  maxSessionsPerUser: 3
  cookies: { secure: true }
  identity:
    - type: static
      users:
        - { username: alice, passwordHash: "${h.alice}", subject: u-alice, roles: [user], claims: { tenant: t1 } }
        - { username: bob, passwordHash: "${h.bob}", subject: u-bob, roles: [user] }
        - { username: root, passwordHash: "${h.root}", subject: u-root, roles: [user, admin] }
${extra}
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`
  const store = await makeStore(t, { revocationTtl: 10 * 60_000 + 30_000, maxSessionsPerUser: 3 })
  const gw = await startGateway(t, yaml, { store })
  return { gw, up }
}

const TOKEN = { 'x-auth-transport': 'token', 'content-type': 'application/json' }
const json = (body: unknown) => JSON.stringify(body)

async function login(gw: TestGateway, username = 'alice', password = `${username}-pw`, headers: Record<string, string> = TOKEN, ua = 'test-agent/1') {
  return send(gw.url, '/auth/login', { method: 'POST', headers: { ...headers, 'user-agent': ua }, body: json({ username, password }) })
}
async function tokens(gw: TestGateway, username = 'alice', ua?: string) {
  const res = await login(gw, username, undefined, TOKEN, ua)
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body}`)
  return res.json<{ accessToken: string; refreshToken: string; sessionId: string }>()
}
const refresh = (gw: TestGateway, refreshToken: string) =>
  send(gw.url, '/auth/refresh', { method: 'POST', headers: TOKEN, body: json({ refreshToken }) })
const bearer = (token: string, more: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...more })
const api = (gw: TestGateway, token: string) => send(gw.url, '/api/x', { headers: bearer(token) })
const code = (res: Answer) => res.json()['code']

export function sessionsContract(t: Test, makeStore: StoreFactory): void {
  t.test('login in cookie mode sets HttpOnly prefixed cookies and keeps the refresh token out of the body', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const res = await login(gw, 'alice', 'alice-pw', { 'content-type': 'application/json' })
    t.equal(res.status, 200)
    const body = res.json()
    t.match(body, { tokenType: 'Bearer', expiresIn: 600, sessionId: String })
    t.type(body['accessToken'], 'string')
    t.equal(body['refreshToken'], undefined)
    t.equal(res.headers['cache-control'], 'no-store')
    const cookies = res.headers['set-cookie'] ?? []
    const access = cookies.find((c) => c.startsWith('__Host-portcullis_at='))
    const refreshCookie = cookies.find((c) => c.startsWith('__Secure-portcullis_rt='))
    t.match(access, /; Path=\/(;|$)/)
    t.match(access, /HttpOnly/)
    t.match(access, /Secure/)
    t.match(access, /SameSite=Lax/)
    t.notMatch(access, /Domain=/)
    t.match(refreshCookie, /; Path=\/auth(;|$)/)
    t.match(refreshCookie, /HttpOnly/)
    t.match(refreshCookie, /Secure/)
  })

  t.test('login in token mode returns the refresh token and sets no cookie', async (t) => {
    const { gw, up } = await gateway(t, makeStore)
    const res = await login(gw)
    t.equal(res.status, 200)
    t.match(res.json(), { refreshToken: /^[A-Za-z0-9_-]{28}\.[A-Za-z0-9_-]{43}$/ })
    t.equal(res.headers['set-cookie'], undefined)
    const { accessToken, sessionId } = res.json<{ accessToken: string; sessionId: string }>()
    t.equal((await api(gw, accessToken)).status, 200)
    t.equal(up.last().headers['x-user-id'], 'u-alice')
    t.equal(up.last().headers['x-session-id'], sessionId)
    const me = await send(gw.url, '/auth/me', { headers: bearer(accessToken) })
    t.match(me.json(), { subject: 'u-alice', roles: ['user'], sessionId, claims: { tenant: 't1' } })
  })

  t.test('a wrong password and an unknown user get the same answer', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const wrong = await login(gw, 'alice', 'nope')
    const unknown = await login(gw, 'mallory', 'nope')
    t.equal(wrong.status, 401)
    t.equal(unknown.status, 401)
    t.equal(wrong.body, unknown.body)
    t.equal(code(wrong), 'invalid_credentials')
  })

  t.test('malformed login bodies get 4xx, never 500', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const cases: Array<[string | undefined, string, number]> = [
      ['application/json', '{', 400],
      ['application/json', '[]', 400],
      ['application/json', '"alice"', 400],
      ['application/json', '{}', 400],
      ['application/json', json({ username: 'alice' }), 400],
      ['application/json', json({ username: 42, password: 'x' }), 400],
      ['application/json', json({ username: 'alice', password: { $gt: '' } }), 400],
      ['application/json', json({ username: 'alice', password: 'x'.repeat(5000) }), 400],
      ['application/json', json({ username: 'a'.repeat(300), password: 'x' }), 400],
      ['application/json', json({ username: 'alice', password: 'p', pad: 'x'.repeat(20_000) }), 413],
      ['text/plain', 'username=alice', 415],
      ['application/x-www-form-urlencoded', 'username=alice&password=alice-pw', 415],
      [undefined, '', 415],
    ]
    for (const [type, body, status] of cases) {
      const headers: Record<string, string> = { 'x-auth-transport': 'token' }
      if (type) headers['content-type'] = type
      const res = await send(gw.url, '/auth/login', { method: 'POST', headers, body })
      t.equal(res.status, status, `${type} ${body.slice(0, 40)} → ${res.body}`)
      t.type(res.json()['code'], 'string')
    }
  })

  t.test('login from a foreign origin in cookie mode is refused as CSRF', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const res = await login(gw, 'alice', 'alice-pw', { 'content-type': 'application/json', origin: 'https://evil.example' })
    t.equal(res.status, 403)
    t.equal(code(res), 'csrf_rejected')
  })

  t.test('refresh rotates: a new refresh token, and the old one is the only one with grace', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const first = await tokens(gw)
    const r1 = await refresh(gw, first.refreshToken)
    t.equal(r1.status, 200)
    const second = r1.json<{ refreshToken: string; accessToken: string }>()
    t.not(second.refreshToken, first.refreshToken)
    t.equal((await api(gw, second.accessToken)).status, 200)
    const again = await refresh(gw, first.refreshToken)
    t.equal(again.status, 200, 'the just-rotated token within the grace window')
    t.equal(again.json()['refreshToken'], second.refreshToken, 'returns the same successor')
  })

  t.test('many concurrent refreshes of one token converge on one successor', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const first = await tokens(gw)
    const answers = await Promise.all(Array.from({ length: 25 }, () => refresh(gw, first.refreshToken)))
    t.same(
      answers.map((a) => a.status),
      Array(25).fill(200),
    )
    const successors = new Set(answers.map((a) => a.json()['refreshToken']))
    t.equal(successors.size, 1)
    const next = await refresh(gw, [...successors][0] as string)
    t.equal(next.status, 200, 'the session lives on')
  })

  t.test('the predecessor after the grace window ends the whole session', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const first = await tokens(gw)
    const second = (await refresh(gw, first.refreshToken)).json<{ refreshToken: string; accessToken: string }>()
    gw.clock.now += 11_000
    const reuse = await refresh(gw, first.refreshToken)
    t.equal(reuse.status, 401)
    t.equal(code(reuse), 'refresh_token_reused')
    t.equal(code(await api(gw, second.accessToken)), 'token_revoked', 'its access tokens fail at once')
    t.equal(code(await api(gw, first.accessToken)), 'token_revoked')
    t.equal((await refresh(gw, second.refreshToken)).status, 401, 'the successor died too')
  })

  t.test('the grand-parent token inside the grace window is theft too', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const first = await tokens(gw)
    const second = (await refresh(gw, first.refreshToken)).json<{ refreshToken: string }>()
    const third = (await refresh(gw, second.refreshToken)).json<{ refreshToken: string; accessToken: string }>()
    const reuse = await refresh(gw, first.refreshToken)
    t.equal(code(reuse), 'refresh_token_reused')
    t.equal(code(await api(gw, third.accessToken)), 'token_revoked')
  })

  t.test('a forged secret for a known session id changes nothing', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const first = await tokens(gw)
    const forged = first.refreshToken.slice(0, 29) + 'A'.repeat(43)
    t.equal(code(await refresh(gw, forged)), 'invalid_refresh_token')
    t.equal((await refresh(gw, first.refreshToken)).status, 200, 'the real owner is unaffected')
  })

  t.test('malformed refresh requests get 4xx', async (t) => {
    const { gw } = await gateway(t, makeStore)
    for (const body of [json({ refreshToken: 42 }), json({ refreshToken: '' }), json({ refreshToken: 'x'.repeat(10_000) }), json({}), '[]', '{']) {
      const res = await send(gw.url, '/auth/refresh', { method: 'POST', headers: TOKEN, body })
      t.ok(res.status === 400 || res.status === 401, `${body.slice(0, 30)} → ${res.status}`)
    }
  })

  t.test('an idle session expires; use slides the idle expiry but never the absolute one', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const idle = await tokens(gw)
    gw.clock.now += 15 * DAY
    t.equal(code(await refresh(gw, idle.refreshToken)), 'session_expired')

    let current = (await tokens(gw)).refreshToken
    for (let day = 0; day < 29; day++) {
      gw.clock.now += DAY
      const res = await refresh(gw, current)
      t.equal(res.status, 200, `day ${day + 1}`)
      current = res.json<{ refreshToken: string }>().refreshToken
    }
    gw.clock.now += 2 * DAY
    t.equal(code(await refresh(gw, current)), 'session_expired', 'sessionMaxAge is absolute')
  })

  t.test('logout ends the session: 204, cookies cleared, its tokens fail at once', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const s = await tokens(gw)
    const out = await send(gw.url, '/auth/logout', { method: 'POST', headers: bearer(s.accessToken) })
    t.equal(out.status, 204)
    t.ok(
      (out.headers['set-cookie'] ?? []).some((c) => c.startsWith('__Host-portcullis_at=;')),
      'access cookie cleared',
    )
    t.equal(code(await api(gw, s.accessToken)), 'token_revoked')
    t.equal((await refresh(gw, s.refreshToken)).status, 401)
  })

  t.test('logout with only the refresh token ends the session too', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const s = await tokens(gw)
    const out = await send(gw.url, '/auth/logout', { method: 'POST', headers: TOKEN, body: json({ refreshToken: s.refreshToken }) })
    t.equal(out.status, 204)
    t.equal(code(await api(gw, s.accessToken)), 'token_revoked')
  })

  t.test('logout-all ends every session of the caller and no one else', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const a1 = await tokens(gw)
    const a2 = await tokens(gw)
    const b = await tokens(gw, 'bob')
    t.equal(code(await send(gw.url, '/auth/logout-all', { method: 'POST' })), 'missing_token')
    t.equal((await send(gw.url, '/auth/logout-all', { method: 'POST', headers: bearer(a1.accessToken) })).status, 204)
    t.equal(code(await api(gw, a1.accessToken)), 'token_revoked')
    t.equal(code(await api(gw, a2.accessToken)), 'token_revoked')
    t.equal((await refresh(gw, a2.refreshToken)).status, 401)
    t.equal((await api(gw, b.accessToken)).status, 200, "bob's session is untouched")
    const fresh = await tokens(gw)
    t.equal((await api(gw, fresh.accessToken)).status, 200, 'a new login right after works')
  })

  t.test('the session list shows devices, marks the current one, and a user can end only their own', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const phone = await tokens(gw, 'alice', 'phone/1')
    gw.clock.now += 1000
    const laptop = await tokens(gw, 'alice', 'laptop/2')
    const bob = await tokens(gw, 'bob')
    const list = await send(gw.url, '/auth/sessions', { headers: bearer(laptop.accessToken) })
    t.equal(list.status, 200)
    const sessions = list.json<{ sessions: Array<Record<string, unknown>> }>().sessions
    t.equal(sessions.length, 2)
    t.match(sessions[0], { id: laptop.sessionId, current: true, userAgent: 'laptop/2', ip: '127.0.0.1', createdAt: /^\d{4}-\d\d-\d\dT/ })
    t.match(sessions[1], { id: phone.sessionId, current: false, userAgent: 'phone/1' })
    t.ok(sessions.every((s) => typeof s['lastUsedAt'] === 'string' && typeof s['expiresAt'] === 'string'))

    const other = await send(gw.url, `/auth/sessions/${bob.sessionId}`, { method: 'DELETE', headers: bearer(laptop.accessToken) })
    t.equal(other.status, 404, "another user's session looks like no session")
    t.equal((await api(gw, bob.accessToken)).status, 200)
    t.equal((await send(gw.url, '/auth/sessions/nope', { method: 'DELETE', headers: bearer(laptop.accessToken) })).status, 404)
    const del = await send(gw.url, `/auth/sessions/${phone.sessionId}`, { method: 'DELETE', headers: bearer(laptop.accessToken) })
    t.equal(del.status, 204)
    t.equal(code(await api(gw, phone.accessToken)), 'token_revoked')
    t.equal((await api(gw, laptop.accessToken)).status, 200)
  })

  t.test('admin endpoints need the admin role and act on any user', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const alice = await tokens(gw)
    const alice2 = await tokens(gw)
    const root = await tokens(gw, 'root')
    t.equal(code(await send(gw.url, '/auth/admin/users/u-alice/sessions', { headers: bearer(alice.accessToken) })), 'forbidden')
    const list = await send(gw.url, '/auth/admin/users/u-alice/sessions', { headers: bearer(root.accessToken) })
    t.equal(list.json<{ sessions: unknown[] }>().sessions.length, 2)
    t.equal((await send(gw.url, `/auth/admin/sessions/${alice.sessionId}`, { method: 'DELETE', headers: bearer(root.accessToken) })).status, 204)
    t.equal(code(await api(gw, alice.accessToken)), 'token_revoked')
    t.equal((await send(gw.url, `/auth/admin/sessions/${alice.sessionId}`, { method: 'DELETE', headers: bearer(root.accessToken) })).status, 404)
    t.equal((await send(gw.url, '/auth/admin/users/u-alice/sessions', { method: 'DELETE', headers: bearer(root.accessToken) })).status, 204)
    t.equal(code(await api(gw, alice2.accessToken)), 'token_revoked')
    t.equal((await api(gw, root.accessToken)).status, 200)
  })

  t.test('beyond maxSessionsPerUser the oldest session is ended', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const oldest = await tokens(gw)
    for (let i = 0; i < 3; i++) {
      gw.clock.now += 1000
      await tokens(gw)
    }
    t.equal(code(await api(gw, oldest.accessToken)), 'token_revoked')
    t.equal((await refresh(gw, oldest.refreshToken)).status, 401)
  })

  t.test('refresh by cookie works for a same-origin request and is refused cross-site', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const res = await login(gw, 'alice', 'alice-pw', { 'content-type': 'application/json' })
    const rt = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Secure-portcullis_rt='))!.split(';')[0]!
    const cross = await send(gw.url, '/auth/refresh', { method: 'POST', headers: { cookie: rt, origin: 'https://evil.example' } })
    t.equal(code(cross), 'csrf_rejected')
    const same = await send(gw.url, '/auth/refresh', { method: 'POST', headers: { cookie: rt, origin: gw.url } })
    t.equal(same.status, 200)
    t.equal(same.json()['refreshToken'], undefined)
    t.ok(
      (same.headers['set-cookie'] ?? []).some((c) => c.startsWith('__Secure-portcullis_rt=')),
      'the rotated token arrives as a cookie',
    )
  })

  t.test('secrets never reach the logs', async (t) => {
    const { gw } = await gateway(t, makeStore)
    const s = await tokens(gw)
    await refresh(gw, s.refreshToken)
    await login(gw, 'alice', 'wrong-password-123')
    const text = gw.logText()
    t.notMatch(text, 'alice-pw')
    t.notMatch(text, 'wrong-password-123')
    t.notMatch(text, s.refreshToken.slice(29))
    t.notMatch(text, s.accessToken.split('.')[2]!)
  })
}
