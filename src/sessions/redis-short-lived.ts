/**
 * ShortLivedValues on Redis: plain keys `P x:<key>`, each in its own Cluster slot and
 * touched by one command or one single-key script, so no call spans slots.
 */
import type { Cluster, Redis } from 'ioredis'
import { GatewayError } from '../errors.js'
import type { ShortLivedValues } from './types.js'

/**
 * SADD, then push the expiry out to ARGV[2] ms from now if that is later (never pull it in).
 * PTTL rather than PEXPIRETIME, which needs Redis 7.
 */
const LINK = `redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`

async function call<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (cause) {
    throw new GatewayError('store_unavailable', 'session store call failed', { cause })
  }
}

export function redisShortLived(client: Redis | Cluster, prefix: string): ShortLivedValues {
  const key = (k: string) => `${prefix}x:${k}`
  return {
    putNew: async (k, value, ttl) => (await call(() => client.set(key(k), value, 'PX', Math.max(1, Math.ceil(ttl)), 'NX'))) === 'OK',
    take: (k) => call(() => client.getdel(key(k))),
    async link(k, member, expiresAt, now) {
      await call(() => client.eval(LINK, 1, key(k), member, Math.max(1, Math.ceil(expiresAt - now))))
    },
    linked: (k) => call(() => client.smembers(key(k))),
  }
}
