/**
 * Signing and verification keys: loaded and imported once per config generation.
 *
 * jose re-imports a raw secret or PEM on every sign/verify call when handed one, which
 * doubled HS256 verify cost when measured; so every key becomes a CryptoKey here, once.
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { exportJWK, generateKeyPair, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose'
import type { KeysConfig } from '../config/schema.js'
import { ManagedKeyring } from './managed-keys.js'

export type Algorithm = 'ES256' | 'EdDSA' | 'RS256' | 'HS256'
type Key = CryptoKey

/**
 * Read at the moment of use, never copied: a managed keyring (./managed-keys.ts) changes its
 * signer, verifiers and JWKS while the process runs; a keyring from files never does.
 */
export interface Keyring {
  readonly algorithm: Algorithm
  /** The key that signs a token (or an assertion) made now: the first configured entry, or the managed key of the moment. */
  readonly signer: { readonly kid: string; readonly key: Key }
  /** Every configured entry, by kid. */
  readonly verifiers: ReadonlyMap<string, Key>
  /** What `/.well-known/jwks.json` serves: public parts only (nothing for HS256). */
  readonly jwks: { readonly keys: readonly JWK[] }
  /** Seconds an upstream may cache the JWKS (its Cache-Control max-age). */
  readonly jwksMaxAge: number
  /** Changes whenever a kid stops verifying, so that a verifier re-checks what it cached; constant for files. */
  readonly epoch: number
  /** True when no keys were configured and a throwaway key was generated. */
  readonly ephemeral: boolean
}

/** Files do not change under a running process: a JWKS cached for five minutes is fine. */
const FILE_JWKS_MAX_AGE = 300

/** A key that cannot be used, with the config path it came from. */
export class KeyProblem extends Error {
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message)
  }
}

const MIN_HS256_BYTES = 32 // RFC 7518 §3.2: a key of the same size as the hash output, or larger
const MIN_RSA_BITS = 2048 // RFC 7518 §3.3

/**
 * Loads every configured key; throws a `KeyProblem[]` (as AggregateError) listing each bad one.
 * For auth.keys.managed the keys are in the store: the answer is a ManagedKeyring that holds
 * none until main.ts starts it once the store is open.
 */
export async function loadKeyring(config: KeysConfig | undefined, algorithm: Algorithm = 'ES256'): Promise<Keyring> {
  if (!config) return ephemeralKeyring(algorithm)
  const alg = config.algorithm as Algorithm
  // check-config refuses HS256 with managed keys; this is the same rule where the keys are made.
  if (config.managed && alg !== 'HS256') return new ManagedKeyring(alg, config.managed)
  const problems: KeyProblem[] = []
  const verifiers = new Map<string, Key>()
  const jwks: JWK[] = []
  let signer: Keyring['signer'] | undefined

  for (const [i, entry] of (config.signing ?? []).entries()) {
    const at = (field: string) => ['auth', 'keys', 'signing', i, field]
    try {
      if ('secret' in entry) {
        if (alg !== 'HS256') throw new KeyProblem(at('secret'), `a secret is only valid with algorithm HS256, not ${alg}`)
        const bytes = Buffer.from(entry.secret, 'utf8')
        if (bytes.length < MIN_HS256_BYTES) {
          throw new KeyProblem(at('secret'), `HS256 secrets must be at least ${MIN_HS256_BYTES} bytes (got ${bytes.length})`)
        }
        const key = await importHmac(bytes)
        verifiers.set(entry.kid, key)
        signer ??= { kid: entry.kid, key }
        continue
      }
      if (alg === 'HS256') throw new KeyProblem(at('kid'), 'algorithm HS256 needs `secret` entries, not key files')
      const isPrivate = 'privateKeyFile' in entry
      const field = isPrivate ? 'privateKeyFile' : 'publicKeyFile'
      const file = isPrivate ? entry.privateKeyFile : entry.publicKeyFile
      const pem = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new KeyProblem(at(field), `cannot read ${file}: ${err.code ?? err.message}`)
      })
      const publicKey = parsePem(pem, isPrivate, alg, (msg) => new KeyProblem(at(field), msg))
      const jwk = await exportJWK(publicKey)
      jwks.push({ ...jwk, kid: entry.kid, alg, use: 'sig' })
      // Extractable (it is a public key): src/auth/jws-compact.ts turns it into a node:crypto
      // KeyObject, which Node 24 deprecates for a non-extractable CryptoKey (DEP0204).
      verifiers.set(entry.kid, (await importJWK({ ...jwk, alg }, alg, { extractable: true })) as Key)
      if (isPrivate && !signer) {
        signer = { kid: entry.kid, key: (await importPKCS8(pem, alg)) as Key }
      }
    } catch (err) {
      problems.push(err instanceof KeyProblem ? err : new KeyProblem(at('kid'), String((err as Error).message)))
    }
  }
  if (!signer && problems.length === 0) {
    problems.push(new KeyProblem(['auth', 'keys', 'signing', 0], 'the first signing key must have a private part'))
  }
  if (problems.length > 0) throw new AggregateError(problems, problems.map((p) => p.message).join('; '))
  return Object.freeze({
    algorithm: alg,
    signer: signer!,
    verifiers,
    jwks: Object.freeze({ keys: jwks }),
    jwksMaxAge: FILE_JWKS_MAX_AGE,
    epoch: 0,
    ephemeral: false,
  })
}

/** Checks a PEM's type against the algorithm and returns its public half. */
function parsePem(pem: string, isPrivate: boolean, alg: Algorithm, fail: (msg: string) => Error): KeyObject {
  let key: KeyObject
  try {
    if (isPrivate && !pem.includes('-----BEGIN PRIVATE KEY-----')) {
      throw fail('expected an unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"); convert with `openssl pkcs8 -topk8 -nocrypt`')
    }
    key = isPrivate ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem)
  } catch (err) {
    if (err instanceof Error && err.name === 'KeyProblem') throw err
    throw fail(`not a valid ${isPrivate ? 'PKCS#8 private' : 'SPKI public'} key PEM`)
  }
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails
  if (alg === 'ES256' && !(type === 'ec' && details?.namedCurve === 'prime256v1')) throw fail(`ES256 needs a P-256 EC key, got ${describe(key)}`)
  if (alg === 'EdDSA' && type !== 'ed25519') throw fail(`EdDSA needs an Ed25519 key, got ${describe(key)}`)
  if (alg === 'RS256') {
    if (type !== 'rsa') throw fail(`RS256 needs an RSA key, got ${describe(key)}`)
    if ((details?.modulusLength ?? 0) < MIN_RSA_BITS) {
      throw fail(`RSA keys must be at least ${MIN_RSA_BITS} bits (got ${details?.modulusLength})`)
    }
  }
  return key
}

function describe(key: KeyObject): string {
  const d = key.asymmetricKeyDetails
  return [key.asymmetricKeyType, d?.namedCurve, d?.modulusLength && `${d.modulusLength} bits`].filter(Boolean).join(' ')
}

function importHmac(bytes: Uint8Array): Promise<Key> {
  // Extractable for the same reason as the public keys above (DEP0204): the secret is in this
  // process's memory either way, and nothing exports it.
  return webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']) as Promise<Key>
}

/** No keys configured: a throwaway key that lives as long as the process (tokens die with it). */
async function ephemeralKeyring(alg: Algorithm): Promise<Keyring> {
  const kid = `ephemeral-${randomBytes(6).toString('base64url')}`
  if (alg === 'HS256') {
    const key = await importHmac(randomBytes(32))
    return Object.freeze({
      algorithm: alg,
      signer: { kid, key },
      verifiers: new Map([[kid, key]]),
      jwks: { keys: [] },
      jwksMaxAge: FILE_JWKS_MAX_AGE,
      epoch: 0,
      ephemeral: true,
    })
  }
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  return Object.freeze({
    algorithm: alg,
    signer: { kid, key: privateKey as Key },
    verifiers: new Map([[kid, publicKey as Key]]),
    jwks: Object.freeze({ keys: [{ ...jwk, kid, alg, use: 'sig' }] }),
    jwksMaxAge: FILE_JWKS_MAX_AGE,
    epoch: 0,
    ephemeral: true,
  })
}
