/**
 * `portcullis keys rotate --now [--config FILE]`: the emergency rotation of managed keys
 * (docs/keys.md). Every key in the store is retired at once (out of the JWKS, and no instance
 * verifies with it any more) and one new key signs from now. Every key goes, not only the
 * signing one: whoever could read one sealed key could read them all.
 *
 * The cost: every access token is refused (401 invalid_token) and every client refreshes;
 * refresh tokens are not signed, so sessions survive. Running instances learn of it through
 * the store's notification, or their next poll.
 */
import { sealingKey } from '../auth/key-seal.js'
import { encodeKeyset, makeKey, openKey, parseKeyset, type ManagedAlgorithm } from '../auth/keyset-codec.js'
import type { ManagedSettings } from '../auth/managed-keys.js'
import type { GatewayConfig } from '../config/schema.js'
import type { KeysetStore } from '../sessions/keyset.js'

export interface Rotated {
  /** The new key, signing from now. */
  kid: string
  /** Every key that was in the store, retired. */
  retired: string[]
}

/**
 * Replaces the keyset with one new key active at `now`. Refuses when `encryptionKey` cannot
 * open the keys in the store: a key sealed with the wrong one could be opened by no instance,
 * which would keep signing with the keys being retired.
 */
export async function rotateNow(store: KeysetStore, alg: ManagedAlgorithm, settings: ManagedSettings, now: number): Promise<Rotated> {
  const sealKey = sealingKey(settings.encryptionKey)
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await store.read()
    const current = stored ? parseKeyset(stored.value) : null
    for (const key of current?.keys ?? []) {
      if ((await openKey(key, current!.alg, sealKey)) === null) {
        throw new Error(
          `auth.keys.managed.encryptionKey cannot open the managed key ${key.kid} in the store: nothing was changed (run this with the instances' encryptionKey)`,
        )
      }
    }
    const key = await makeKey(alg, now, sealKey)
    if (await store.replace(stored?.version ?? 0, encodeKeyset({ alg, keys: [key] }))) {
      return { kid: key.kid, retired: current?.keys.map((k) => k.kid) ?? [] }
    }
  }
  throw new Error('the keyset kept changing while this command tried to replace it: run it again')
}

/** The CLI command: its output lines, or an Error whose message is for the operator. */
export async function runKeysRotate(config: GatewayConfig, now = Date.now()): Promise<string> {
  const keys = config.auth.keys
  if (!keys?.managed) {
    throw new Error('auth.keys.managed is not configured: with key files, put a new key first in auth.keys.signing and reload')
  }
  if (config.store.type === 'memory') {
    throw new Error('with store.type memory the managed keys live inside the running gateway: restarting it makes new ones')
  }
  const { connectRedisKeyset } = await import('../sessions/redis-keyset.js')
  const store = await connectRedisKeyset(config.store)
  try {
    const { kid, retired } = await rotateNow(store, keys.algorithm as ManagedAlgorithm, keys.managed, now)
    return `retired at once: ${retired.length > 0 ? retired.join(', ') : '(none)'}\nsigning from now: ${kid}\n`
  } finally {
    await store.close()
  }
}
