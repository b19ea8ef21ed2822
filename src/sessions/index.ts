/**
 * Builds the session store `store.type` asks for. The gateway passes the result around;
 * nothing here is a module-level singleton.
 */
import type { AuthConfig, StoreConfig } from '../config/schema.js'
import { createMemoryStore } from './memory-store.js'
import type { Cluster, Redis } from 'ioredis'
import { createRedisClients, whenReady } from './redis-client.js'
import { createRedisStore } from './redis-store.js'
import type { SessionStore, StoreOptions } from './types.js'

/** Rotated hashes remembered per session for theft detection (the predecessor included). */
export const DEFAULT_HISTORY_SIZE = 5

/** Where Redis errors no caller receives go (a pino logger fits). */
export interface StoreLog {
  warn(obj: object, msg: string): void
}

/** Store options that follow from the auth settings. */
export function storeOptions(auth: Pick<AuthConfig, 'accessTokenTtl' | 'clockTolerance' | 'maxSessionsPerUser'>): StoreOptions {
  return {
    // An ended session's entry must outlive every access token it issued, tolerance included.
    revocationTtl: auth.accessTokenTtl + auth.clockTolerance,
    maxSessionsPerUser: auth.maxSessionsPerUser,
    historySize: DEFAULT_HISTORY_SIZE,
  }
}

export function createStore(
  config: { store: StoreConfig; auth: Parameters<typeof storeOptions>[0] },
  log?: StoreLog,
  overrides: Partial<StoreOptions> = {},
): SessionStore {
  return build(config, log, overrides).store
}

/**
 * createStore, then a bounded wait for Redis to connect. The gateway loads the revoked set right
 * after (src/revocation/sync.ts); sent before the connection is up, that load fails at once (no
 * offline queue) and is retried a second later, and an instance could start serving without
 * the revocations made before it. Redis being away is not fatal: the gateway starts, and
 * /readyz answers 503 until the set is loaded.
 */
export async function openStore(config: { store: StoreConfig; auth: Parameters<typeof storeOptions>[0] }, log?: StoreLog): Promise<SessionStore> {
  const { store, client } = build(config, log, {})
  if (client !== null) {
    await whenReady(client, Math.max(1000, config.store.commandTimeout * 4)).catch(() => {
      log?.warn({}, 'session store: redis not reachable at startup; not ready until the revoked set is loaded')
    })
  }
  return store
}

function build(
  config: { store: StoreConfig; auth: Parameters<typeof storeOptions>[0] },
  log: StoreLog | undefined,
  overrides: Partial<StoreOptions>,
): { store: SessionStore; client: Redis | Cluster | null } {
  const options = { ...storeOptions(config.auth), ...overrides }
  if (config.store.type === 'memory') return { store: createMemoryStore(options), client: null }
  const onError = (err: unknown) => log?.warn({ err }, 'session store: redis error')
  const { client, subscriber } = createRedisClients(config.store, onError)
  return { store: createRedisStore(client, subscriber, { ...options, keyPrefix: config.store.keyPrefix, onError, ownsClient: true }), client }
}

export type { SessionStore, StoreOptions } from './types.js'
