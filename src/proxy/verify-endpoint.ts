/**
 * Forward-auth (SPEC.md `ANY {basePath}/verify` and `{basePath}/verify/*`): an edge proxy
 * (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz) asks whether
 * a request may pass and who sent it. The request it names (./original-request.ts) is routed as
 * a proxied one would be, normalised target and longest prefix, and judged by that route's
 * guard (./route-guard.ts): the same rate limit, token, failure budget, revocation, roles, CSRF
 * and maxAuthAge rules. 200 carries the identity for the edge to copy upstream; a refusal is
 * the problem answer the proxied request would have had. docs/forward-auth.md has the edges'
 * configurations.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { signInLocation } from '../auth/signin.js'
import type { RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import { longestMatch, type RouteTable } from './normalize.js'
import { originalRequest, type OriginalRequest } from './original-request.js'
import { routeGuard, type GuardContext, type Guarded, type RouteGuard } from './route-guard.js'

export interface VerifyOptions {
  routes: readonly RouteConfig[]
  /** The generation's prefixes, by which normalisation refuses path parameters that change the route. */
  routeTable: RouteTable
  /** What the routes' guards are made from: the proxy's context. */
  guards: GuardContext
  /** Receives the answer given before Fastify's routing (./verify-early.ts), when the app uses one. */
  early?: (parts: ForwardAuth) => void
}

/** One generation's forward-auth: which route a question is about, and that route's guard. */
export interface ForwardAuth {
  /** `{basePath}/verify`. */
  readonly own: string
  readonly routes: readonly RouteConfig[]
  readonly guards: readonly RouteGuard[]
  readonly routeTable: RouteTable
  readonly assertionHeader: string
  /**
   * The request asked about, and the index of the route it would take (-1: none), for a verify
   * request's headers, method and (normalised) target. Throws invalid_request when the request
   * is not named, or named in ways that disagree.
   */
  ask(headers: IncomingHttpHeaders, method: string, url: string): { original: OriginalRequest; route: number }
  /** The identity for the edge to send upstream, added to `into` by header name; nothing when anonymous. */
  identity(request: Guarded, into: Record<string, string>): Record<string, string>
}

/** Registered with `{ prefix: auth.basePath }`. */
export async function verifyEndpoint(app: FastifyInstance, opts: VerifyOptions): Promise<void> {
  const forward = forwardAuth(opts, `${app.prefix.replace(/\/+$/, '')}/verify`)
  const { guards, routes } = forward
  opts.early?.(forward)

  /** 200, with the identity of an authenticated request for the edge to send upstream. */
  const allow = (request: FastifyRequest, reply: FastifyReply): void => {
    if (request.auth !== null) reply.headers(forward.identity(request, {}))
    reply.send()
  }

  /** Everything but a token already verified: rate limit, then the whole check as the original request. */
  const judge = async (request: FastifyRequest, reply: FastifyReply, original: OriginalRequest, guard: RouteGuard): Promise<void> => {
    if (guard.limiter) await guard.limiter.consume(request.ip)
    // The verify request's headers (cookies, Origin, Accept, Sec-Fetch-*) and address, with the
    // method and target of the request the edge asks about: CSRF is judged on that method, the
    // sign-in page's return path is that target.
    const as = Object.create(request, { method: { value: original.method }, url: { value: original.target } }) as FastifyRequest
    try {
      await guard.check(request, as)
    } catch (err) {
      // An edge cannot pass a redirect through auth_request (nginx turns any status but 2xx, 401
      // and 403 into a 500): the 401 stays, and Location says where a browser should be sent.
      const location = guard.signInPage === null ? null : signInLocation(as, err, guard.signInPage)
      if (location !== null) {
        reply.header('location', location)
        reply.header('vary', 'Accept, Sec-Fetch-Mode, Cookie')
      }
      throw err
    }
    allow(request, reply)
  }

  // Callback style with a synchronous path for a token already verified, as on proxied routes:
  // an edge asks once per request it serves.
  const verify = (request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined => {
    // The answer depends on the credentials: no cache between edge and gateway may keep it.
    reply.header('cache-control', 'no-store')
    request.routeName = 'auth'
    const { original, route: i } = forward.ask(request.headers, request.method, request.url)
    if (i === -1) throw new GatewayError('not_found', 'no route matches the request asked about')
    const guard = guards[i]!
    request.routeName = routes[i]!.name
    if (!guard.limiter) {
      const ready = guard.cached(request)
      if (ready === null) {
        allow(request, reply)
        return
      }
      if (ready !== undefined) return ready.then(() => allow(request, reply))
    }
    return judge(request, reply, original, guard)
  }

  // An edge may send the original body along (Traefik's forwardBody, Envoy's with_request_body):
  // the answer never depends on it, so it is neither parsed nor limited, only left unread.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  app.all('/verify', verify)
  app.all('/verify/*', verify)
}

function forwardAuth(opts: VerifyOptions, own: string): ForwardAuth {
  const { routes, routeTable } = opts
  const prefixes = routes.map((r) => r.prefix.replace(/\/+$/, ''))
  const assertionHeader = opts.guards.auth.assertion.header.toLowerCase()
  return {
    own,
    routes,
    guards: routes.map((r) => routeGuard(r, opts.guards)),
    routeTable,
    assertionHeader,
    ask(headers, method, url) {
      const rest = url.length > own.length && url.charCodeAt(own.length) === 0x2f /* / */ ? url.slice(own.length) : ''
      const original = originalRequest(headers, method, rest, routeTable)
      return { original, route: routeIndex(prefixes, original.target) }
    },
    identity(request, into) {
      const auth = request.auth
      if (auth === null) return into
      const claims = auth.claims
      into['x-user-id'] = claims.sub
      into['x-user-roles'] = claims.roles.join(',')
      into['x-session-id'] = claims.sid
      const extra = request.identityHeaders
      if (extra !== null) for (const [name, value] of extra) into[name] = value
      if (request.assertion !== null) into[assertionHeader] = request.assertion
      return into
    },
  }
}

/** The route a proxied request for `target` would take: longest prefix of its decoded path. */
function routeIndex(prefixes: readonly string[], target: string): number {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  // normalizeTarget has refused escapes that do not decode.
  return longestMatch(prefixes, path.includes('%') ? decodeURIComponent(path) : path)
}
