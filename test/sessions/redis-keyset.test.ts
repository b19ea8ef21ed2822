import t, { type Test } from 'tap'
import type { StoreConfig } from '../../src/config/schema.js'
import type { KeysetStore } from '../../src/sessions/keyset.js'
import { connectRedisKeyset } from '../../src/sessions/redis-keyset.js'
import { startRedis, startRedisCluster } from '../helpers/redis.js'
import { storeConfig } from './redis-fixture.js'

async function open(t: Test, config: StoreConfig): Promise<KeysetStore> {
  const store = await connectRedisKeyset(config)
  t.teardown(() => store.close())
  return store
}

/** The same contract on one server and on a Cluster: compare-and-set, and a notification per write. */
async function contract(t: Test, config: StoreConfig): Promise<void> {
  const [writer, other] = [await open(t, config), await open(t, config)]
  t.equal(await writer.read(), null, 'nothing before the first write')
  t.equal(await writer.version(), 0)

  t.equal(await writer.replace(0, 'first'), true)
  t.equal(await other.replace(0, 'late'), false, 'a writer that read version 0 loses once it is 1')
  t.same(await other.read(), { version: 1, value: 'first' })
  t.equal(await other.replace(1, 'second'), true)
  t.equal(await writer.version(), 2)

  // Ten writers at once from version 2: exactly one wins.
  const racers = await Promise.all(Array.from({ length: 10 }, () => open(t, config)))
  const won = await Promise.all(racers.map((r, i) => r.replace(2, `racer ${i}`)))
  t.equal(won.filter(Boolean).length, 1, 'one compare-and-set won')
  t.equal((await writer.read())!.value, `racer ${won.indexOf(true)}`)

  // Subscribing takes a round trip of its own: write until the watcher hears (bounded).
  let told = 0
  other.watch(() => told++)
  let version = 3
  for (; version < 40 && told === 0; version++) {
    await writer.replace(version, `v${version + 1}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(told > 0, `a watcher on another connection was told of a write (after ${version - 3})`)
  told = 0
  const start = performance.now()
  await writer.replace(version, 'last')
  while (told === 0 && performance.now() - start < 2000) await new Promise((resolve) => setImmediate(resolve))
  t.ok(told > 0, `and of the next one within ${(performance.now() - start).toFixed(1)} ms`)
}

t.test('on one Redis the keyset is replaced by compare-and-set and every write is announced', async (t) => {
  const redis = await startRedis(t)
  await contract(t, storeConfig({ url: redis.url, keyPrefix: 'ks:' }))
})

t.test('on a Redis Cluster, the same: one key, one slot, and notifications reach every subscriber', async (t) => {
  const cluster = await startRedisCluster(t)
  await contract(t, storeConfig({ type: 'redis-cluster', nodes: cluster.nodes, keyPrefix: 'ks:' }))
})

t.test('an unreachable store is an error at once that says the managed keys live there', async (t) => {
  await t.rejects(connectRedisKeyset(storeConfig({ url: 'redis://127.0.0.1:1', commandTimeout: 200 })), {
    message: 'the store is not reachable, and the managed signing keys live there',
  })
})
