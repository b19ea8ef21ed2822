/**
 * login.rate_limited: the sign-in limiters (password login and the oidc endpoints, which count
 * per client) announce a limit once per key and window, however many refusals follow.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { configFrom } from '../helpers/gateway.js'
import { SecurityEvents } from '../../src/ops/events.js'
import { createLogger } from '../../src/ops/logger.js'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { createLimiters } from '../../src/ops/rate-limit.js'
import { createMemoryRateLimitStore } from '../../src/ops/rate-limit-memory.js'

function setUp() {
  const clock = { now: 1_700_000_000_000 }
  const now = () => clock.now
  const events: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) events.push((JSON.parse(l) as { event: Record<string, unknown> }).event)
      cb()
    },
  })
  const logger = createLogger('info', sink)
  const emitter = new SecurityEvents({ logger, now })
  const config = configFrom('rateLimits: { login: { perUser: { max: 2, window: 1m }, perClient: { max: 3, window: 1m } } }\n')
  const limiters = createLimiters(config, createMemoryRateLimitStore(now), { metrics: new GatewayMetrics(), log: logger, now, events: emitter })
  return { clock, events, emitter, limiters }
}

const refusedCount = async (tries: Array<() => Promise<unknown>>) => {
  let refused = 0
  for (const attempt of tries) await attempt().catch(() => refused++)
  return refused
}

t.test('a client over its sign-in limit is announced once per window, with its address', async (t) => {
  const { clock, events, limiters } = setUp()
  const tries = Array.from({ length: 6 }, () => () => limiters.loginClient.consume('192.0.2.7'))
  t.equal(await refusedCount(tries), 3)
  t.same(
    events.map((e) => e['data']),
    [{ limiter: 'login_client', ip: '192.0.2.7', retryAfter: 60 }],
    'three refusals, one event',
  )
  clock.now += 60_000
  t.equal(await refusedCount(tries), 3)
  t.equal(events.length, 2, 'the next window announces again')
})

t.test('a username over its limit is announced with the client address and a keyed hash of the name', async (t) => {
  const { events, emitter, limiters } = setUp()
  const tries = Array.from({ length: 4 }, () => () => limiters.loginUser.consume('alice', { client: '198.51.100.9' }))
  t.equal(await refusedCount(tries), 2)
  t.same(
    events.map((e) => e['data']),
    [{ limiter: 'login_user', ip: '198.51.100.9', usernameHash: emitter.hashUsername('alice'), retryAfter: 60 }],
  )
  t.notOk(JSON.stringify(events).includes('alice'), 'the name itself is in no event')
})

t.test('a route limiter is not a sign-in limit: it announces nothing', async (t) => {
  const { events, limiters } = setUp()
  const route = limiters.route({
    ...configFrom('routes: [{ name: r, prefix: /r, upstream: "http://127.0.0.1:1" }]').routes[0]!,
    rateLimit: { max: 1, window: 1000 },
  })
  t.equal(await refusedCount([() => route!.consume('a'), () => route!.consume('a')]), 1)
  t.equal(events.length, 0)
})
