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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { signInLocation } from '../auth/signin.js'
import type { RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import { longestMatch, type RouteTable } from './normalize.js'
import { originalRequest, type OriginalRequest } from './original-request.js'
import { routeGuard, type GuardContext, type RouteGuard } from './route-guard.js'

export interface VerifyOptions {
  routes: readonly RouteConfig[]
  /** The generation's prefixes, by which normalisation refuses path parameters that change the route. */
  routeTable: RouteTable
  /** What the routes' guards are made from: the proxy's context. */
  guards: GuardContext
}

/** Registered with `{ prefix: auth.basePath }`. */
export async function verifyEndpoint(app: FastifyInstance, opts: VerifyOptions): Promise<void> {
  const { routes, routeTable } = opts
  const prefixes = routes.map((r) => r.prefix.replace(/\/+$/, ''))
  const guards = routes.map((r) => routeGuard(r, opts.guards))
  const assertionHeader = opts.guards.auth.assertion.header.toLowerCase()
  const own = `${app.prefix.replace(/\/+$/, '')}/verify`

  /** 200, with the identity of an authenticated request for the edge to send upstream. */
  const allow = (request: FastifyRequest, reply: FastifyReply): void => {
    const auth = request.auth
    if (auth !== null) {
      const claims = auth.claims
      reply.header('x-user-id', claims.sub)
      reply.header('x-user-roles', claims.roles.join(','))
      reply.header('x-session-id', claims.sid)
      const extra = request.identityHeaders
      if (extra !== null) for (const [name, value] of extra) reply.header(name, value)
      if (request.assertion !== null) reply.header(assertionHeader, request.assertion)
    }
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
    const url = request.url
    const rest = url.length > own.length && url.charCodeAt(own.length) === 0x2f /* / */ ? url.slice(own.length) : ''
    const original = originalRequest(request.headers, request.method, rest, routeTable)
    const i = routeIndex(prefixes, original.target)
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

/** The route a proxied request for `target` would take: longest prefix of its decoded path. */
function routeIndex(prefixes: readonly string[], target: string): number {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  // normalizeTarget has refused escapes that do not decode.
  return longestMatch(prefixes, path.includes('%') ? decodeURIComponent(path) : path)
}
