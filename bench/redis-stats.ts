/** Redis figures the session and memory benchmarks read. */
import type { Redis } from 'ioredis'

/**
 * The commands clients sent while `action` ran, by name: one round trip each. Read through
 * MONITOR because INFO commandstats also counts every command a script runs inside Redis.
 * MONITOR slows Redis down, so run only a small, sequential sample through it.
 */
export async function commandsSent(redis: Redis, action: () => Promise<void>): Promise<Map<string, number>> {
  const monitor = await redis.monitor()
  const seen = new Map<string, number>()
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return
    const name = String(args[0]).toUpperCase()
    seen.set(name, (seen.get(name) ?? 0) + 1)
  })
  await action()
  // MONITOR lines arrive after the replies the action waited for.
  await new Promise((resolve) => setTimeout(resolve, 200))
  monitor.disconnect()
  return seen
}

/** "2 EVALSHA + 1 DEL" per operation; background commands (well under one per op) left out. */
export function perOperation(seen: Map<string, number>, ops: number): string {
  const parts = [...seen]
    .filter(([, n]) => n / ops >= 0.5)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${Number((n / ops).toFixed(2))} ${name}`)
  return parts.join(' + ') || 'none'
}

/** `used_memory` from INFO memory, in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? NaN)
}

/** Waits for a store's first connection: its client queues nothing while connecting. */
export async function ready(store: { ping(): Promise<void> }): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await store.ping()
    } catch (err) {
      if (i === 50) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
