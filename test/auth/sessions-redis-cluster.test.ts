/**
 * The HTTP-level session suite (./sessions-contract.ts) against a real 3-master Redis Cluster
 * and a real Sentinel setup. Every subtest runs on both: the whole suite takes a few seconds
 * more than on one server, which is cheaper than guessing which subset would be enough.
 */
import t from 'tap'
import { startRedisCluster, startRedisSentinel } from '../helpers/redis.js'
import { redisStore, storeConfig } from '../sessions/redis-fixture.js'
import { sessionsContract } from './sessions-contract.js'

let n = 0

t.test('on a 3-master Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(t)
  const config = storeConfig({ type: 'redis-cluster', nodes: cluster.nodes })
  sessionsContract(t, async (t, opts) => (await redisStore(t, config, `c${++n}:`, { ...opts, historySize: 8 })).store)
})

t.test('behind Redis Sentinel', async (t) => {
  const sentinel = await startRedisSentinel(t)
  const config = storeConfig({ type: 'redis-sentinel', sentinels: sentinel.sentinels, name: sentinel.name })
  sessionsContract(t, async (t, opts) => (await redisStore(t, config, `s${++n}:`, { ...opts, historySize: 8 })).store)
})
