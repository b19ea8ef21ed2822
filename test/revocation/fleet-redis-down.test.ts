/**
 * Issue 4, "Redis down": with Redis killed and restarted under traffic, proxied requests with
 * valid tokens keep flowing (cached mode), the session endpoints answer 503 store_unavailable
 * quickly, readiness follows the store, and everything recovers by itself when Redis returns.
 */
import t, { type Test } from 'tap'
import { send, type Answer } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startFleet, type Instance } from '../helpers/fleet.js'
import { api, bearer, codeOf, login, loginAnswer, logout, refresh, timed, until } from '../helpers/fleet-client.js'

/** commandTimeout is 500 ms; twice that and a margin for a loaded machine. */
const FAST_MS = 1500

/** Proxied calls with a valid token, one after the other on each instance, until stopped. */
function traffic(instances: Instance[], token: string) {
  const statuses = new Map<number, number>()
  let slowest = 0
  let running = true
  const loops = instances.map(async (gw) => {
    for (let i = 0; running && i < 20_000; i++) {
      const { value, ms } = await timed(() => api(gw.url, token))
      statuses.set(value.status, (statuses.get(value.status) ?? 0) + 1)
      slowest = Math.max(slowest, ms)
      await new Promise((r) => setTimeout(r, 10))
    }
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return { statuses: Object.fromEntries(statuses), slowest }
    },
  }
}

/** Each session endpoint, timed: it must answer 503 store_unavailable, fast, and issue nothing. */
async function refusedQuickly(t: Test, what: string, call: () => Promise<Answer>) {
  const { value, ms } = await timed(call)
  t.equal(value.status, 503, `${what}: 503`)
  t.equal(codeOf(value), 'store_unavailable', `${what}: store_unavailable`)
  t.ok(ms < FAST_MS, `${what}: answered in ${ms.toFixed(0)} ms`)
  t.notMatch(value.body, /refreshToken|accessToken/, `${what}: no token issued`)
}

const ready = (gw: Instance, status: number, bound = 10_000) =>
  until(
    () => send(gw.url, '/readyz'),
    (r) => r.status === status,
    bound,
  )

t.test('Redis killed and restarted empty under traffic', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b]) t.ok((await ready(gw, 200)) !== null, `${gw.name} ready`)
  const good = await login(a.url)
  const revoked = await login(a.url, 'bob')
  const [leaving, admin] = [await login(b.url), await login(b.url, 'root')]
  t.equal((await logout(a.url, revoked.accessToken)).status, 204)
  t.ok(
    (await until(
      () => api(b.url, revoked.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
  )

  const load = traffic([a, b], good.accessToken)
  await redis.stop()
  for (const gw of [a, b]) {
    t.ok((await ready(gw, 503, 2000)) !== null, `${gw.name}: /readyz 503 while Redis is down`)
    t.equal((await send(gw.url, '/healthz')).status, 200, `${gw.name}: /healthz 200`)
  }
  await refusedQuickly(t, 'login', () => loginAnswer(a.url))
  await refusedQuickly(t, 'refresh', () => refresh(b.url, good.refreshToken))
  await refusedQuickly(t, 'logout', () => logout(a.url, leaving.accessToken))
  await refusedQuickly(t, 'logout-all', () => send(b.url, '/auth/logout-all', { method: 'POST', headers: bearer(admin.accessToken) }))
  // Their outcome is unknown to the gateway, so it revoked those tokens anyway (fail-safe).
  t.equal(codeOf(await api(a.url, leaving.accessToken)), 'token_revoked', 'the token of the failed logout is refused')
  t.equal(codeOf(await api(b.url, admin.accessToken)), 'token_revoked', 'so are those of the failed logout-all')
  for (const gw of [a, b]) t.equal(codeOf(await api(gw.url, revoked.accessToken)), 'token_revoked', `${gw.name} still refuses the revoked token`)
  const c = await fleet.start('c', redis.url)
  t.equal((await send(c.url, '/readyz')).status, 503, 'an instance started meanwhile is not ready')

  await redis.start()
  for (const gw of [a, b, c]) t.ok((await ready(gw, 200)) !== null, `${gw.name} ready again by itself`)
  const { statuses, slowest } = await load.stop()
  t.same(statuses, { 200: statuses[200] }, `every proxied call succeeded (${statuses[200]} calls, slowest ${slowest.toFixed(0)} ms)`)
  t.ok(statuses[200]! > 10, 'and traffic did flow')

  // The restart lost every key: the revocations are gone from Redis, not from the instances.
  for (const gw of [a, b])
    t.equal(codeOf(await api(gw.url, revoked.accessToken)), 'token_revoked', `${gw.name} still refuses the revoked token after the resync`)
  t.equal(codeOf(await refresh(a.url, good.refreshToken)), 'invalid_refresh_token', 'the lost session cannot be refreshed')
  t.equal((await api(b.url, good.accessToken)).status, 200, 'its access token lives on until it expires (cached mode)')
  t.equal((await logout(a.url, good.accessToken)).status, 204, 'logging out of a session the restart lost')
  t.ok(
    (await until(
      () => api(b.url, good.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
    'still makes its token fail everywhere',
  )
  const fresh = await login(b.url)
  t.equal((await logout(b.url, fresh.accessToken)).status, 204)
  t.ok(
    (await until(
      () => api(a.url, fresh.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
    'revocations propagate again',
  )
  t.ok(
    (await until(
      () => api(c.url, fresh.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
    'to the late instance too',
  )
})

t.test('a hanging Redis (SIGSTOP) makes the session endpoints fail fast, and a lost answer loses no revocation', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b]) t.ok((await ready(gw, 200)) !== null, `${gw.name} ready`)
  const refreshed = await login(a.url)
  const loggedOut = await login(a.url)
  redis.pause()
  await refusedQuickly(t, 'login', () => loginAnswer(a.url))
  await refusedQuickly(t, 'refresh', () => refresh(a.url, refreshed.refreshToken))
  await refusedQuickly(t, 'logout', () => logout(a.url, loggedOut.accessToken))
  const probe = await timed(() => send(a.url, '/readyz'))
  t.equal(probe.value.status, 503)
  t.ok(probe.ms < FAST_MS, `/readyz answered in ${probe.ms.toFixed(0)} ms`)
  t.equal((await api(b.url, refreshed.accessToken)).status, 200, 'proxied traffic flows')
  t.equal(codeOf(await api(a.url, loggedOut.accessToken)), 'token_revoked', 'the failed logout revoked its token on A at once, fail-safe')
  redis.resume()
  for (const gw of [a, b]) t.ok((await ready(gw, 200)) !== null, `${gw.name} ready again`)

  // The stalled calls were still queued on the connection: Redis ran them when it resumed.
  const ms = await until(
    () => api(b.url, loggedOut.accessToken),
    (r) => r.status === 401,
    3000,
  )
  t.ok(ms !== null, `the logout that answered 503 is enforced on B too (${ms?.toFixed(0)} ms after resume)`)
  t.equal((await logout(a.url, loggedOut.accessToken)).status, 204, 'a retried logout succeeds')
  // A connection that stayed silent past the watchdog's deadline is being reopened: a client
  // retries a 503, within a bound.
  let retried = await refresh(a.url, refreshed.refreshToken)
  await until(
    async () => (retried = await refresh(a.url, refreshed.refreshToken)),
    (r) => r.status !== 503,
    3000,
  )
  t.equal(retried.status, 200, 'a retried refresh gets the successor the stalled one stored (grace window)')
  const next = await refresh(a.url, retried.json<{ refreshToken: string }>().refreshToken)
  t.equal(next.status, 200, 'and that successor is the stored current token')
})
