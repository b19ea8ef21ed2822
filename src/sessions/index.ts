/**
 * Builds the session store `store.type` asks for. The gateway passes the result around;
 * nothing here is a module-level singleton.
 */
import type { AuthConfig, StoreConfig } from '../config/schema.js'
import { createMemoryStore } from './memory-store.js'
import { createRedisClients } from './redis-client.js'
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
  const options = { ...storeOptions(config.auth), ...overrides }
  if (config.store.type === 'memory') return createMemoryStore(options)
  const onError = (err: unknown) => log?.warn({ err }, 'session store: redis error')
  const { client, subscriber } = createRedisClients(config.store, onError)
  return createRedisStore(client, subscriber, { ...options, keyPrefix: config.store.keyPrefix, onError, ownsClient: true })
}

export type { SessionStore, StoreOptions } from './types.js'
