/**
 * The managed keyset as the store keeps it, one JSON value:
 *
 *   {"alg":"ES256","keys":[{"kid":"2026-11-27.x1Yz9Qa0","activatesAt":1795780800000,"sealed":"…"}]}
 *
 * `sealed` is the PKCS#8 private key sealed by ./key-seal.ts. No public key is stored: each
 * instance derives it from the private one it opened, so what it verifies with and serves in
 * the JWKS can only be a key sealed with the encryptionKey.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { exportJWK, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose'
import { seal, unseal } from './key-seal.js'
import type { ScheduledKey } from './keyset-schedule.js'

export type ManagedAlgorithm = 'ES256' | 'EdDSA' | 'RS256'

export interface StoredKey extends ScheduledKey {
  readonly sealed: string
}

export interface KeysetRecord {
  readonly alg: ManagedAlgorithm
  readonly keys: readonly StoredKey[]
}

/** A stored key opened for use: imported once, as jose wants them. */
export interface OpenedKey extends ScheduledKey {
  readonly stored: StoredKey
  readonly signer: { readonly kid: string; readonly key: CryptoKey }
  readonly verifier: CryptoKey
  /** Its public part as the JWKS serves it. */
  readonly jwk: JWK
}

const KID = /^[A-Za-z0-9._-]{1,128}$/
const ALGS: readonly string[] = ['ES256', 'EdDSA', 'RS256']

export const encodeKeyset = (record: KeysetRecord): string => JSON.stringify(record)

/** Throws when `value` is not a keyset this gateway wrote (so nothing is guessed from it). */
export function parseKeyset(value: string): KeysetRecord {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    parsed = null
  }
  const record = parsed as KeysetRecord | null
  const valid =
    record !== null &&
    typeof record === 'object' &&
    ALGS.includes(record.alg) &&
    Array.isArray(record.keys) &&
    record.keys.every(
      (k) => k !== null && typeof k === 'object' && KID.test(k.kid) && Number.isSafeInteger(k.activatesAt) && typeof k.sealed === 'string',
    )
  if (!valid) throw new Error('the managed keyset in the store is not in the form the gateway writes')
  return { alg: record.alg, keys: record.keys.map(({ kid, activatesAt, sealed }) => ({ kid, activatesAt, sealed })) }
}

const generate = promisify(generateKeyPair)

/** A new private key, sealed; its kid names the day it starts signing, for the operator's eye. */
export async function makeKey(alg: ManagedAlgorithm, activatesAt: number, sealKey: Buffer): Promise<StoredKey> {
  const { privateKey } =
    alg === 'ES256'
      ? await generate('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? await generate('ed25519')
        : await generate('rsa', { modulusLength: 3072 })
  const kid = `${new Date(activatesAt).toISOString().slice(0, 10)}.${randomBytes(6).toString('base64url')}`
  return { kid, activatesAt, sealed: seal(sealKey, kid, privateKey.export({ type: 'pkcs8', format: 'der' })) }
}

/** null when the key cannot be opened with `sealKey` (another encryptionKey sealed it). */
export async function openKey(stored: StoredKey, alg: ManagedAlgorithm, sealKey: Buffer): Promise<OpenedKey | null> {
  const der = unseal(sealKey, stored.kid, stored.sealed)
  if (der === null) return null
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  if (!fits(privateKey, alg)) throw new Error(`managed key ${stored.kid} is not an ${alg} key`)
  const jwk = await exportJWK(createPublicKey(privateKey))
  return {
    kid: stored.kid,
    activatesAt: stored.activatesAt,
    stored,
    signer: { kid: stored.kid, key: await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), alg) },
    // Extractable (public): src/auth/jws-compact.ts makes a KeyObject of it (DEP0204).
    verifier: (await importJWK({ ...jwk, alg }, alg, { extractable: true })) as CryptoKey,
    jwk: { ...jwk, kid: stored.kid, alg, use: 'sig' },
  }
}

function fits(key: KeyObject, alg: ManagedAlgorithm): boolean {
  const type = key.asymmetricKeyType
  if (alg === 'ES256') return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  if (alg === 'EdDSA') return type === 'ed25519'
  return type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048
}
