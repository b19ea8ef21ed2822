/**
 * Builds Redis-backed fixtures for the contract suite: two store instances on separate
 * connections (an instance and its peer) sharing one fresh key prefix per test.
 */
import { Cluster, type Redis } from 'ioredis'
import type { StoreConfig } from '../../src/config/schema.js'
import { createRedisClients, whenReady } from '../../src/sessions/redis-client.js'
import { createRedisStore } from '../../src/sessions/redis-store.js'
import type { SessionStore, StoreOptions } from '../../src/sessions/types.js'
import { OPTIONS, type ContractOptions, type StoreFixture, type TapTest } from './store-fixtures.js'

export const storeConfig = (over: Partial<StoreConfig>): StoreConfig => ({
  type: 'redis',
  url: 'redis://127.0.0.1:1',
  nodes: [],
  sentinels: [],
  name: 'mymaster',
  keyPrefix: 'portcullis:',
  commandTimeout: 500,
  ...over,
})

let counter = 0

/** One store on its own connections; closed on teardown. */
export async function redisStore(
  t: TapTest,
  config: StoreConfig,
  prefix: string,
  options: Partial<StoreOptions> = {},
): Promise<{ store: SessionStore; client: Redis | Cluster }> {
  const { client, subscriber } = createRedisClients(config)
  await whenReady(client, 10_000)
  const store = createRedisStore(client, subscriber, { ...OPTIONS, ...options, keyPrefix: prefix, ownsClient: true })
  t.teardown(() => store.close())
  return { store, client }
}

export function redisContract(config: StoreConfig, stopBackend?: () => Promise<void>): ContractOptions {
  return {
    async make(t): Promise<StoreFixture> {
      const prefix = `t${++counter}-${process.pid}:`
      const { store, client } = await redisStore(t, config, prefix)
      const { store: peer } = await redisStore(t, config, prefix)
      return { store, peer, inspect: () => inspectKeys(client, prefix) }
    },
    inspects: true,
    ...(stopBackend ? { stopBackend } : {}),
  }
}

/**
 * Every key under `prefix` on every master, with its PTTL and its content as text (a string
 * value byte for byte as latin1: sessions are binary).
 */
export async function inspectKeys(client: Redis | Cluster, prefix: string) {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  const out: Array<{ key: string; pttl: number; content: string; bytes: number }> = []
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      for (const key of keys) {
        const type = await node.type(key)
        const content =
          type === 'string'
            ? ((await node.getBuffer(key)) ?? Buffer.alloc(0)).toString('latin1')
            : type === 'zset'
              ? (await node.zrange(key, 0, -1, 'WITHSCORES')).join(' ')
              : type === 'hash'
                ? JSON.stringify(await node.hgetall(key))
                : `<${type}>`
        const bytes = Number(await node.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
        out.push({ key, pttl: await node.pttl(key), content, bytes })
      }
    } while (cursor !== '0')
  }
  return out
}
