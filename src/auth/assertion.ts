/**
 * Identity assertions (SPEC.md "Identity assertion"): a JWS the gateway signs for one
 * upstream, so that a service can verify who is calling with the public JWKS instead of
 * trusting a header, and refuse a request that did not come through the gateway.
 *
 * Signing costs about as much as verifying (tens of µs for ES256), so an assertion is signed
 * once per access token and route and reused while at least half its lifetime is left. The
 * cache key is the verified claims object (the verifier returns the same object for a token it
 * has seen), so the cache is as bounded as the verifier's and an entry dies with its token.
 */
import { SignJWT } from 'jose'
import type { Keyring } from './keys.js'
import { ASSERTION_TYP, type AccessClaims } from './verify.js'

/** Registered claims the assertion sets itself; every other claim of the token is the user's. */
const OWN = new Set(['iss', 'aud', 'sub', 'sid', 'iat', 'exp', 'nbf', 'jti', 'roles', 'auth_time'])

export interface AssertionOptions {
  keyring: Keyring
  issuer: string
  /** The route's audience. */
  audience: string
  /** auth.assertion.ttl, ms. */
  ttl: number
  now: () => number
}

export interface AssertionSigner {
  /** A cached assertion for these claims with at least half its lifetime left, else undefined. */
  cached(claims: AccessClaims): string | undefined
  sign(claims: AccessClaims): Promise<string>
}

interface Signed {
  token: string
  exp: number
  kid: string
}

export function createAssertionSigner({ keyring, issuer, audience, ttl, now }: AssertionOptions): AssertionSigner {
  const ttlSec = Math.max(1, Math.floor(ttl / 1000))
  const signed = new WeakMap<AccessClaims, Signed>()
  // Half its lifetime left, or as long as its access token's (signing again would not extend
  // it); and by the signing key still in use, so that after an emergency rotation assertions by
  // the retired key stop at once.
  const usable = (entry: Signed | undefined, claims: AccessClaims, nowSec: number): entry is Signed =>
    entry !== undefined && entry.exp > nowSec && entry.kid === keyring.signer.kid && ((entry.exp - nowSec) * 2 >= ttlSec || entry.exp >= claims.exp)
  return {
    cached(claims) {
      const entry = signed.get(claims)
      return usable(entry, claims, Math.floor(now() / 1000)) ? entry.token : undefined
    },
    async sign(claims) {
      const iat = Math.floor(now() / 1000)
      const entry = signed.get(claims)
      if (usable(entry, claims, iat)) return entry.token
      const user: Record<string, unknown> = {}
      for (const name in claims) if (!OWN.has(name)) user[name] = claims[name]
      const { kid, key } = keyring.signer
      // Never past the access token: an assertion must not outlive the right it attests.
      const exp = Math.min(iat + ttlSec, claims.exp)
      const token = await new SignJWT({ ...user, sid: claims.sid, roles: claims.roles })
        .setProtectedHeader({ alg: keyring.algorithm, kid, typ: ASSERTION_TYP })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(claims.sub)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key)
      signed.set(claims, { token, exp, kid })
      return token
    },
  }
}
