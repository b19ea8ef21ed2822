/** ShortLivedValues in process memory, for the memory store (one process). */
import type { ShortLivedValues } from './types.js'

export interface MemoryShortLived extends ShortLivedValues {
  /** Forgets what expired by `now` (the memory store's sweep calls it). */
  sweep(now: number): void
}

export function memoryShortLived(): MemoryShortLived {
  const values = new Map<string, { value: string; expiresAt: number }>()
  const sets = new Map<string, { members: Set<string>; expiresAt: number }>()
  const live = <T extends { expiresAt: number }>(map: Map<string, T>, k: string, now: number): T | undefined => {
    const entry = map.get(k)
    if (entry !== undefined && entry.expiresAt <= now) map.delete(k)
    return entry !== undefined && entry.expiresAt > now ? entry : undefined
  }
  return {
    async putNew(k, value, ttl, now) {
      if (live(values, k, now)) return false
      values.set(k, { value, expiresAt: now + Math.max(1, ttl) })
      return true
    },
    async take(k, now) {
      const entry = live(values, k, now)
      values.delete(k)
      return entry?.value ?? null
    },
    async link(k, member, expiresAt, now) {
      const entry = live(sets, k, now)
      if (entry) {
        entry.members.add(member)
        entry.expiresAt = Math.max(entry.expiresAt, expiresAt)
      } else sets.set(k, { members: new Set([member]), expiresAt })
    },
    async linked(k, now) {
      return [...(live(sets, k, now)?.members ?? [])]
    },
    sweep(now) {
      for (const map of [values, sets] as Map<string, { expiresAt: number }>[]) {
        for (const [k, entry] of map) if (entry.expiresAt <= now) map.delete(k)
      }
    },
  }
}
