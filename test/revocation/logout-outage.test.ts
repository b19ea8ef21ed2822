/**
 * Issue 14, item 1: a logout is never lost. Session-ending requests made while Redis is down
 * (SIGKILL; it comes back with its data, as a Redis with an append-only file does) answer 503,
 * and yet, once Redis is back, the sessions they named never mint a token again, on any
 * instance, even after every access token (and so every revocation entry) has expired; and the
 * same caller can retry.
 */
import t from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startFleet, type Instance } from '../helpers/fleet.js'
import { api, bearer, codeOf, login, logout, refresh, until, type Tokens } from '../helpers/fleet-client.js'

const ready = (gw: Instance) =>
  until(
    () => send(gw.url, '/readyz'),
    (r) => r.status === 200,
    10_000,
  )
const post = (gw: Instance, path: string, headers: Record<string, string>, body?: string) =>
  send(gw.url, path, { method: 'POST', headers, ...(body === undefined ? {} : { body }) })

t.test('session endings asked for while Redis is down are carried out when it returns, and can be retried', async (t) => {
  // appendfsync always: what was written before the SIGKILL survives it.
  const redis = await startRedis(t, ['--appendonly', 'yes', '--appendfsync', 'always'])
  const clock = { now: Date.now() }
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}', accessTokenTtl: '15s', now: () => clock.now })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b]) t.ok((await ready(gw)) !== null, `${gw.name} ready`)

  const alice = [await login(a.url), await login(b.url)]
  const [bobByAccess, bobByRefresh, bobByAdmin] = [await login(a.url, 'bob'), await login(b.url, 'bob'), await login(a.url, 'bob')]
  const root = await login(b.url, 'root')

  await redis.stop()
  const allOut = await post(a, '/auth/logout-all', bearer(alice[0]!.accessToken))
  t.equal(allOut.status, 503, 'logout-all answers 503 while Redis is down')
  t.equal((await logout(b.url, bobByAccess.accessToken)).status, 503, 'so does a logout by access token')
  const byRefresh = await post(a, '/auth/logout', { 'content-type': 'application/json' }, JSON.stringify({ refreshToken: bobByRefresh.refreshToken }))
  t.equal(byRefresh.status, 503, 'and one by refresh token alone')
  const adminDelete = await send(b.url, `/auth/admin/sessions/${bobByAdmin.sessionId}`, { method: 'DELETE', headers: bearer(root.accessToken) })
  t.equal(adminDelete.status, 503, 'and an admin delete')

  clock.now += 1000
  await redis.start()
  for (const gw of [a, b]) t.ok((await ready(gw)) !== null, `${gw.name} ready again`)
  // Signed in after the logout-all: a retry of it must not end this one.
  const aliceLater = await login(b.url)

  const retried = await post(a, '/auth/logout-all', bearer(alice[0]!.accessToken))
  t.equal(retried.status, 204, 'the same caller retries its logout-all and it succeeds')
  t.equal((await post(b, '/auth/logout-all', bearer(alice[0]!.accessToken))).status, 204, 'on another instance too')
  t.equal((await logout(a.url, bobByAccess.accessToken)).status, 204, 'a retried logout succeeds')

  // Past every access token's lifetime (15 s + 30 s tolerance): the revoked set has forgotten
  // these sessions, so only their ending in the store keeps them from minting tokens.
  clock.now += 50_000
  const ended: Array<[string, Tokens]> = [
    ['the logout-all caller', alice[0]!],
    ["the logout-all caller's other device", alice[1]!],
    ['the logout by access token', bobByAccess],
    ['the logout by refresh token', bobByRefresh],
    ['the admin delete', bobByAdmin],
  ]
  for (const [what, tokens] of ended) {
    for (const gw of [a, b]) {
      const answer = await refresh(gw.url, tokens.refreshToken)
      t.equal(answer.status, 401, `${what}: its refresh token mints nothing on ${gw.name}`)
      t.equal(codeOf(answer), 'invalid_refresh_token')
    }
  }
  const later = await refresh(a.url, aliceLater.refreshToken)
  t.equal(later.status, 200, 'the session signed in after the logout-all lives on')
  t.equal((await api(b.url, later.json<Tokens>().accessToken)).status, 200, 'and its new token works')
  t.equal((await refresh(b.url, root.refreshToken)).status, 200, 'an unrelated session is untouched')
})

t.test('a revoked token is accepted by logout-all only as the retry of a logout-all made after it was issued', async (t) => {
  const redis = await startRedis(t)
  const clock = { now: Date.now() }
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}', now: () => clock.now })
  const a = await fleet.start('a', redis.url)
  t.ok((await ready(a)) !== null)
  const first = await login(a.url)
  t.equal((await logout(a.url, first.accessToken)).status, 204)
  const other = await login(a.url)
  const refused = await post(a, '/auth/logout-all', bearer(first.accessToken))
  t.equal(refused.status, 401, 'the token of a session ended by a plain logout cannot log out everywhere')
  t.equal(codeOf(refused), 'token_revoked')
  t.equal((await refresh(a.url, other.refreshToken)).status, 200, 'and the other session lives on')
})
