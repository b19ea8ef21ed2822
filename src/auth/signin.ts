/**
 * Sign-in for browser navigations (SPEC.md `auth.signInPage`): which requests are sent to the
 * sign-in page instead of a 401, where they go, and where they may come back to.
 *
 * The return-path rules are shared with the page's script (client/return-path.js).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'

/**
 * The return-path check lives once, in a module of its own that the sign-in page's script
 * imports too (plain ESM, no DOM): the server runs it to protect the HTML it renders, the page
 * runs the very same code to protect the navigation it makes. Its rules are documented there.
 */
import { MAX_RETURN_PATH, safeReturnPath } from '../../client/return-path.js'
export { MAX_RETURN_PATH, safeReturnPath }

/** The 401 codes that mean "not signed in (any more)": a sign-in can fix them, unlike a 403. */
const SIGN_IN_CODES = new Set(['missing_token', 'invalid_token', 'token_expired', 'token_revoked', 'reauthentication_required'])

/**
 * A top-level browser navigation: GET or HEAD, asking for HTML, and, when the browser says so
 * (Fetch Metadata), in `navigate` mode. `fetch()` calls often send `Accept: *\/*` or even
 * `text/html`; their `Sec-Fetch-Mode` is `cors`/`same-origin`, so they keep their 401 JSON.
 * A request carrying `Authorization` was made by a program, never by an address bar.
 */
export function isBrowserNavigation(request: FastifyRequest): boolean {
  const { method, headers } = request
  if (method !== 'GET' && method !== 'HEAD') return false
  if (headers.authorization !== undefined) return false
  const mode = headers['sec-fetch-mode']
  if (mode !== undefined && mode !== 'navigate') return false
  const accept = headers.accept
  return typeof accept === 'string' && accept.toLowerCase().includes('text/html')
}

/** `{basePath}/signin`, without a doubled `/` when basePath is `/`. */
export function signInPath(basePath: string): string {
  return `${basePath.replace(/\/+$/, '')}/signin`
}

/**
 * Where a browser navigation goes to sign in when `error` refused it and signing in can fix
 * that (`{basePath}/signin`, with the page asked for and a route's maxAuthAge), or null when
 * the error must be rendered as usual. Forward-auth sends it to the edge with its 401.
 */
export function signInLocation(request: FastifyRequest, error: unknown, basePath: string): string | null {
  if (!(error instanceof GatewayError) || !SIGN_IN_CODES.has(error.code) || !isBrowserNavigation(request)) return null
  const back = safeReturnPath(request.url)
  const query = new URLSearchParams()
  if (back !== '/') query.set('return', back)
  // A route's maxAuthAge: the page must not just refresh the session (that keeps auth_time)
  // but have the user sign in again, and tell a provider to ask too.
  const maxAge = error.code === 'reauthentication_required' ? /max_age=(\d+)/.exec(error.headers?.['www-authenticate'] ?? '')?.[1] : undefined
  if (maxAge !== undefined) query.set('max_age', maxAge)
  return query.size === 0 ? signInPath(basePath) : `${signInPath(basePath)}?${query}`
}

/**
 * For the proxy's auth hook: answers `error` with a redirect to the sign-in page when the
 * request is a browser navigation that signing in can fix; returns null to let the error be
 * rendered as usual.
 */
export function redirectToSignIn(request: FastifyRequest, reply: FastifyReply, error: unknown, basePath: string): FastifyReply | null {
  const location = signInLocation(request, error, basePath)
  if (location === null) return null
  // The answer depends on the cookies: no cache may keep this redirect for after sign-in.
  reply.header('cache-control', 'no-store')
  reply.header('vary', 'Accept, Sec-Fetch-Mode, Cookie')
  return reply.redirect(location, 302)
}
