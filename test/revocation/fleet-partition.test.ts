/**
 * Issue 4, "No lost revocations": pub/sub is at-most-once, so an instance cut off from Redis
 * while a session ends elsewhere must learn of it soon after the link returns; and a new
 * instance is not ready until it has loaded the revoked set once.
 * Instance B reaches Redis through a TCP proxy that the tests cut and heal.
 */
import t from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { startFleet } from '../helpers/fleet.js'
import { api, codeOf, loginAnswer, login, logout, timed, until } from '../helpers/fleet-client.js'

/** After heal: a reconnect (backoff capped at 2 s) and one resync. */
const HEAL_BOUND_MS = 5000

const redis = await startRedis(t)
const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
const a = await fleet.start('a', redis.url)
const ready = (url: string) =>
  until(
    () => send(url, '/readyz'),
    (r) => r.status === 200,
    10_000,
  )

t.test('tokens revoked while B was cut off (connections reset) fail on B soon after the link heals', async (t) => {
  const proxy = await startTcpProxy(t, redis.port)
  const b = await fleet.start('b', proxy.url)
  t.ok((await ready(b.url)) !== null, 'B is ready')
  const s = await login(a.url)
  t.equal((await api(b.url, s.accessToken)).status, 200)

  proxy.cut()
  t.equal((await logout(a.url, s.accessToken)).status, 204, 'A ends the session while B cannot hear it')
  t.ok(
    (await until(
      () => send(b.url, '/readyz'),
      (r) => r.status === 503,
      2000,
    )) !== null,
    'B reports itself not ready',
  )
  t.equal((await send(b.url, '/healthz')).status, 200, 'but alive')
  t.equal((await api(b.url, s.accessToken)).status, 200, 'B cannot know yet (the documented window)')

  proxy.heal()
  const ms = await until(
    () => api(b.url, s.accessToken),
    (r) => r.status === 401,
    HEAL_BOUND_MS,
  )
  t.ok(ms !== null, `B refuses the token ${ms?.toFixed(0)} ms after the heal`)
  t.equal(codeOf(await api(b.url, s.accessToken)), 'token_revoked')
  t.ok((await ready(b.url)) !== null, 'and is ready again')
})

t.test('tokens revoked during a silent partition fail on B once it heals; B answers 503 quickly meanwhile', async (t) => {
  const proxy = await startTcpProxy(t, redis.port)
  const b = await fleet.start('b', proxy.url)
  t.ok((await ready(b.url)) !== null, 'B is ready')
  const s = await login(a.url)
  const other = await login(a.url, 'bob')

  proxy.cut({ silent: true })
  t.equal((await logout(a.url, s.accessToken)).status, 204)
  const signIn = await timed(() => loginAnswer(b.url))
  t.equal(signIn.value.status, 503, 'a sign-in on B cannot be stored')
  t.equal(codeOf(signIn.value), 'store_unavailable')
  t.ok(signIn.ms < 1500, `and says so in ${signIn.ms.toFixed(0)} ms, without hanging`)
  const probe = await timed(() => send(b.url, '/readyz'))
  t.equal(probe.value.status, 503, 'B is not ready')
  t.ok(probe.ms < 1500, `readiness answers in ${probe.ms.toFixed(0)} ms`)
  t.equal((await api(b.url, other.accessToken)).status, 200, 'valid tokens keep working on B')

  proxy.heal()
  const ms = await until(
    () => api(b.url, s.accessToken),
    (r) => r.status === 401,
    HEAL_BOUND_MS,
  )
  t.ok(ms !== null, `B refuses the token ${ms?.toFixed(0)} ms after the heal`)
  t.ok((await ready(b.url)) !== null, 'B is ready again')
  // Readiness pings the session store; the rate-limit store has a connection of its own,
  // which recovers on its own clock: a sign-in may need a moment more.
  t.ok(
    (await until(
      () => loginAnswer(b.url),
      (r) => r.status === 200,
      3000,
    )) !== null,
    'and signs users in again',
  )
})

t.test('a new instance is not ready until its first sync, then enforces older revocations', async (t) => {
  const s = await login(a.url)
  t.equal((await logout(a.url, s.accessToken)).status, 204, 'revoked before C exists: no message will tell C')
  const proxy = await startTcpProxy(t, redis.port)
  proxy.cut({ silent: true })
  const c = await fleet.start('c', proxy.url)
  const early = await send(c.url, '/readyz')
  t.equal(early.status, 503)
  t.match(early.json(), { status: 'not_ready', reason: 'revocation set not yet synchronised' })
  t.equal((await send(c.url, '/healthz')).status, 200)
  t.match(c.logText(), 'redis not reachable at startup', 'it waited for Redis (bounded), then started and said why it is not ready')

  proxy.heal()
  const ms = await ready(c.url)
  t.ok(ms !== null, `C becomes ready ${ms?.toFixed(0)} ms after the heal`)
  t.equal(codeOf(await api(c.url, s.accessToken)), 'token_revoked', 'and refuses a token revoked before it started')
})

t.test('connections that went mute for good are noticed: B reconnects, resyncs and serves again', async (t) => {
  const proxy = await startTcpProxy(t, redis.port)
  const b = await fleet.start('b', proxy.url)
  t.ok((await ready(b.url)) !== null, 'B is ready')
  const s = await login(a.url)
  proxy.cut({ silent: true })
  t.equal((await logout(a.url, s.accessToken)).status, 204)
  // The link is back, but B's open connections lead nowhere and nothing tells B so.
  proxy.heal({ zombies: true })
  const ms = await until(
    () => api(b.url, s.accessToken),
    (r) => r.status === 401,
    10_000,
  )
  t.ok(ms !== null, `B refuses the token ${ms?.toFixed(0)} ms after the heal`)
  t.ok((await ready(b.url)) !== null, 'B is ready again')
  // Readiness pings the session store; the rate-limit store has a connection of its own,
  // which recovers on its own clock: a sign-in may need a moment more.
  t.ok(
    (await until(
      () => loginAnswer(b.url),
      (r) => r.status === 200,
      3000,
    )) !== null,
    'and signs users in again',
  )
})
