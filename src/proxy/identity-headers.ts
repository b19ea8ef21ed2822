/**
 * Identity headers an operator configures (auth.identityHeaders, routes[].identityHeaders):
 * claims of the access token sent upstream under names a service already reads, e.g.
 * `x-user-email: email` or `x-remote-user: sub`. Computed once per token and route (the
 * verified claims object is the cache key: the verifier hands back the same object for a token
 * it has seen), so a request pays a WeakMap lookup.
 */
import type { AccessClaims } from '../auth/verify.js'
import { claimAt } from '../auth/oidc/claims.js'
import { GatewayError } from '../errors.js'

/** header name (lower case) → claim name or dot path. */
export type HeaderMapping = ReadonlyArray<readonly [header: string, claim: string]>

/** Visible ASCII and spaces, not at either end: survives every proxy and framework unchanged. */
const SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

/** The mapping of one route: the global one, with the route's own over it. */
export function routeMapping(global: Readonly<Record<string, string>>, route: Readonly<Record<string, string>> | undefined): HeaderMapping {
  const merged = new Map<string, string>()
  for (const [header, claim] of Object.entries(global)) merged.set(header.toLowerCase(), claim)
  for (const [header, claim] of Object.entries(route ?? {})) merged.set(header.toLowerCase(), claim)
  return [...merged]
}

/**
 * A claim's value as a header value, or an error naming what is wrong: strings, numbers and
 * booleans as text, a list of them joined by "," (so no member may hold one). Anything else,
 * or text a header cannot carry unchanged, refuses the token rather than being forwarded
 * altered (a control character would split or end the header; a stripped one would change it).
 */
function headerValue(value: unknown): string | null {
  if (typeof value === 'string') return SAFE.test(value) ? value : null
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'boolean') return String(value)
  if (Array.isArray(value) && value.length > 0) {
    const parts = value.map(headerValue)
    return parts.every((p) => p !== null && !p.includes(',')) ? parts.join(',') : null
  }
  return null
}

export type HeaderValues = ReadonlyArray<readonly [header: string, value: string]>

/** Values per claims object, for one route's mapping. */
export function headerValuesFor(mapping: HeaderMapping): (claims: AccessClaims) => HeaderValues {
  const known = new WeakMap<AccessClaims, HeaderValues>()
  return (claims) => {
    let values = known.get(claims)
    if (values === undefined) {
      const out: Array<readonly [string, string]> = []
      for (const [header, claim] of mapping) {
        const raw = claimAt(claims as Record<string, unknown>, claim)
        if (raw === undefined || raw === null) continue
        const value = headerValue(raw)
        if (value === null) throw new GatewayError('invalid_token', `the token's "${claim}" cannot be sent as the header ${header}`)
        out.push([header, value])
      }
      values = out
      known.set(claims, values)
    }
    return values
  }
}
