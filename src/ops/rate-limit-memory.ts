/**
 * Rate-limit counts in this process's memory: for the memory session store (one instance).
 * With several instances each would count alone, so a shared store uses ./rate-limit-redis.ts.
 */
import { LRUCache } from 'lru-cache'
import type { RateLimitStore } from './rate-limit.js'

/**
 * Bounds memory whatever ids arrive. Past it the least recently hit counters go first; a
 * counter that is being hit (an ongoing attack) stays.
 */
export const MEMORY_RATE_LIMIT_KEYS = 100_000

interface Window {
  count: number
  resetAt: number
}

export function createMemoryRateLimitStore(now: () => number = Date.now, maxKeys = MEMORY_RATE_LIMIT_KEYS): RateLimitStore {
  const windows = new LRUCache<string, Window>({ max: maxKeys })
  return {
    hit(scope, id, windowMs) {
      const key = `${scope}:${id}`
      const at = now()
      let w = windows.get(key)
      if (w === undefined || w.resetAt <= at) {
        w = { count: 0, resetAt: at + windowMs }
        windows.set(key, w)
      }
      w.count++
      return Promise.resolve({ count: w.count, resetInMs: w.resetAt - at })
    },
    reset(scope, id) {
      windows.delete(`${scope}:${id}`)
      return Promise.resolve()
    },
    close() {
      windows.clear()
      return Promise.resolve()
    },
  }
}
