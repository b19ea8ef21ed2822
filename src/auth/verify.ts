/**
 * Access-token verification: the first step of every protected request.
 *
 * Cheap structural checks run before any cryptography so garbage costs almost nothing; a
 * bounded cache of verified tokens (token → claims) skips the signature check for a token
 * seen before, while `exp`/`nbf` are still checked on every request (revocation and roles are
 * checked by the caller on every request too). Only successfully verified tokens are cached,
 * so a forged token can never be served from the cache.
 *
 * A signature check is the one costly step (about 70 µs of CPU for ES256 through node:crypto,
 * see ./jws-compact.ts), so everything that can refuse a token without it runs first, and
 * checks go through a CheckGate. A token whose signature failed is remembered (a client
 * retrying a stale token costs one check), and only such a failure is charged to the client's
 * FailureBudget.
 */
import type { JWTPayload } from 'jose'
import { LRUCache } from 'lru-cache'
import { GatewayError } from '../errors.js'
import type { CheckGate } from './check-gate.js'
import type { FailureBudget } from './failure-budget.js'
import { isValidRole, isValidSubject } from './identity/types.js'
import { checkClaims, type JoseHeader, JWS_COMPACT, parseObject, readCompact, signatureHolds, signatureHoldsOffThread } from './jws-compact.js'
import type { Keyring } from './keys.js'

export interface AccessClaims extends JWTPayload {
  sub: string
  sid: string
  iat: number
  exp: number
  roles: string[]
}

export interface VerifierOptions {
  keyring: Keyring
  issuer: string
  audience: string
  /** ms */
  clockTolerance: number
  /** ms; a token whose exp − iat exceeds it is refused. */
  maxLifetime: number
  /** Bytes of memory the verified-token cache may hold (auth.tokenCache.maxMemory; see entryBytes); 0 disables it. */
  cacheSize?: number
  /** Counted on every look-up (plain numbers; metrics read them at scrape time). */
  cacheStats?: TokenCacheStats
  /** Failed signature checks per client: a client over it waits behind the others at the gate. */
  failures?: FailureBudget
  /** Bounds the signature checks under way at once. */
  gate?: CheckGate
  /** Told every signature check: whether it waited in the over-budget lane, and whether it held. */
  observeCheck?: (deferred: boolean, valid: boolean) => void
  now?: () => number
}

/** The `typ` of identity assertions (SPEC.md "Identity assertion"). */
export const ASSERTION_TYP = 'portcullis-assertion+jwt'

/** Our own tokens are well under 2 KiB; anything far larger is refused before parsing. */
export const MAX_TOKEN_LENGTH = 8192

/** `client` (its address) is charged for failed signature checks when a FailureBudget is set. */
export interface Verifier {
  (token: string, client?: string): Promise<AccessClaims>
  /**
   * The claims of a token verified before and still within its times, synchronously; undefined
   * when it would need verifying (or has expired). Lets the hot path skip a promise.
   */
  cached(token: string): AccessClaims | undefined
  /** The cache's counts and what it holds now. */
  readonly cacheStats: TokenCacheStats
}

/**
 * The verified-token cache's hits and misses, and what it holds. A hit counts where the token
 * is found (`cached` or the verifier itself), a miss only in the verifier (where a caller goes
 * after `cached` came back empty), so a request counts once, or twice when it is refused after
 * a hit (revoked, a missing role).
 */
export interface TokenCacheStats {
  hits: number
  misses: number
  /** Entries and bytes (as entryBytes reckons them) of the newest verifier's cache. */
  held: () => { entries: number; bytes: number }
}

/** As auth.tokenCache.maxMemory's default (src/config/schema.ts): about 110,000 tokens of ours. */
const DEFAULT_CACHE_BYTES = 128 * 1024 * 1024

export function createVerifier(opts: VerifierOptions): Verifier {
  const { keyring, issuer, audience, maxLifetime } = opts
  const now = opts.now ?? Date.now
  const toleranceSec = Math.ceil(opts.clockTolerance / 1000)
  const maxLifetimeSec = Math.ceil(maxLifetime / 1000)
  const cache =
    opts.cacheSize === 0 ? null : new LRUCache<string, CacheEntry>({ maxSize: opts.cacheSize ?? DEFAULT_CACHE_BYTES, sizeCalculation: entryBytes })
  const stats = opts.cacheStats ?? { hits: 0, misses: 0, held: () => ({ entries: 0, bytes: 0 }) }
  stats.held = () => ({ entries: cache?.size ?? 0, bytes: cache?.calculatedSize ?? 0 })
  // Tokens whose signature failed, whole (a suffix key would let a forgery sharing a valid
  // token's last characters refuse that token unchecked), bounded in characters held.
  const rejected = opts.cacheSize === 0 ? null : new LRUCache<string, true>({ maxSize: REJECTED_CHARS, sizeCalculation: (_v, k) => k.length })
  const lookup = (token: string): AccessClaims | undefined => {
    const entry = cache?.get(cacheKey(token))
    // One number compared per hit: only once a kid stopped verifying (`keys rotate --now`) is
    // the entry's kid looked up again, and a token by a retired key then goes the uncached
    // way, where its unknown kid refuses it. The look-up stays out of line, so this one inlines.
    return entry !== undefined && entry.token === token && (entry.epoch === keyring.epoch || stillVerifies(entry)) ? entry.claims : undefined
  }
  const stillVerifies = (entry: CacheEntry): boolean => {
    if (!keyring.verifiers.has(entry.kid)) return false
    entry.epoch = keyring.epoch
    return true
  }

  // Keys are looked up by `kid` among the configured ones only. Key material named in the
  // header (`jwk`, `jku`, `x5u`, `x5c`) is never consulted: trusting it lets anyone sign
  // tokens with their own key (CVE-2018-0114 class of bugs).
  const getKey = (header: JoseHeader) => {
    // An identity assertion is signed by the same key: it must never pass as an access token
    // (RFC 8725 §3.11, explicit typing). typ compares without case and "application/".
    if (typeof header.typ === 'string' && header.typ.toLowerCase().replace(/^application\//, '') === ASSERTION_TYP) {
      throw new GatewayError('invalid_token', 'an identity assertion is not an access token')
    }
    const key = typeof header.kid === 'string' ? keyring.verifiers.get(header.kid) : undefined
    if (!key) throw new GatewayError('invalid_token', 'unknown signing key')
    return key
  }
  // The algorithm is pinned to the keyring's by readCompact (RFC 8725 §3.1).
  const claimRules = { issuer, audience, toleranceSec, required: ['exp', 'iat', 'sub', 'sid'] }

  const { failures, gate, observeCheck } = opts
  const verify = async function verify(token: string, client?: string): Promise<AccessClaims> {
    const nowSec = Math.floor(now() / 1000)
    const hit = lookup(token)
    if (hit) {
      stats.hits++
      checkTimes(hit, nowSec, toleranceSec)
      return hit
    }
    stats.misses++
    return verifyUncached(token, nowSec, client)
  }
  const cached = (token: string): AccessClaims | undefined => {
    const hit = lookup(token)
    if (!hit) return undefined
    const nowSec = Math.floor(now() / 1000)
    // Out of its times, the caller goes on to the verifier, which counts it.
    if (hit.exp <= nowSec - toleranceSec || (typeof hit.nbf === 'number' && hit.nbf > nowSec + toleranceSec)) return undefined
    stats.hits++
    return hit
  }
  return Object.assign(verify, { cached, cacheStats: stats })

  async function verifyUncached(token: string, nowSec: number, client: string | undefined): Promise<AccessClaims> {
    if (token.length > MAX_TOKEN_LENGTH || !JWS_COMPACT.test(token)) {
      throw new GatewayError('invalid_token', 'malformed token')
    }
    const payload = refuseUnchecked(token, nowSec, toleranceSec)
    if (rejected?.has(token)) throw new GatewayError('invalid_token', 'signature already found invalid')
    const deferred = client !== undefined && failures?.spent(client) === true
    // Before the check: a key retired while it runs must still make the entry look again.
    const epoch = keyring.epoch
    const jws = readCompact(token, keyring.algorithm)
    const key = getKey(jws.header)
    // Right before the cryptography, after every check that costs nothing.
    if (gate) await gate.acquire(deferred)
    let valid: boolean
    try {
      // On this thread, at about half WebCrypto's CPU; but an address past its failure budget
      // (a flood, most likely) is checked on libuv's pool, where the gate keeps it to one thread.
      valid = deferred ? await signatureHoldsOffThread(jws, key) : signatureHolds(jws, key)
    } finally {
      gate?.release(deferred)
    }
    observeCheck?.(deferred, valid)
    if (!valid) {
      rejected?.set(token, true)
      if (client !== undefined) failures?.charge(client)
      throw new GatewayError('invalid_token', 'invalid signature')
    }
    // Parsed once, before the check, from the very part the signature covers.
    const claims = checkShape(checkClaims(payload, claimRules, nowSec), maxLifetimeSec)
    // exp − iat alone would let a token dated in the future live longer than any we issue.
    if (claims.iat > nowSec + toleranceSec) throw new GatewayError('invalid_token', 'token issued in the future')
    cache?.set(cacheKey(token), { token, claims, kid: jws.header.kid as string, epoch })
    return claims
  }
}

/**
 * Refuses, before any cryptography, a token whose own payload already refuses it: not a JSON
 * object, or expired. Returns the payload, parsed once: until the signature has held, its
 * claims are only ever used to refuse, never to accept.
 */
function refuseUnchecked(token: string, nowSec: number, toleranceSec: number): Record<string, unknown> {
  const start = token.indexOf('.') + 1
  const payload = parseObject(token.slice(start, token.indexOf('.', start)))
  if (payload === undefined) throw new GatewayError('invalid_token', 'malformed token')
  const { exp } = payload
  if (typeof exp === 'number' && exp <= nowSec - toleranceSec) throw new GatewayError('token_expired')
  return payload
}

/** About 10,000 ES256 tokens of ours. */
const REJECTED_CHARS = 4_000_000

/**
 * What an entry costs in heap: its token, its claims, the entry and lru-cache's bookkeeping,
 * reckoned from the token's length, since the claims grow with it. Measured with
 * bench/token-cache-memory.ts over 100,000 ES256 tokens of ours (Node 20): 1,169 bytes of heap
 * each for 398-character tokens (no custom claims), 1,698 for 678, 3,569 for 1,745; this
 * reckons 1,176, 1,666 and 3,533.
 */
function entryBytes(entry: CacheEntry): number {
  return 480 + ((entry.token.length * 7) >> 2)
}

interface CacheEntry {
  readonly token: string
  readonly claims: AccessClaims
  readonly kid: string
  /** keyring.epoch when its kid was last known to verify. */
  epoch: number
}

const CACHE_KEY_LENGTH = 32
/**
 * The verified-token cache is keyed by a token's last 32 characters (the end of its
 * signature), and a hit still compares the whole token. Hashing a whole token as a Map key
 * cost about 0.75 µs per request for a 400-character ES256 token (V8 hashes every character
 * of a fresh string), three times the suffix lookup and comparison. A forged token sharing a
 * cached token's suffix finds an entry that is not its own, and is verified like any other.
 */
function cacheKey(token: string): string {
  return token.length > CACHE_KEY_LENGTH ? token.slice(-CACHE_KEY_LENGTH) : token
}

function checkShape(payload: JWTPayload, maxLifetimeSec: number): AccessClaims {
  const { sub, sid, iat, exp } = payload
  const roles = payload['roles'] ?? []
  // These become header values upstream (x-user-id, x-user-roles, x-session-id): printable
  // ASCII only, and no role may contain the "," that joins them.
  if (!isValidSubject(sub) || typeof sid !== 'string' || !isValidSubject(sid)) {
    throw new GatewayError('invalid_token', 'missing or malformed subject or session')
  }
  if (!Array.isArray(roles) || !roles.every(isValidRole)) {
    throw new GatewayError('invalid_token', 'roles must be an array of role names')
  }
  // A token living longer than we would ever issue was not minted by this gateway's rules
  // (or was minted with a leaked key for long-term use): refuse it.
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > maxLifetimeSec) {
    throw new GatewayError('invalid_token', 'token lifetime exceeds the configured access token TTL')
  }
  return Object.freeze({ ...payload, sub, sid, iat, exp, roles }) as AccessClaims
}

/** For cache hits: the signature was checked before, the clock has moved since. */
function checkTimes(claims: AccessClaims, nowSec: number, toleranceSec: number): void {
  if (claims.exp <= nowSec - toleranceSec) throw new GatewayError('token_expired')
  if (typeof claims.nbf === 'number' && claims.nbf > nowSec + toleranceSec) {
    throw new GatewayError('invalid_token', 'token not yet valid')
  }
}
