/**
 * The HTTP-level session suite (./sessions-contract.ts) against a real redis-server: the same
 * answers as with the memory store, every key on one real server.
 */
import t from 'tap'
import { startRedis } from '../helpers/redis.js'
import { redisStore, storeConfig } from '../sessions/redis-fixture.js'
import { sessionsContract } from './sessions-contract.js'

const redis = await startRedis(t)
let n = 0

sessionsContract(t, async (t, opts) => {
  // A key prefix per subtest: each starts from an empty store.
  const { store } = await redisStore(t, storeConfig({ url: redis.url }), `http${++n}:`, { ...opts, historySize: 8 })
  return store
})
