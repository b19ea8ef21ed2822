/**
 * From a provider's claims (the id_token's, with userinfo's where asked) to a Portcullis
 * identity: subject, roles and the claims copied into access tokens.
 */
import type { OidcConfig } from '../../config/schema.js'
import { dropReservedClaims, type Identity, isValidRole, isValidSubject } from '../identity/types.js'

export type Claims = Record<string, unknown>

/**
 * A claim by its name, or else by a dot path into nested objects (`realm_access.roles`).
 * The whole name is tried first: Auth0 and others name custom claims with URLs
 * (`https://example.com/roles`), whose dots are not a path.
 */
export function claimAt(claims: Claims, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path]
  let at: unknown = claims
  for (const step of path.split('.')) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, step)) return undefined
    at = (at as Claims)[step]
  }
  return at
}

/** The claim names this source reads: userinfo is asked only when one is missing from the id_token. */
export function wantedClaims(source: Pick<OidcConfig, 'subjectClaim' | 'rolesClaim' | 'claims' | 'requireClaims'>): string[] {
  return [source.subjectClaim, ...(source.rolesClaim === null ? [] : [source.rolesClaim]), ...source.claims, ...Object.keys(source.requireClaims)]
}

/**
 * The first of `requireClaims` the claims do not satisfy, or null when all are. A required
 * value matches a claim equal to it or, for a list claim, one of its members; a list of
 * required values is satisfied by any one of them. A missing claim never matches.
 */
export function unmetRequirement(required: OidcConfig['requireClaims'], claims: Claims): string | null {
  for (const [name, wanted] of Object.entries(required)) {
    const value = claimAt(claims, name)
    const held = Array.isArray(value) ? value : [value]
    const accepted = Array.isArray(wanted) ? wanted : [wanted]
    if (!held.some((v) => v !== undefined && accepted.includes(v as never))) return name
  }
  return null
}

export interface Mapped {
  identity: Identity
  /** Roles the provider sent that cannot travel in x-user-roles (a comma, a control character): dropped. */
  droppedRoles: number
}

/**
 * Null when the subject claim is missing or unusable: a sign-in must not go ahead under an
 * empty, huge or header-breaking identity.
 */
export function mapClaims(source: Pick<OidcConfig, 'subjectClaim' | 'rolesClaim' | 'defaultRoles' | 'claims'>, claims: Claims): Mapped | null {
  const raw = claimAt(claims, source.subjectClaim)
  // Numeric ids (some providers' user ids) are kept as their decimal text.
  const subject = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw
  if (!isValidSubject(subject)) return null
  const given = source.rolesClaim === null ? [] : claimAt(claims, source.rolesClaim)
  const list = Array.isArray(given) ? given : typeof given === 'string' ? [given] : []
  const roles = new Set(source.defaultRoles)
  let droppedRoles = 0
  for (const role of list) {
    if (isValidRole(role)) roles.add(role)
    else droppedRoles++
  }
  const copied: Claims = {}
  for (const name of source.claims) {
    const value = claimAt(claims, name)
    if (value !== undefined) copied[name] = value
  }
  return { identity: { subject, roles: [...roles], claims: dropReservedClaims(copied) }, droppedRoles }
}
