/**
 * Verifying a Portcullis identity assertion in an upstream service (SPEC.md "Identity
 * assertion"). Imports jose and nothing of the gateway: a service that installs the package
 * for this loads only this folder and jose.
 */
import { jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { localKeys, remoteKeys, type RemoteKeysOptions } from './jwks.js'
import { AssertionRefused, refusalFrom } from './refused.js'

/** The protected header's `typ` of every assertion; an access token says `JWT`. */
export const ASSERTION_TYP = 'portcullis-assertion+jwt'
/** Where the gateway puts the assertion unless `auth.assertion.header` says otherwise. */
export const ASSERTION_HEADER = 'x-portcullis-assertion'
/** What a gateway can sign with that an upstream can check with public keys (HS256 cannot be). */
export const ASSERTION_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const
export type AssertionAlgorithm = (typeof ASSERTION_ALGORITHMS)[number]

export interface AssertionVerifierOptions extends RemoteKeysOptions {
  /** The gateway's `/.well-known/jwks.json`; or give `jwks`. */
  jwksUrl?: string | URL
  /** The gateway's public key set itself, when it is not fetched. */
  jwks?: JSONWebKeySet
  /** This service's audience: the route's `identityAssertion.audience`, by default the upstream's origin. */
  audience: string | string[]
  /** The gateway's `auth.issuer`. Default "portcullis". */
  issuer?: string
  /** Leeway for `exp` and `iat`, in seconds. Default 5. */
  clockTolerance?: number
  /** Refuse assertions issued longer ago than this many seconds (a cap on `auth.assertion.ttl`). Default none. */
  maxTokenAge?: number
  /** A subset of ES256, EdDSA and RS256 (pin the gateway's `auth.keys.algorithm`). Default all three. */
  algorithms?: AssertionAlgorithm[]
  /** Milliseconds since the epoch; for tests. Default Date.now. */
  now?: () => number
}

/** What a verified assertion says. Custom claims of the user come along under their own names. */
export interface AssertionClaims extends JWTPayload {
  iss: string
  aud: string | string[]
  sub: string
  sid: string
  roles: string[]
  iat: number
  exp: number
}

/** Anything with Node's request headers: node:http's IncomingMessage, Express's and Fastify's requests. */
export interface RequestLike {
  headers: Record<string, string | string[] | undefined>
}

export interface AssertionVerifier {
  /** The claims of a valid assertion; otherwise throws `AssertionRefused`. */
  verify(token: string): Promise<AssertionClaims>
  /** Reads the assertion header of a request and verifies it: a missing header is refused (401). */
  verifyRequest(req: RequestLike, header?: string): Promise<AssertionClaims>
}

/** One verifier that keeps one JWKS (cached, refreshed) for every call: make it once per process. */
export function createAssertionVerifier(options: AssertionVerifierOptions): AssertionVerifier {
  const now = options.now ?? Date.now
  const algorithms = pinned(options.algorithms)
  if (!options.audience || (Array.isArray(options.audience) && options.audience.length === 0)) {
    throw new TypeError('audience is required: the audience the gateway gives this service')
  }
  const keys = keysFor(options, now)
  const tolerance = options.clockTolerance ?? 5
  // typ is compared exactly and before any key is looked up: an access token (typ JWT) signed
  // by the same key is never an assertion, and it costs no JWKS fetch (jose's own typ check
  // would also accept "application/portcullis-assertion+jwt" in any case).
  const getKey: JWTVerifyGetKey = (header, token) => {
    if (header.typ !== ASSERTION_TYP)
      throw new AssertionRefused('wrong_typ', `assertion refused: typ is ${JSON.stringify(header.typ)}, not ${ASSERTION_TYP}`)
    return keys(header, token)
  }

  const verify = async (token: string): Promise<AssertionClaims> => {
    const current = now()
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms,
        issuer: options.issuer ?? 'portcullis',
        audience: options.audience,
        requiredClaims: ['iss', 'aud', 'sub', 'sid', 'iat', 'exp'],
        clockTolerance: tolerance,
        ...(options.maxTokenAge !== undefined && { maxTokenAge: options.maxTokenAge }),
        currentDate: new Date(current),
      })
      return checked(payload, Math.floor(current / 1000) + tolerance)
    } catch (err) {
      throw refusalFrom(err)
    }
  }

  return {
    verify,
    verifyRequest(req, header = ASSERTION_HEADER) {
      const value = req.headers[header.toLowerCase()]
      if (value === undefined || value === '') {
        return Promise.reject(new AssertionRefused('missing', `no ${header} header: the request did not come through the gateway`))
      }
      if (typeof value !== 'string') return Promise.reject(new AssertionRefused('malformed', `more than one ${header} header`))
      return verify(value)
    },
  }
}

/**
 * Verifies one assertion. With `jwksUrl`, calls with the same URL and cache options share one
 * remote set in this process, so calling it per request does not fetch the JWKS per request;
 * `createAssertionVerifier` is the same thing without the lookup.
 */
export function verifyAssertion(token: string, options: AssertionVerifierOptions): Promise<AssertionClaims> {
  return shared(options).verify(token)
}

// A service library, not gateway code: the one module-level cache, so that the one-call form
// is safe in a request handler. Bounded; a verifier is rebuilt if its options change.
const verifiers = new Map<string, AssertionVerifier>()
const MAX_SHARED = 32

function shared(options: AssertionVerifierOptions): AssertionVerifier {
  // Functions cannot be told apart by value: a verifier given a clock or a fetch is not shared.
  if (options.jwksUrl === undefined || options.now !== undefined || options.fetch !== undefined) return createAssertionVerifier(options)
  const { jwksUrl, ...rest } = options
  const key = JSON.stringify([String(jwksUrl), rest])
  let verifier = verifiers.get(key)
  if (!verifier) {
    if (verifiers.size >= MAX_SHARED) verifiers.delete(verifiers.keys().next().value as string)
    verifier = createAssertionVerifier(options)
    verifiers.set(key, verifier)
  }
  return verifier
}

function pinned(algorithms: readonly string[] | undefined): string[] {
  const list = algorithms ?? ASSERTION_ALGORITHMS
  // RFC 8725 §3.1: the verifier, not the token, decides the algorithm; a public JWKS can
  // check only an asymmetric signature, and "none" or an HMAC keyed with a public key are the classic forgeries.
  const bad = list.filter((alg) => !(ASSERTION_ALGORITHMS as readonly string[]).includes(alg))
  if (list.length === 0 || bad.length > 0)
    throw new TypeError(`algorithms must be some of ${ASSERTION_ALGORITHMS.join(', ')}${bad.length ? `, not ${bad.join(', ')}` : ''}`)
  return [...list]
}

function keysFor(options: AssertionVerifierOptions, now: () => number): JWTVerifyGetKey {
  if ((options.jwksUrl === undefined) === (options.jwks === undefined)) throw new TypeError('give exactly one of jwksUrl and jwks')
  if (options.jwks) return localKeys(options.jwks)
  const url = new URL(options.jwksUrl!)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`jwksUrl must be an http(s) URL, not ${url.protocol}`)
  return remoteKeys(url, options, now)
}

/** Claims jose leaves to us: the types of sid and roles, and an `iat` that is not in the future. */
function checked(payload: JWTPayload, latestIat: number): AssertionClaims {
  const refuse = (claim: string, why: string) => new AssertionRefused('claim_invalid', `assertion refused: ${claim} ${why}`, claim)
  if (typeof payload.sub !== 'string' || payload.sub === '') throw refuse('sub', 'must be a non-empty string')
  if (typeof payload['sid'] !== 'string' || payload['sid'] === '') throw refuse('sid', 'must be a non-empty string')
  const roles = payload['roles']
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) throw refuse('roles', 'must be an array of strings')
  if ((payload.iat as number) > latestIat) throw refuse('iat', 'is in the future')
  return payload as AssertionClaims
}
