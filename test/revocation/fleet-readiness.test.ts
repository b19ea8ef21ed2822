/**
 * /readyz means every connection an instance serves with is back, not only the first: after a
 * Redis outage each connection (commands, the revocation feed, rate limits) reconnects on its
 * own backoff, up to 2 s apart. An instance whose feed is still down would miss revocations
 * made elsewhere; one whose rate-limit connection is down would refuse sign-ins. Here the feed
 * alone is kept down (an ACL refusing SUBSCRIBE) while commands work.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startFleet, type Instance } from '../helpers/fleet.js'
import { api, codeOf, login, logout, until } from '../helpers/fleet-client.js'

const readyz = (gw: Instance) => send(gw.url, '/readyz')

t.test('an instance whose revocation feed is down is not ready, and is current once ready again', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b])
    t.ok(
      (await until(
        () => readyz(gw),
        (r) => r.status === 200,
        10_000,
      )) !== null,
      `${gw.name} ready`,
    )
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())

  await admin.call('ACL', 'SETUSER', 'default', '-subscribe')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  t.ok(
    (await until(
      () => readyz(b),
      (r) => r.status === 503,
      3000,
    )) !== null,
    'b stops being ready',
  )
  t.equal((await readyz(b)).json()['reason'], 'revocation feed not subscribed', 'and says why')
  t.equal((await send(b.url, '/healthz')).status, 200, 'while it stays alive')

  // Revoked on a while b hears nothing.
  const session = await login(a.url)
  t.equal((await api(b.url, session.accessToken)).status, 200)
  t.equal((await logout(a.url, session.accessToken)).status, 204)

  await admin.call('ACL', 'SETUSER', 'default', '+subscribe')
  t.ok(
    (await until(
      () => readyz(b),
      (r) => r.status === 200,
      5000,
    )) !== null,
    'b ready again by itself once SUBSCRIBE is allowed',
  )
  t.equal(
    codeOf(await api(b.url, session.accessToken)),
    'token_revoked',
    'and refuses, from its first ready answer, what was revoked while it was deaf',
  )
  const later = await login(b.url)
  t.equal((await logout(b.url, later.accessToken)).status, 204)
  t.ok(
    (await until(
      () => api(a.url, later.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
    'and its feed carries revocations again',
  )
})
