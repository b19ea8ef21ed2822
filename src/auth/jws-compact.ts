/**
 * A compact JWS checked with node:crypto for the keyring's one pinned algorithm, in place of
 * jose's jwtVerify on the gateway's never-seen-token path.
 *
 * jose checks a signature through WebCrypto (`crypto.subtle.verify`). Measured with
 * bench/verify-cost.mjs (Node 20, this 2-core machine while busy, both in the same run), CPU
 * per never-seen token, header and claims checks included: ES256 60–74 µs here against
 * 111–130 µs through jose's jwtVerify (0.40–0.57×; node:crypto's verify alone is 57–63 µs),
 * EdDSA 0.58–0.67×, RS256 0.33–0.39×. On Node 24 (its OpenSSL verifies P-256 slower: 87–96 µs
 * alone) ES256 is 0.73×, EdDSA 0.66–0.68×, RS256 0.35–0.40×. jose keeps everything else:
 * signing, JWKS, assertions, OIDC.
 *
 * The three steps are separate so the caller can bound the cryptography (its CheckGate)
 * between the header checks and the signature: `readCompact`, `signatureHolds` (on the calling
 * thread) or `signatureHoldsOffThread` (WebCrypto, on libuv's pool), `readClaims`.
 * Refusals are GatewayErrors (`invalid_token`; `token_expired` for a past `exp`).
 */
import { createHmac, KeyObject, timingSafeEqual, verify, webcrypto } from 'node:crypto'
import { GatewayError } from '../errors.js'
import type { Algorithm } from './keys.js'

/** Three non-empty base64url parts; no padding, no whitespace. */
export const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export interface JoseHeader {
  readonly alg: Algorithm
  readonly kid?: unknown
  readonly typ?: unknown
  readonly [name: string]: unknown
}

export interface CompactJws {
  readonly header: JoseHeader
  /** The first two parts and their dot: what the signature covers. */
  readonly signingInput: string
  readonly payload: string
  readonly signature: Buffer
}

const { subtle } = webcrypto

// RFC 8259 §8.1: JSON text is UTF-8; jose refuses ill-formed bytes, so does this.
const utf8 = new TextDecoder('utf-8', { fatal: true })

const malformed = () => new GatewayError('invalid_token', 'malformed token')

/**
 * Splits and checks a token's structure and header, before any cryptography. Refused: not
 * three canonical base64url parts, a header that is not a JSON object, an `alg` other than
 * the pinned one (so never `none`, never HS256 keyed with a public key: RFC 8725 §3.1), any
 * `crit` (we understand no extension, RFC 7515 §4.1.11), an unencoded payload (`b64` other
 * than true, RFC 7797). Key material named in the header (`jwk`, `jku`, `x5u`, `x5c`) is
 * never read; the caller looks the key up by `kid` among its own.
 */
export function readCompact(token: string, algorithm: Algorithm): CompactJws {
  if (!JWS_COMPACT.test(token)) throw malformed()
  const first = token.indexOf('.')
  const second = token.indexOf('.', first + 1)
  const headerPart = token.slice(0, first)
  const payload = token.slice(first + 1, second)
  const signaturePart = token.slice(second + 1)
  // Buffer's decoder ignores the bits past the last byte; a second spelling of the same
  // bytes is refused, so a token has exactly one accepted form (and one cache entry).
  if (!canonical(headerPart) || !canonical(payload) || !canonical(signaturePart)) throw malformed()
  const header = parseObject(headerPart)
  if (header === undefined) throw malformed()
  if (header['alg'] !== algorithm) throw new GatewayError('invalid_token', 'unexpected algorithm')
  if (header['crit'] !== undefined) throw new GatewayError('invalid_token', 'unsupported critical header')
  if (header['b64'] !== undefined && header['b64'] !== true) throw new GatewayError('invalid_token', 'unencoded payload')
  return { header: header as JoseHeader, signingInput: token.slice(0, second), payload, signature: Buffer.from(signaturePart, 'base64url') }
}

/** True when the signature is `key`'s over the token; a signature of the wrong length (a DER ECDSA one) never holds. */
export function signatureHolds(jws: CompactJws, key: webcrypto.CryptoKey): boolean {
  const { alg, keyObject, length } = verifyingKey(key)
  if (alg !== jws.header.alg || jws.signature.length !== length) return false
  const data = Buffer.from(jws.signingInput, 'latin1') // ASCII by JWS_COMPACT
  switch (alg) {
    case 'HS256':
      return timingSafeEqual(createHmac('sha256', keyObject).update(data).digest(), jws.signature)
    case 'ES256':
      return verify('sha256', data, { key: keyObject, dsaEncoding: 'ieee-p1363' }, jws.signature)
    case 'RS256':
      return verify('sha256', data, keyObject, jws.signature) // RSASSA-PKCS1-v1_5, RFC 7518 §3.3
    case 'EdDSA':
      return verify(null, data, keyObject, jws.signature)
  }
}

/**
 * The same check on a thread of libuv's pool, through WebCrypto: for a check the caller wants
 * off the event loop's thread (a token from an address past its failure budget, which its
 * CheckGate runs one at a time, so that a flood of forgeries keeps at most one pool thread busy
 * and leaves the event loop to everyone else).
 */
export async function signatureHoldsOffThread(jws: CompactJws, key: webcrypto.CryptoKey): Promise<boolean> {
  const { alg, length } = verifyingKey(key)
  if (alg !== jws.header.alg || jws.signature.length !== length) return false
  const data = Buffer.from(jws.signingInput, 'latin1')
  return subtle.verify(SUBTLE_PARAMS[alg], key, jws.signature, data)
}

const SUBTLE_PARAMS = {
  HS256: { name: 'HMAC' },
  ES256: { name: 'ECDSA', hash: 'SHA-256' }, // WebCrypto's ECDSA signature is r‖s, as in JWS
  RS256: { name: 'RSASSA-PKCS1-v1_5' },
  EdDSA: { name: 'Ed25519' },
} as const

export interface ClaimRules {
  readonly issuer: string
  readonly audience: string
  /** seconds */
  readonly toleranceSec: number
  /** Claims that must be present, beyond iss and aud. */
  readonly required: readonly string[]
}

/**
 * The claims of a token whose signature held, checked as jose's jwtVerify checks them: a JSON
 * object; `iss` equal to ours; `aud` ours or an array holding ours; `iat`, `nbf`, `exp`
 * numbers when present; not before `nbf`, not at or after `exp`, each within the tolerance.
 */
export function readClaims(payload: string, rules: ClaimRules, nowSec: number): Record<string, unknown> {
  const claims = parseObject(payload)
  if (claims === undefined) throw new GatewayError('invalid_token', 'claims are not a JSON object')
  return checkClaims(claims, rules, nowSec)
}

/** readClaims for a payload already parsed (by parseObject, from the token whose signature held). */
export function checkClaims(claims: Record<string, unknown>, rules: ClaimRules, nowSec: number): Record<string, unknown> {
  for (const name of rules.required) {
    if (!Object.hasOwn(claims, name)) throw new GatewayError('invalid_token', `missing ${name} claim`)
  }
  if (claims['iss'] !== rules.issuer) throw new GatewayError('invalid_token', 'unexpected issuer')
  const { aud } = claims
  if (!(aud === rules.audience || (Array.isArray(aud) && aud.includes(rules.audience)))) {
    throw new GatewayError('invalid_token', 'unexpected audience')
  }
  const { iat, nbf, exp } = claims
  if (
    (iat !== undefined && typeof iat !== 'number') ||
    (nbf !== undefined && typeof nbf !== 'number') ||
    (exp !== undefined && typeof exp !== 'number')
  ) {
    throw new GatewayError('invalid_token', 'a time claim that is not a number')
  }
  if (nbf !== undefined && nbf > nowSec + rules.toleranceSec) throw new GatewayError('invalid_token', 'token not yet valid')
  if (exp !== undefined && exp <= nowSec - rules.toleranceSec) throw new GatewayError('token_expired')
  return claims
}

/** A base64url part decoded as strict UTF-8 and parsed; undefined unless a JSON object. */
export function parseObject(part: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(Buffer.from(part, 'base64url')))
  } catch {
    return undefined
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

// Index of each base64url character; the regex has already refused any other.
const SEXTET = new Uint8Array(128)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) SEXTET[c.charCodeAt(0)] = i

/** Unpadded base64url whose length can hold whole bytes and whose unused low bits are zero (RFC 4648 §3.5). */
function canonical(part: string): boolean {
  const rest = part.length & 3
  if (rest === 0) return true
  if (rest === 1) return false
  return (SEXTET[part.charCodeAt(part.length - 1)]! & (rest === 2 ? 0b1111 : 0b11)) === 0
}

interface VerifyingKey {
  readonly alg: Algorithm
  readonly keyObject: KeyObject
  /** Bytes of every valid signature. */
  readonly length: number
}

// Made once per key (keys live for a config generation, or as long as a managed key verifies).
const verifyingKeys = new WeakMap<webcrypto.CryptoKey, VerifyingKey>()

function verifyingKey(key: webcrypto.CryptoKey): VerifyingKey {
  let found = verifyingKeys.get(key)
  if (found === undefined) {
    found = fromCryptoKey(key)
    verifyingKeys.set(key, found)
  }
  return found
}

function fromCryptoKey(key: webcrypto.CryptoKey): VerifyingKey {
  const keyObject = KeyObject.from(key)
  const algorithm = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } }
  const name = algorithm.name
  if (name === 'HMAC' && algorithm.hash?.name === 'SHA-256') return { alg: 'HS256', keyObject, length: 32 }
  if (name === 'ECDSA' && algorithm.namedCurve === 'P-256') return { alg: 'ES256', keyObject, length: 64 }
  if (name === 'Ed25519') return { alg: 'EdDSA', keyObject, length: 64 }
  const bits = keyObject.asymmetricKeyDetails?.modulusLength ?? 0
  // RFC 7518 §3.3, and jose's own floor: a smaller RSA key never verifies.
  if (name === 'RSASSA-PKCS1-v1_5' && bits >= 2048) return { alg: 'RS256', keyObject, length: bits / 8 }
  throw new GatewayError('invalid_token', 'signing key not usable')
}
