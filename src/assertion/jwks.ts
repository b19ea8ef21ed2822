/**
 * The gateway's public keys as an upstream sees them: jose's remote JWK Set (cached, fetched
 * again for an unknown `kid` at most once per cooldown, with a timeout), which also honours the
 * `Cache-Control: max-age` that the gateway's `/.well-known/jwks.json` answers with.
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import { AssertionRefused } from './refused.js'

export interface RemoteKeysOptions {
  /** Longest the set is kept whatever max-age says, in ms (jose's cacheMaxAge). Default 10 minutes. */
  cacheMaxAge?: number
  /** Least time between two fetches caused by unknown `kid`s, in ms (jose's cooldownDuration). Default 5 s. */
  cooldownDuration?: number
  /** A fetch of the JWKS fails after this many ms. Default 5 s. */
  timeoutDuration?: number
  /** Replaces the global fetch (for a proxy or a custom CA, say). */
  fetch?: typeof fetch
}

/** jose's key lookup over a remote set; `now` is the clock (ms) that max-age is measured with. */
export function remoteKeys(url: URL, options: RemoteKeysOptions, now: () => number): JWTVerifyGetKey {
  const fetchImpl = options.fetch ?? fetch
  // When the set was last asked for (a failed attempt counts: a gateway that is down is not
  // asked again on every request), and how long its answer said it could be kept.
  let askedAt = Number.NEGATIVE_INFINITY
  let maxAge: number | undefined
  const remote = createRemoteJWKSet(url, {
    ...(options.cacheMaxAge !== undefined && { cacheMaxAge: options.cacheMaxAge }),
    // 5 s, not jose's 30: after `portcullis keys rotate --now` the new kid is unknown to every
    // upstream at once, and each of them fetching once per 5 s costs the gateway nothing.
    cooldownDuration: options.cooldownDuration ?? 5_000,
    ...(options.timeoutDuration !== undefined && { timeoutDuration: options.timeoutDuration }),
    [customFetch]: async (input, init) => {
      askedAt = now()
      const response = await fetchImpl(input, init)
      if (response.status === 200) maxAge = maxAgeOf(response.headers.get('cache-control'))
      return response
    },
  })
  return async (header, token) => {
    if (maxAge !== undefined && now() >= askedAt + maxAge && !remote.reloading) {
      // Stale by the gateway's own word: fetch again. If that fails the keys in hand still
      // verify (they are public keys, and jose's cacheMaxAge bounds how long that goes on).
      await remote.reload().catch(() => {})
    }
    try {
      return await remote(header, token)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err
      // Refused connection, timeout, not 200, not a JWK Set: the gateway's side, not the caller's.
      throw new AssertionRefused('jwks_unavailable', `the gateway's JWKS at ${url.href} could not be had: ${(err as Error).message}`, undefined, {
        cause: err,
      })
    }
  }
}

/** A set given whole (read from a file, say): never fetched. */
export function localKeys(jwks: JSONWebKeySet): JWTVerifyGetKey {
  return createLocalJWKSet(jwks)
}

/** `max-age` of a Cache-Control value in ms, or undefined (then jose's cacheMaxAge alone applies). */
export function maxAgeOf(cacheControl: string | null): number | undefined {
  const match = cacheControl?.match(/(?:^|[,\s])max-age\s*=\s*"?(\d+)"?/i)
  return match ? Number(match[1]) * 1000 : undefined
}
