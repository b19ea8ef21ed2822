/**
 * CSRF defence for cookie-authenticated unsafe requests (SPEC.md "CSRF").
 *
 * SameSite cookies already stop most cross-site requests, but `lax` still lets a sibling
 * subdomain (same site, other origin) post with the user's cookies, and old browsers ignore
 * SameSite. So the origin of the request is checked too (OWASP CSRF cheat sheet, "Verifying
 * origin with standard headers"; Fetch Metadata `Sec-Fetch-Site`).
 */
import type { FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'
import { hintTrustProxy } from './trust-proxy-hint.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method)
}

/** Throws csrf_rejected unless the request comes from our own origin or an allowed one. */
export function checkCsrf(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): void {
  const headers = request.headers
  if (headers['sec-fetch-site'] === 'cross-site') throw new GatewayError('csrf_rejected')
  let origin = headers.origin
  if (origin === undefined) {
    const referer = headers.referer
    // Neither header: not a browser (browsers send Origin on every unsafe request), so there
    // is no ambient-credential attack to stop.
    if (referer === undefined) return
    origin = originOf(referer)
  }
  if (origin === undefined || origin === 'null') throw new GatewayError('csrf_rejected')
  const own = `${request.protocol}://${request.host}`
  if (origin.toLowerCase() === own.toLowerCase() || allowedOrigins.has(origin)) return
  hintTrustProxy(request, origin, allowedOrigins)
  throw new GatewayError('csrf_rejected')
}

function originOf(url: string): string | undefined {
  try {
    const u = new URL(url)
    return u.origin === 'null' ? undefined : u.origin
  } catch {
    return undefined
  }
}
