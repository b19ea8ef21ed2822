/**
 * Where the managed signing keys live (src/auth/managed-keys.ts): one versioned value, beside
 * the sessions, that every instance sharing the store reads. It is replaced whole by
 * compare-and-set, so that instances planning the same change at once (the first key, the
 * next key) converge on one writer's keyset: the others' writes fail and they read it back.
 * The value is opaque here.
 */
import type { StoreConfig } from '../config/schema.js'
import type { StoreLog } from './index.js'

export interface StoredKeyset {
  /** 1 for the first value written, one more for each replacement. */
  version: number
  value: string
}

export interface KeysetStore {
  /** The value and its version; null when none was ever written. */
  read(): Promise<StoredKeyset | null>
  /** Just the version (0: none yet): what a poll reads, a few bytes. */
  version(): Promise<number>
  /** Writes `value` if the version is still `expected` (0: none yet) and tells every watcher; true when written. */
  replace(expected: number, value: string): Promise<boolean>
  /** Calls `changed` whenever another writer may have replaced the value; returns what stops it. */
  watch(changed: () => void): () => void
  close(): Promise<void>
}

/** In process memory, for the memory store: one process shares it. */
export function memoryKeyset(): KeysetStore {
  let stored: StoredKeyset | null = null
  const watchers = new Set<() => void>()
  return {
    read: async () => stored && { ...stored },
    version: async () => stored?.version ?? 0,
    async replace(expected, value) {
      if ((stored?.version ?? 0) !== expected) return false
      stored = { version: expected + 1, value }
      for (const changed of watchers) queueMicrotask(changed)
      return true
    },
    watch(changed) {
      watchers.add(changed)
      return () => watchers.delete(changed)
    },
    async close() {
      watchers.clear()
    },
  }
}

/** The keyset store for `store`: in memory, or on the same Redis as the sessions. */
export async function openKeyset(store: StoreConfig, log?: StoreLog): Promise<KeysetStore> {
  if (store.type === 'memory') return memoryKeyset()
  const { connectRedisKeyset } = await import('./redis-keyset.js')
  return connectRedisKeyset(store, log)
}
