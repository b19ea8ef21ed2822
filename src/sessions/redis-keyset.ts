/**
 * The managed keyset on Redis (./keyset.ts): a HASH `P keyset` with fields `v` (the version)
 * and `set` (the value), one key and so one Cluster slot; every replacement is announced on
 * the channel `P keyset` with its version. No expiry: the keyset outlives every session, and
 * a key without a TTL is never evicted under the volatile-* policies the gateway accepts.
 *
 * Its own connections (a command one, and a subscriber once watched): the session store keeps
 * its clients to itself, and these carry a poll every few seconds and a rare write.
 */
import type { Cluster, Redis } from 'ioredis'
import type { StoreConfig } from '../config/schema.js'
import type { StoreLog } from './index.js'
import type { KeysetStore } from './keyset.js'
import { createRedisClients, whenReady, type RedisClients } from './redis-client.js'

/** Compare-and-set: written and published only if the version is still ARGV[1]. */
const REPLACE = `local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'set', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1`

export async function connectRedisKeyset(store: Exclude<StoreConfig, { type: 'memory' }>, log?: StoreLog): Promise<KeysetStore> {
  const clients = createRedisClients(store, (err) => log?.warn({ err }, 'managed keys: redis error'))
  // The keys are needed before the first request can be served: wait for the connection.
  await whenReady(clients.client, Math.max(2000, store.commandTimeout * 4)).catch(async (err: unknown) => {
    clients.client.disconnect()
    throw new Error('the store is not reachable, and the managed signing keys live there', { cause: err })
  })
  return redisKeyset(clients, store.keyPrefix)
}

export function redisKeyset({ client, subscriber }: RedisClients, prefix: string): KeysetStore {
  const key = `${prefix}keyset`
  const channel = `${prefix}keyset`
  let sub: Redis | Cluster | null = null
  const watchers = new Set<() => void>()
  const tell = () => {
    for (const changed of watchers) changed()
  }
  return {
    async read() {
      const [v, value] = await client.hmget(key, 'v', 'set')
      return v == null || value == null ? null : { version: Number(v), value }
    },
    async version() {
      return Number((await client.hget(key, 'v')) ?? 0)
    },
    async replace(expected, value) {
      return (await client.eval(REPLACE, 1, key, String(expected), String(expected + 1), value, channel)) === 1
    },
    watch(changed) {
      watchers.add(changed)
      if (sub === null) {
        sub = subscriber()
        sub.on('message', (from: string) => from === channel && tell())
        // Messages sent while the connection was down are lost: after a reconnect, look.
        sub.on('ready', tell)
        void sub.subscribe(channel).catch(() => {})
      }
      return () => watchers.delete(changed)
    },
    async close() {
      watchers.clear()
      await Promise.allSettled([quit(client), sub && quit(sub)])
    },
  }
}

const quit = (c: Redis | Cluster) => c.quit().catch(() => c.disconnect())
