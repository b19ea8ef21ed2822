/**
 * Forward-auth: the request an edge proxy asks about. Each edge names it its own way: Traefik
 * and Caddy send X-Forwarded-Method and X-Forwarded-Uri, an nginx config sets whichever pair it
 * is written with (X-Original-Method / X-Original-URI by custom), and Envoy's ext_authz sends
 * the original method itself, with the original path after its `path_prefix`.
 *
 * A name given twice must be given the same way. An edge sets one pair and passes the client's
 * other headers on, so a client could add the other pair: were the first one found simply
 * believed, that client would choose the route judged (a public one) or the method (a GET, that
 * needs no CSRF check) while the edge forwards something else. A disagreement is refused instead.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { GatewayError } from '../errors.js'
import { normalizeTarget, type RouteTable } from './normalize.js'

export interface OriginalRequest {
  readonly method: string
  /** Its origin-form target, normalised as a proxied request's would be. */
  readonly target: string
}

/** RFC 9110 §9.1: a method is a token (§5.6.2). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * @param ownMethod the verify request's own method (Envoy forwards the original one)
 * @param rest the verify request's path after `/verify` with its query, '' when there is none
 * @throws invalid_request for a missing, malformed or contradicted name
 */
export function originalRequest(headers: IncomingHttpHeaders, ownMethod: string, rest: string, routes: RouteTable): OriginalRequest {
  const method = agreed(headers['x-forwarded-method'], headers['x-original-method'], 'method') ?? ownMethod
  if (!TOKEN.test(method)) throw new GatewayError('invalid_request', 'the forwarded method is not an HTTP method')
  const uri = agreed(headers['x-forwarded-uri'], headers['x-original-uri'], 'URI')
  if (uri === undefined && rest === '') {
    throw new GatewayError('invalid_request', 'forward-auth needs X-Forwarded-Uri, X-Original-URI or a path after /verify')
  }
  // The path after /verify is normalised again: the verify request's own normalisation judged
  // its path parameters against the gateway's own paths, not against the routes.
  const target = normalizeTarget(uri ?? rest, routes)
  if (target === null) throw new GatewayError('invalid_request', 'invalid request target')
  if (uri !== undefined && rest !== '' && normalizeTarget(rest, routes) !== target) {
    throw new GatewayError('invalid_request', 'the forwarded URI and the path after /verify disagree')
  }
  return { method, target }
}

function agreed(forwarded: string | string[] | undefined, original: string | string[] | undefined, what: string): string | undefined {
  // Node joins repeated headers of these names into one string; an array is no single name.
  if (Array.isArray(forwarded) || Array.isArray(original)) throw new GatewayError('invalid_request', `the forwarded ${what} is repeated`)
  if (forwarded !== undefined && original !== undefined && forwarded !== original) {
    throw new GatewayError(
      'invalid_request',
      `X-Forwarded-${what === 'URI' ? 'Uri' : 'Method'} and X-Original-${what === 'URI' ? 'URI' : 'Method'} disagree`,
    )
  }
  return forwarded ?? original
}
