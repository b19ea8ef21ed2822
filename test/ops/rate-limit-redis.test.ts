/**
 * Rate limits counted in a real redis-server (and a real Redis Cluster): shared between
 * gateway instances (the real process wiring, src/main.ts), atomic, expiring, and while
 * Redis is away counted in the instance for proxied routes but refused for sign-in.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createRedisRateLimitStore } from '../../src/ops/rate-limit-redis.js'
import { createRedisClients, whenReady } from '../../src/sessions/redis-client.js'
import { subjectTag } from '../../src/sessions/tokens.js'
import { send } from '../helpers/http.js'
import { startRedis, startRedisCluster, type RedisServer } from '../helpers/redis.js'
import { LISTEN, type Running, startRunning } from '../helpers/running.js'
import { startUpstream } from '../helpers/upstream.js'
import { storeConfig } from '../sessions/redis-fixture.js'
import { identityConfig, startIdentityService, TOKEN_MODE } from './identity-service.js'
import { value } from './prometheus.js'

async function fleet(t: Test, redis: RedisServer, instances: number) {
  const id = await startIdentityService(t)
  const up = await startUpstream(t)
  const yaml = `${LISTEN}store: { type: redis, url: "${redis.url}", keyPrefix: "rl-test:" }
${identityConfig(id.url)}
rateLimits:
  login: { perClient: { max: 3, window: 1m }, perUser: { max: 10, window: 15m } }
routes:
  - { name: search, prefix: /search, upstream: "${up.url}", auth: none, rateLimit: { max: 100, window: 1m } }
`
  const gateways: Running['gw'][] = []
  for (let i = 0; i < instances; i++) gateways.push((await startRunning(t, yaml)).gw)
  return { gateways, id, up }
}

const login = (base: string, username: string, password = 'right') =>
  send(base, '/auth/login', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ username, password }) })

function client(t: Test, redis: RedisServer): Redis {
  const c = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  t.teardown(() => c.quit().catch(() => c.disconnect()))
  return c
}

t.test('gateway instances sharing a Redis store share one count', async (t) => {
  const redis = await startRedis(t)
  const {
    gateways: [a, b],
    id,
  } = await fleet(t, redis, 2)
  t.equal((await login(a!.url, 'alice')).status, 200)
  t.equal((await login(b!.url, 'bob', 'wrong')).status, 401)
  t.equal((await login(a!.url, 'carol')).status, 200)
  const refused = await login(b!.url, 'dave')
  t.equal(refused.status, 429, 'the fourth attempt from this address, counted across both instances')
  t.equal(refused.json()['code'], 'rate_limited')
  t.ok(Number(refused.headers['retry-after']) >= 59 && Number(refused.headers['retry-after']) <= 60, `Retry-After ${refused.headers['retry-after']}`)
  t.equal(id.asked, 3)
})

t.test('keys carry the keyPrefix and the hashed id, its first 6 characters as their hash tag, and expire with their window', async (t) => {
  const redis = await startRedis(t)
  const {
    gateways: [gw],
  } = await fleet(t, redis, 1)
  await login(gw!.url, 'Alice.Secret@example.com', 'wrong')
  await send(gw!.url, '/search/x')
  const keys = (await client(t, redis).keys('rl-test:rl:*')).sort()
  t.equal(keys.length, 3)
  t.match(keys, [
    /^rl-test:rl:login_client:\{[A-Za-z0-9_-]{6}\}[A-Za-z0-9_-]{16}$/,
    /^rl-test:rl:login_user:\{[A-Za-z0-9_-]{6}\}[A-Za-z0-9_-]{16}$/,
    /^rl-test:rl:route:search:\{[A-Za-z0-9_-]{6}\}[A-Za-z0-9_-]{16}$/,
  ])
  // The tag is the one the sessions of subject "alice.secret@example.com" carry: on a Cluster,
  // a user whose subject is the lower-case username has every sign-in key on one slot.
  t.match(keys, [/./, new RegExp(`:\\{${subjectTag('alice.secret@example.com')}\\}`), /./])
  t.notMatch(keys.join(' '), /alice|secret|127\.0\.0\.1/i, 'neither the username nor the address is stored')
  const c = client(t, redis)
  const user = keys.find((k) => k.includes('login_user'))!
  const ttl = await c.pttl(user)
  t.ok(ttl > 14 * 60_000 && ttl <= 15 * 60_000, `the perUser counter expires with its 15-minute window (${ttl} ms)`)
  t.equal(await c.get(user), '1')
})

t.test('while Redis is down a route limit is counted in the instance, and sign-in answers 503', async (t) => {
  const redis = await startRedis(t)
  const {
    gateways: [gw],
    up,
    id,
  } = await fleet(t, redis, 1)
  t.equal((await send(gw!.url, '/search/before')).status, 200)
  await redis.stop()
  t.equal((await send(gw!.url, '/search/during')).status, 200, 'a Redis outage is not an API outage')
  t.equal(up.seen.length, 2)
  const refused = await login(gw!.url, 'alice')
  t.equal(refused.status, 503, 'on one server the session write would fail too: refused before any password check')
  t.equal(refused.json()['code'], 'store_unavailable')
  t.equal(id.asked, 0)
  const text = (await send(gw!.url, '/metrics')).body
  t.equal(value(text, 'portcullis_rate_limit_errors_total', { limiter: 'route' }), 1)
  t.equal(value(text, 'portcullis_rate_limit_errors_total', { limiter: 'login_client' }), 1)
  let served = 1
  while (served < 200 && (await send(gw!.url, '/search/during')).status === 200) served++
  t.equal(served, 100, 'the route limit (100) still holds, counted in the instance from the start of the outage')
  t.equal(value(text, 'portcullis_store_up'), 0)
  // The client reports a failed reconnect attempt (the first comes 50 ms after the loss).
  let errors = 0
  for (let i = 0; i < 40 && errors === 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    errors = value((await send(gw!.url, '/metrics')).body, 'portcullis_store_errors_total', { source: 'connection' }) ?? 0
  }
  t.ok(errors >= 1, `connection errors are counted (${errors})`)

  await redis.start()
  const deadline = Date.now() + 10_000
  let status = (await login(gw!.url, 'alice')).status
  while (status === 503 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200))
    status = (await login(gw!.url, 'alice')).status
  }
  t.equal(status, 200, 'sign-in works again once Redis is back')
  t.equal(value((await send(gw!.url, '/metrics')).body, 'portcullis_store_up'), 1)
})

t.test('the Redis store counts atomically and starts a new window when the last one expires', async (t) => {
  const redis = await startRedis(t)
  const c = client(t, redis)
  await whenReady(c, 5000)
  const store = createRedisRateLimitStore(c, 'unit:')
  const hits = await Promise.all(Array.from({ length: 50 }, () => store.hit('s', 'id', 300)))
  t.same(
    hits.map((h) => h.count).sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i + 1),
    'no hit lost or counted twice',
  )
  t.ok(hits.every((h) => h.resetInMs > 0 && h.resetInMs <= 300))
  await new Promise((r) => setTimeout(r, 350))
  t.equal((await store.hit('s', 'id', 300)).count, 1, 'a new window')
  await store.reset('s', 'id')
  t.equal(await c.exists('unit:rl:s:{id}'), 0)
  t.throws(() => createRedisRateLimitStore(c, 'bad{prefix}:'), /must not contain/)
})

t.test('on a Redis Cluster every counter lives in the slot of its own hash tag', async (t) => {
  const cluster = await startRedisCluster(t)
  const { client: c } = createRedisClients(storeConfig({ type: 'redis-cluster', nodes: cluster.nodes }))
  t.teardown(() => c.quit().catch(() => c.disconnect()))
  await whenReady(c, 10_000)
  const store = createRedisRateLimitStore(c, 'cl:')
  const ids = Array.from({ length: 30 }, (_, i) => `id${i}`)
  t.same(
    (await Promise.all(ids.map((id) => store.hit('login_user', id, 60_000)))).map((h) => h.count),
    ids.map(() => 1),
  )
  t.same(
    (await Promise.all(ids.map((id) => store.hit('login_user', id, 60_000)))).map((h) => h.count),
    ids.map(() => 2),
  )
  const slots = new Set(await Promise.all(ids.map((id) => c.call('CLUSTER', 'KEYSLOT', `cl:rl:login_user:{${id}}`))))
  t.ok(slots.size > 20, `${slots.size} slots for 30 ids: counters spread over the cluster`)
})
