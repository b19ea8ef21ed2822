/**
 * `revocation.mode` as documented (SPEC "Revocation", docs/fleet.md): `strict` asks the store
 * on every request that the session still exists (and fails closed without it); `off` checks
 * signature and claims only. Two real instances on one real Redis for each mode.
 */
import t from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { resp } from '../helpers/redis-process.js'
import { startFleet } from '../helpers/fleet.js'
import { api, codeOf, login, logout, refresh, timed, until } from '../helpers/fleet-client.js'

/** The Redis key of a session (src/sessions/redis-layout.ts), to remove one behind the gateway's back. */
const sessionKey = (sid: string) => `portcullis:s:{${sid.slice(0, 6)}}${sid.slice(6)}`

t.test('strict: a session must exist in the store on every request', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}', mode: 'strict' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b])
    await until(
      () => send(gw.url, '/readyz'),
      (r) => r.status === 200,
      10_000,
    )

  const s = await login(a.url)
  t.equal((await api(b.url, s.accessToken)).status, 200)
  t.equal((await logout(a.url, s.accessToken)).status, 204)
  t.equal(codeOf(await api(b.url, s.accessToken)), 'token_revoked', 'the very next request on B is refused, with no wait')

  const gone = await login(a.url)
  t.equal((await api(b.url, gone.accessToken)).status, 200)
  t.equal(await resp(redis.port, ['DEL', sessionKey(gone.sessionId)]), ':1\r\n', 'the session vanishes from Redis, no revocation sent')
  t.equal(codeOf(await api(b.url, gone.accessToken)), 'token_revoked', 'strict notices: no session, no access')

  const kept = await login(a.url)
  await redis.stop()
  const down = await timed(() => api(b.url, kept.accessToken))
  t.equal(down.value.status, 503, 'without the store strict mode fails closed')
  t.equal(codeOf(down.value), 'store_unavailable')
  t.ok(down.ms < 1500, `and says so in ${down.ms.toFixed(0)} ms`)
  await redis.start()
  // The restart lost the session (no persistence in tests): strict refuses it, as it should.
  const back = await until(
    () => api(b.url, kept.accessToken),
    (r) => r.status !== 503,
    10_000,
  )
  t.ok(back !== null, 'the store answers again')
  t.equal(codeOf(await api(b.url, kept.accessToken)), 'token_revoked', 'a session lost with the data is refused')
  // A reconnects on its own schedule: the check above only waited for B.
  await until(
    () => send(a.url, '/readyz'),
    (r) => r.status === 200,
    10_000,
  )
  const fresh = await login(b.url)
  t.equal((await api(a.url, fresh.accessToken)).status, 200, 'new sessions work')
})

t.test('off: signature and claims only; an ended session keeps its access tokens until they expire', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}', mode: 'off' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b])
    await until(
      () => send(gw.url, '/readyz'),
      (r) => r.status === 200,
      10_000,
    )

  const s = await login(a.url)
  t.equal((await logout(a.url, s.accessToken)).status, 204)
  t.equal((await api(a.url, s.accessToken)).status, 200, 'still accepted on A')
  t.equal((await api(b.url, s.accessToken)).status, 200, 'and on B')
  t.equal(codeOf(await refresh(b.url, s.refreshToken)), 'invalid_refresh_token', 'but the session is over: no new tokens')

  const other = await login(b.url)
  await redis.stop()
  t.equal((await api(a.url, other.accessToken)).status, 200, 'no store needed per request')
})
