/**
 * Rate-limit counts in Redis, shared by every instance using the same store and keyPrefix.
 *
 * One Lua call per hit (INCR, then PEXPIRE on the first hit of a window), so two instances
 * counting at once never lose a hit or leave a key without expiry. Keys:
 * `<keyPrefix>rl:<scope>:{<T>}<rest of the hashed id>`, where T, the Redis Cluster hash tag, is
 * the hashed id's first 6 characters: subjectTag() of the id (./rate-limit.ts hashId). So a
 * username's sign-in counter lives in the slot of the sessions of the subject spelled the same
 * (lower-case): that user's sign-in depends on one Cluster master, not two.
 * Each script touches one key, and ids spread over the slots.
 *
 * It uses a connection of its own (made by the session store's client factory, with the same
 * bounded timeouts and no offline queue): a dead Redis fails a check at once instead of
 * queueing it.
 */
import type { Cluster, Redis } from 'ioredis'
import type { StoreConfig } from '../config/schema.js'
import { createRedisClients, whenReady } from '../sessions/redis-client.js'
import { TAG_LENGTH } from '../sessions/tokens.js'
import type { RateLimitStore } from './rate-limit.js'

/** KEYS[1] the counter; ARGV[1] the window (ms). Returns { count, ms until the window ends }. */
const HIT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
`

type Scripted = { portcullisRateHit(key: string, windowMs: number): Promise<[number, number]> }

export function createRedisRateLimitStore(client: Redis | Cluster, keyPrefix: string, ownsClient = false): RateLimitStore {
  // Same rule as the session store's keys: a brace in the prefix would move the hash tag.
  if (/[{}]/.test(keyPrefix)) throw new TypeError('store.keyPrefix must not contain "{" or "}"')
  client.defineCommand('portcullisRateHit', { numberOfKeys: 1, lua: HIT })
  const redis = client as unknown as Scripted
  const key = (scope: string, id: string) => `${keyPrefix}rl:${scope}:{${id.slice(0, TAG_LENGTH)}}${id.slice(TAG_LENGTH)}`
  return {
    async hit(scope, id, windowMs) {
      const [count, ttl] = await redis.portcullisRateHit(key(scope, id), Math.max(1, Math.ceil(windowMs)))
      return { count, resetInMs: ttl }
    },
    async reset(scope, id) {
      await client.del(key(scope, id))
    },
    async ping() {
      await client.ping()
    },
    async close() {
      if (ownsClient) await client.quit().catch(() => client.disconnect())
    },
  }
}

/** A Redis rate-limit store on a new connection described by `store` (any Redis store type). */
export async function connectRedisRateLimitStore(store: StoreConfig, onError: (err: unknown) => void): Promise<RateLimitStore> {
  const { client } = createRedisClients(store, onError)
  // Bounded wait so the first sign-ins do not fail while the connection opens; a Redis that is
  // down at start makes the gateway not ready anyway, and the client keeps reconnecting.
  await whenReady(client, Math.max(1000, store.commandTimeout * 2)).catch(() => {})
  return createRedisRateLimitStore(client, store.keyPrefix, true)
}
