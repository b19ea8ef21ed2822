/**
 * RevocationSync against a real Redis store: what it does when a resync fails, and when gaps
 * come while a snapshot is in flight. The store is real; `flaky` only makes its snapshot call
 * fail on demand, the way a command connection that is not back yet makes it fail.
 */
import t from 'tap'
import { createLogger } from '../../src/ops/logger.js'
import { RevocationSet } from '../../src/revocation/set.js'
import { RevocationSync } from '../../src/revocation/sync.js'
import { GatewayError } from '../../src/errors.js'
import { newSessionId } from '../../src/sessions/tokens.js'
import type { SessionStore } from '../../src/sessions/types.js'
import { startRedis } from '../helpers/redis.js'
import { resp, waitFor } from '../helpers/redis-process.js'
import { redisStore, storeConfig } from '../sessions/redis-fixture.js'

const log = createLogger('silent')

/** Waits until the sync's subscription is live, so that its own first gap does not skew counts. */
const subscribed = (port: number) =>
  waitFor('the subscription', async () => /:1\r\n$/.test(await resp(port, ['PUBSUB', 'NUMSUB', 'p:revocations'])), 2000)

function flaky(store: SessionStore) {
  const state = { failures: 0, calls: 0 }
  const wrapped: SessionStore = {
    ...store,
    async revocations(now) {
      state.calls++
      if (state.failures > 0) {
        state.failures--
        throw new GatewayError('store_unavailable', 'injected')
      }
      return store.revocations(now)
    },
    async *revocationPages(now) {
      state.calls++
      if (state.failures > 0) {
        state.failures--
        throw new GatewayError('store_unavailable', 'injected')
      }
      yield* store.revocationPages!(now)
    },
  }
  return { store: wrapped, state }
}

t.test('a resync that fails after a reconnect is retried soon, not at the next interval', async (t) => {
  const redis = await startRedis(t)
  const { store } = await redisStore(t, storeConfig({ url: redis.url }), 'p:')
  const { store: wrapped, state } = flaky(store)
  const set = new RevocationSet()
  const sync = new RevocationSync(wrapped, set, { resyncInterval: 600_000, retryDelay: 50, now: Date.now, log })
  t.teardown(() => sync.stop())
  state.failures = 1
  await sync.start()
  t.notOk(sync.synced, 'the first load failed')
  await waitFor('the first sync', async () => sync.synced, 2000)
  t.pass('a retry made the first sync')
  await subscribed(redis.port)
  await sync.resync()

  // A revocation this instance never hears of: written without a message.
  const sid = newSessionId('u-x')
  await resp(redis.port, ['ZADD', 'p:{rev}:s', String(Date.now() + 60_000), sid])
  state.failures = 1
  const before = state.calls
  t.match(await resp(redis.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']), /^:[1-9]/, 'the subscription is cut')
  await waitFor('the revocation to arrive', async () => set.isRevoked(sid, 'u-x', 0), 3000)
  t.ok(state.calls >= before + 2, `the gap's resync failed and was retried (${state.calls - before} loads)`)
})

t.test('a resync asked for while one is in flight gets a load of its own, after it', async (t) => {
  const redis = await startRedis(t)
  const { store } = await redisStore(t, storeConfig({ url: redis.url }), 'p:')
  const { store: wrapped, state } = flaky(store)
  const set = new RevocationSet()
  const sync = new RevocationSync(wrapped, set, { resyncInterval: 600_000, now: Date.now, log })
  t.teardown(() => sync.stop())
  await sync.start()
  await subscribed(redis.port)
  await sync.resync()
  const before = state.calls
  const first = sync.resync()
  const second = sync.resync()
  const third = sync.resync()
  t.equal(second, third, 'calls made meanwhile share the follow-up load')
  let firstDone = false
  void first.then(() => (firstDone = true))
  await second
  t.ok(firstDone, 'which comes after the load in flight')
  t.equal(state.calls - before, 2, 'two loads, not one and not three')
})
