/**
 * POST /auth/refresh on a real redis-server, wired as src/main.ts wires it (sessions and
 * rate-limit counters in Redis, each on its own connection): one refresh is one round trip to
 * Redis, the per-session refresh limit included, and a refused refresh rotates nothing.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createRedisRateLimitStore } from '../../src/ops/rate-limit-redis.js'
import { createRedisClients, whenReady } from '../../src/sessions/redis-client.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'
import { identityConfig, startIdentityService, TOKEN_MODE } from '../ops/identity-service.js'
import { value } from '../ops/prometheus.js'
import { redisStore, storeConfig } from '../sessions/redis-fixture.js'

const MINUTE = 60_000
const PREFIX = 'rt:'
const redis = await startRedis(t)

async function gateway(t: Test, server: RedisServer, perSession = '{ max: 2, window: 1m }') {
  const id = await startIdentityService(t)
  const up = await startUpstream(t)
  const config = storeConfig({ url: server.url, keyPrefix: PREFIX })
  const { store } = await redisStore(t, config, PREFIX)
  const { client } = createRedisClients(config)
  await whenReady(client, 10_000)
  const rateLimitStore = createRedisRateLimitStore(client, PREFIX, true)
  t.teardown(() => rateLimitStore.close())
  return startGateway(
    t,
    `${identityConfig(id.url)}
rateLimits:
  refresh: { perSession: ${perSession} }
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`,
    { store, rateLimitStore },
  )
}

type Tokens = { refreshToken: string; accessToken: string }
const login = async (gw: TestGateway, username: string) =>
  (await send(gw.url, '/auth/login', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ username, password: 'right' }) })).json<Tokens>()
const refresh = (gw: TestGateway, refreshToken: string) =>
  send(gw.url, '/auth/refresh', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ refreshToken }) })

/**
 * The commands clients sent to Redis while `action` ran, in order (commands that scripts run
 * inside Redis are not round trips and are left out; so are the connections' liveness PINGs).
 * MONITOR reports commands in the order Redis runs them, so once a marker sent after the
 * action shows up, every command of the action has been reported.
 */
async function commandsDuring(t: Test, server: RedisServer, action: () => Promise<void>): Promise<string[]> {
  // Both connected before the action, so that their own handshakes are not counted.
  const echo = new Redis(server.url)
  const monitor = await echo.monitor()
  t.teardown(() => {
    monitor.disconnect()
    echo.disconnect()
  })
  await echo.ping()
  const marker = `end-of-action-${process.pid}`
  const seen: string[] = []
  let done: () => void
  const ended = new Promise<void>((resolve) => (done = resolve))
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = String(args[0]).toUpperCase()
    if (name === 'ECHO' && args[1] === marker) return done()
    if (source !== 'lua' && name !== 'PING') seen.push(name)
  })
  await action()
  await echo.echo(marker)
  await ended
  return seen
}

t.test('a refresh is one Redis round trip, its per-session limit included', async (t) => {
  const gw = await gateway(t, redis, '{ max: 30, window: 1m }')
  const first = await login(gw, 'alice')
  // The first call of a script on a connection sends its source (EVAL); later ones its SHA.
  const warm = (await refresh(gw, first.refreshToken)).json<Tokens>()
  let answer = 0
  const commands = await commandsDuring(t, redis, async () => {
    answer = (await refresh(gw, warm.refreshToken)).status
  })
  t.equal(answer, 200)
  t.same(commands, ['EVALSHA'], 'the rotation script, which also counted the refresh')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  t.same(await raw.keys(`${PREFIX}rl:refresh*`), [], 'no counter key of its own: the count lives in the session')
})

t.test('past the per-session limit a refresh answers 429 with Retry-After and rotates nothing', async (t) => {
  const gw = await gateway(t, redis)
  const mine = await login(gw, 'bob')
  const other = await login(gw, 'carol')
  const r1 = (await refresh(gw, mine.refreshToken)).json<Tokens>()
  const r2 = (await refresh(gw, r1.refreshToken)).json<Tokens>()
  const refused = await refresh(gw, r2.refreshToken)
  t.equal(refused.status, 429)
  t.equal(refused.json()['code'], 'rate_limited')
  t.equal(refused.headers['retry-after'], '60')
  t.equal((await refresh(gw, mine.refreshToken)).status, 429, 'a rotated-away token is refused before it could end the session')
  t.equal((await refresh(gw, other.refreshToken)).status, 200, 'another session is not affected')
  t.equal((await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${r2.accessToken}` } })).status, 200, 'the session lives on')
  const metrics = await (await gw.fetch('/metrics')).text()
  t.equal(value(metrics, 'portcullis_rate_limited_total', { limiter: 'refresh_session', route: 'auth' }), 2)
  t.equal(value(metrics, 'portcullis_refreshes_total', { result: 'rate_limited' }), 2)
  gw.clock.now += MINUTE
  t.equal((await refresh(gw, r2.refreshToken)).status, 200, 'in the next window the refused token is still the current one')
})
