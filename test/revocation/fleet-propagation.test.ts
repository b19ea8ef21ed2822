/**
 * SPEC "Revocation": ending a session on one instance makes its access tokens fail on every
 * instance sharing the store, at once. Two real instances against one real redis-server; each
 * ending is made on A and B is polled until it refuses the token.
 */
import t, { type Test } from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startFleet, type Instance } from '../helpers/fleet.js'
import { api, bearer, codeOf, login, logout, refresh, until, type Tokens } from '../helpers/fleet-client.js'

/** The bound the issue asks for is "milliseconds"; a second leaves room for a loaded CI box. */
const BOUND_MS = 1000
const measured: Record<string, number> = {}

const redis = await startRedis(t)
const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
const a = await fleet.start('a', redis.url)
const b = await fleet.start('b', redis.url)
for (const gw of [a, b]) {
  await until(
    () => send(gw.url, '/readyz'),
    (r) => r.status === 200,
    5000,
  )
}

/** Asserts each token works on `on` before, ends it with `end`, then times until `on` refuses it. */
async function propagates(t: Test, name: string, victims: Tokens[], end: () => Promise<number>, on: Instance = b) {
  for (const v of victims) t.equal((await api(on.url, v.accessToken)).status, 200, 'the token works before')
  t.equal(await end(), 204, 'the ending call succeeds')
  for (const v of victims) {
    const ms = await until(
      () => api(on.url, v.accessToken),
      (r) => r.status === 401,
      BOUND_MS,
    )
    t.ok(ms !== null && ms < BOUND_MS, `${name}: refused on ${on.name} after ${ms?.toFixed(1)} ms`)
    t.equal(codeOf(await api(on.url, v.accessToken)), 'token_revoked')
    measured[name] = Math.max(measured[name] ?? 0, ms ?? Infinity)
  }
}

t.test('logout on A refuses the token on B', async (t) => {
  const s = await login(a.url)
  await propagates(t, 'logout', [s], async () => (await logout(a.url, s.accessToken)).status)
})

t.test('logout with only the refresh token on A refuses the access token on B', async (t) => {
  const s = await login(a.url)
  await propagates(
    t,
    'logout by refresh token',
    [s],
    async () =>
      (
        await send(a.url, '/auth/logout', {
          method: 'POST',
          headers: { 'x-auth-transport': 'token', 'content-type': 'application/json' },
          body: JSON.stringify({ refreshToken: s.refreshToken }),
        })
      ).status,
  )
})

t.test('logout-all on A refuses every session of the user on B, and only theirs', async (t) => {
  const [s1, s2, other] = [await login(a.url), await login(b.url), await login(a.url, 'bob')]
  await propagates(
    t,
    'logout-all',
    [s1, s2],
    async () => (await send(a.url, '/auth/logout-all', { method: 'POST', headers: bearer(s1.accessToken) })).status,
  )
  t.equal((await api(b.url, other.accessToken)).status, 200, "bob's session lives on")
  const fresh = await login(a.url)
  t.equal((await api(b.url, fresh.accessToken)).status, 200, 'a new sign-in right after works on B')
})

t.test('deleting one of my sessions on A refuses it on B', async (t) => {
  const [phone, laptop] = [await login(a.url), await login(a.url)]
  await propagates(
    t,
    'session delete',
    [phone],
    async () => (await send(a.url, `/auth/sessions/${phone.sessionId}`, { method: 'DELETE', headers: bearer(laptop.accessToken) })).status,
  )
  t.equal((await api(b.url, laptop.accessToken)).status, 200)
})

t.test('an admin ending a session, then all of a user’s sessions, on A refuses them on B', async (t) => {
  const root = await login(a.url, 'root')
  const [s1, s2] = [await login(b.url, 'bob'), await login(b.url, 'bob')]
  await propagates(
    t,
    'admin session delete',
    [s1],
    async () => (await send(a.url, `/auth/admin/sessions/${s1.sessionId}`, { method: 'DELETE', headers: bearer(root.accessToken) })).status,
  )
  await propagates(
    t,
    'admin user delete',
    [s2],
    async () => (await send(a.url, '/auth/admin/users/u-bob/sessions', { method: 'DELETE', headers: bearer(root.accessToken) })).status,
  )
})

t.test('refresh-token reuse detected on A refuses the session on B', async (t) => {
  const first = await login(a.url)
  const second = (await refresh(a.url, first.refreshToken)).json<Tokens>()
  const third = (await refresh(a.url, second.refreshToken)).json<Tokens>()
  // The grand-parent token is theft even inside the grace window (SPEC "Refresh").
  await propagates(t, 'reuse detection', [third], async () => {
    const res = await refresh(a.url, first.refreshToken)
    t.equal(codeOf(res), 'refresh_token_reused')
    return res.status === 401 ? 204 : res.status
  })
})

t.test('it works the other way round too: logout on B refuses the token on A', async (t) => {
  const s = await login(b.url)
  await propagates(t, 'logout (B to A)', [s], async () => (await logout(b.url, s.accessToken)).status, a)
})

t.test('each instance measures how long revocations took to reach it (portcullis_revocation_propagation_seconds)', async (t) => {
  const histogram = async (on: Instance) => {
    const text = (await send(on.url, '/metrics')).body
    const count = Number(/^portcullis_revocation_propagation_seconds_count (\d+)$/m.exec(text)?.[1] ?? Number.NaN)
    const sum = Number(/^portcullis_revocation_propagation_seconds_sum (\S+)$/m.exec(text)?.[1] ?? Number.NaN)
    const under = Number(/^portcullis_revocation_propagation_seconds_bucket\{le="1"\} (\d+)$/m.exec(text)?.[1] ?? Number.NaN)
    return { count, sum, under }
  }
  const before = await histogram(b)
  const s = await login(a.url)
  await propagates(t, 'logout (measured)', [s], async () => (await logout(a.url, s.accessToken)).status)
  const after = await histogram(b)
  t.ok(after.count > before.count, `B counted the message (${before.count} → ${after.count})`)
  t.ok(after.under - before.under === after.count - before.count, 'each within a second of its publish')
  t.ok(after.sum >= before.sum, 'no negative time')
})

t.teardown(() => {
  // Recorded in the test output (see docs/fleet.md for the benchmark's figures).
  console.log(
    '# propagation, worst per kind (ms):',
    JSON.stringify(Object.fromEntries(Object.entries(measured).map(([k, v]) => [k, Math.round(v * 10) / 10]))),
  )
})
