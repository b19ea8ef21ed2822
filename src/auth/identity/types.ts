/** The contract every identity source (static users, an HTTP user service) honours. */

/** Who signed in: becomes `sub`, `roles` and the extra claims of the access token. */
export interface Identity {
  subject: string
  roles: string[]
  claims: Record<string, unknown>
}

export interface IdentitySource {
  /**
   * Checks a username and password. Resolves `null` for invalid credentials (wrong password
   * and unknown user alike); rejects with `GatewayError('identity_unavailable')` when a
   * backing service fails, which the client sees as 503, never as 401.
   */
  authenticate(username: string, password: string): Promise<Identity | null>
}

/**
 * Claim names the gateway sets itself on every access token (SPEC.md "Access tokens").
 * A source's `claims` must not override them: a user service answering `"sub": "admin"`
 * or `"exp": 9e9` would otherwise mint whatever token it likes. `__proto__` is dropped
 * too, so a claims object never carries a key that changes an object's prototype when
 * copied with plain assignment downstream.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'aud',
  'sub',
  'sid',
  'iat',
  'exp',
  'nbf',
  'jti',
  'roles',
  'auth_time',
  '__proto__',
])

/**
 * The claims without reserved names. We drop rather than refuse: many user services echo
 * `sub` or `roles` inside their claims, and failing every sign-in over a field the gateway
 * overwrites anyway would turn a harmless habit into an outage.
 */
export function dropReservedClaims(claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !RESERVED_CLAIMS.has(name)))
}

// Subjects and roles end up in the `x-user-id` / `x-user-roles` headers (roles joined by
// ","), so a comma would forge an extra role upstream and a control character would
// corrupt the header. Bound the length as the config schema does for static subjects.
// Subjects and roles travel upstream as HTTP header values (x-user-id, x-user-roles): Node
// refuses anything outside Latin-1 there and re-encodes Latin-1 ambiguously, so only
// printable ASCII is accepted (a non-ASCII user id needs an ASCII subject, e.g. a UUID).
const UNSAFE = /[^\x20-\x7e]/

/** A subject the gateway can put in a header and a session key. */
export function isValidSubject(subject: unknown): subject is string {
  return typeof subject === 'string' && subject.length > 0 && subject.length <= 256 && !UNSAFE.test(subject)
}

/** A role name that survives being joined by "," into `x-user-roles`. */
export function isValidRole(role: unknown): role is string {
  return typeof role === 'string' && role.length > 0 && role.length <= 256 && !role.includes(',') && role.trim() === role && !UNSAFE.test(role)
}
