/**
 * Authentication of a request by access token: bearer header first, else the access cookie.
 * Used by every proxied route with `auth: required|optional` and by the session endpoints.
 */
import { fastifyCookie } from '@fastify/cookie'
import type { FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'
import type { RevocationCheck } from '../revocation/check.js'
import { checkCsrf, isUnsafeMethod } from './csrf.js'
import type { AccessClaims, Verifier } from './verify.js'

export interface Authenticator {
  readonly verify: Verifier
  readonly isRevoked: RevocationCheck
  readonly accessCookie: string
  readonly allowedOrigins: ReadonlySet<string>
  /** Told each outcome (`ok`, `anonymous` or the error code), for the auth outcomes metric. */
  readonly observe?: (outcome: string) => void
  /** True when isRevoked answers synchronously (not `strict` mode). */
  readonly syncRevocation?: boolean
}

export interface Authenticated {
  readonly claims: AccessClaims
  readonly viaCookie: boolean
}

/** The presented access token, or null when none was presented. Never read from the query string. */
export function presentedToken(request: FastifyRequest, accessCookie: string): { token: string; viaCookie: boolean } | null {
  const header = request.headers.authorization
  if (header !== undefined && header.length >= 6 && header.slice(0, 6).toLowerCase() === 'bearer') {
    // RFC 6750 §2.1: "Bearer" 1*SP b64token. Anything else after the scheme is no token.
    const token = header.slice(6).trim()
    if (header[6] !== ' ' || token === '') throw new GatewayError('invalid_token', 'malformed bearer credentials')
    return { token, viaCookie: false }
  }
  // The cookie plugin parses cookies on the session endpoints only; elsewhere they are parsed here.
  const cookieHeader = request.headers.cookie
  const cookie =
    request.cookies !== undefined
      ? request.cookies[accessCookie]
      : cookieHeader === undefined
        ? undefined
        : fastifyCookie.parse(cookieHeader)[accessCookie]
  return cookie ? { token: cookie, viaCookie: true } : null
}

/**
 * Verifies the presented token, checks revocation, roles and (for cookie-authenticated unsafe
 * requests) CSRF. Returns null only when no token was presented and `required` is false.
 */
export async function authenticate(
  request: FastifyRequest,
  auth: Authenticator,
  required: boolean,
  roles?: readonly string[],
): Promise<Authenticated | null> {
  try {
    const presented = presentedToken(request, auth.accessCookie)
    if (!presented) {
      if (required) throw new GatewayError('missing_token')
      auth.observe?.('anonymous')
      return null
    }
    const claims = await auth.verify(presented.token, request.ip)
    if (await auth.isRevoked(claims)) throw new GatewayError('token_revoked')
    if (roles && !roles.some((r) => claims.roles.includes(r))) throw new GatewayError('forbidden')
    // Only cookies ride along on cross-site requests by themselves; a bearer header had to be
    // set by script on our origin, so it needs no CSRF check.
    // A WebSocket handshake is a GET, but it opens a two-way channel with the user's cookie
    // from whatever page asked for it (cross-site WebSocket hijacking): check its Origin too.
    if (presented.viaCookie && (isUnsafeMethod(request.method) || request.headers.upgrade?.toLowerCase() === 'websocket')) {
      checkCsrf(request, auth.allowedOrigins)
    }
    auth.observe?.('ok')
    return { claims, viaCookie: presented.viaCookie }
  } catch (err) {
    auth.observe?.(err instanceof GatewayError ? err.code : 'error')
    throw err
  }
}

/**
 * The common case without a single promise: a token already verified, revocation answered
 * from memory, roles held, nothing to check for CSRF. Returns undefined whenever anything
 * else is needed (including every failure), and the caller then runs `authenticate`.
 */
export function authenticateCached(
  request: Pick<FastifyRequest, 'headers'>,
  auth: Authenticator,
  roles?: readonly string[],
): Authenticated | undefined {
  if (!auth.syncRevocation) return undefined
  const header = request.headers.authorization
  if (header === undefined || header.length < 8 || !header.startsWith('Bearer ')) return undefined
  const claims = auth.verify.cached(header.slice(7))
  if (!claims || auth.isRevoked(claims) !== false) return undefined
  if (roles && !roles.some((r) => claims.roles.includes(r))) return undefined
  auth.observe?.('ok')
  return { claims, viaCookie: false }
}
