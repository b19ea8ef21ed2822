import t from 'tap'
import { subjectTag } from '../../src/sessions/tokens.js'
import { startRedisCluster, startRedisSentinel } from '../helpers/redis.js'
import { waitFor } from '../helpers/redis-process.js'
import { redisContract, redisStore, storeConfig } from './redis-fixture.js'
import { storeContract } from './store-contract.js'
import { T0, login, recorder, sessionEvent } from './store-fixtures.js'

t.test('the shared store contract holds on a 3-master Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(t)
  storeContract(
    t,
    redisContract(storeConfig({ type: 'redis-cluster', nodes: cluster.nodes }), () => cluster.stop()),
  )
})

t.test('the shared store contract holds behind Redis Sentinel', async (t) => {
  const sentinel = await startRedisSentinel(t)
  const config = storeConfig({ type: 'redis-sentinel', sentinels: sentinel.sentinels, name: sentinel.name })
  storeContract(
    t,
    redisContract(config, () => sentinel.stop()),
  )
})

t.test('a revocation whose slot is down is kept, and written once its node is back', async (t) => {
  const cluster = await startRedisCluster(t)
  const { store, client } = await redisStore(t, storeConfig({ type: 'redis-cluster', nodes: cluster.nodes }), 'q:')
  const slots = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>
  const ownerOf = async (key: string) => {
    const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key))
    return slots.find(([from, to]) => slot >= from && slot <= to)![2][1]
  }
  const revPort = await ownerOf('q:{rev}:s')
  let subject = ''
  for (let i = 0; subject === ''; i++) {
    if ((await ownerOf(`{${subjectTag(`user-${i}`)}}`)) !== revPort) subject = `user-${i}`
  }
  const { id } = await login(store, subject)
  const feed = recorder(store)
  t.teardown(feed.stop)
  const revNode = cluster.servers.find((s) => s.port === revPort)!
  await revNode.stop()
  await t.rejects(store.end(id, 'logout', T0), { code: 'store_unavailable' })
  t.equal(await store.get(id, T0), null, 'the session itself has ended')
  t.ok(feed.events.some(sessionEvent(id)), 'and this instance rejects its tokens already')
  await revNode.start()
  await waitFor('the pending revocation', async () => (await store.revocations(T0)).sessions.some(([sid]) => sid === id), 20_000)
  t.pass('the revocation reached the store once the node returned')
})
