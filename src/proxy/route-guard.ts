/**
 * A route's authentication step: its authenticator (routes[].revocation), rate limit, roles,
 * CSRF, maxAuthAge, and what an authenticated request carries beyond x-user-* (configured
 * identity headers, the identity assertion). The proxy (./routes.ts) and forward-auth
 * (./verify-endpoint.ts) both run it, so an edge asking about a request gets the answer the
 * gateway would have given that request itself.
 */
import type { FastifyRequest } from 'fastify'
import { authenticate, authenticateCached, type Authenticator } from '../auth/authenticate.js'
import { createAssertionSigner } from '../auth/assertion.js'
import type { Keyring } from '../auth/keys.js'
import type { AccessClaims } from '../auth/verify.js'
import type { AuthConfig, RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import type { Limiters, RateLimiter } from '../ops/rate-limit.js'
import { headerValuesFor, routeMapping } from './identity-headers.js'

/** What a route's guard is made from: one config generation's shared parts. */
export interface GuardContext {
  authenticator: Authenticator
  /** The authenticator of a route whose `revocation` overrides revocation.mode. */
  authenticatorFor: (mode: 'cached' | 'strict' | 'off') => Authenticator
  limiters: Limiters
  /** auth.basePath when auth.signInPage is on: browser navigations needing a sign-in go there. */
  signInPage?: string | null
  /** Signs identity assertions; with auth.assertion and auth.identityHeaders. */
  keyring: Keyring
  auth: Pick<AuthConfig, 'issuer' | 'assertion' | 'identityHeaders'>
  now: () => number
}

/**
 * What a guard reads and sets on a request: a Fastify request, or (forward-auth answered before
 * routing: ./verify-early.ts) a plain object holding the incoming request's headers.
 */
export type Guarded = Pick<FastifyRequest, 'headers' | 'auth' | 'identityHeaders' | 'assertion'>

export interface RouteGuard {
  /** routes[].rateLimit, counted per client address before any signature check; null without one. */
  readonly limiter: RateLimiter | null
  /** auth.basePath on a required route when the sign-in page is on, else null. */
  readonly signInPage: string | null
  /**
   * The common case without a promise: a public route, or a token already verified whose
   * route needs nothing asynchronous. Returns null when the request is let through (with
   * `request.auth` and its identity set), a promise when only its assertion remains to be
   * signed, and undefined when `check` must run. Throws when a claim cannot be sent as a header.
   */
  cached(request: Guarded): Promise<void> | null | undefined
  /**
   * The whole check (the rate limit aside): token, revocation, roles, CSRF, maxAuthAge and the
   * identity to send. `as` is the request judged, when it is not `request` itself: forward-auth
   * judges the method and target of the request the edge asks about; what is learnt is set on
   * `request`.
   */
  check(request: FastifyRequest, as?: FastifyRequest): Promise<void>
}

export function routeGuard(route: RouteConfig, ctx: GuardContext): RouteGuard {
  const authenticator = route.revocation === undefined ? ctx.authenticator : ctx.authenticatorFor(route.revocation)
  const fresh = route.maxAuthAge === undefined ? null : freshness(route.maxAuthAge, ctx.now)
  const required = route.auth === 'required'
  const open = route.auth === 'none'
  const mapping = routeMapping(ctx.auth.identityHeaders, route.identityHeaders)
  const headersOf = mapping.length > 0 ? headerValuesFor(mapping) : null
  const assertion =
    route.identityAssertion === false
      ? null
      : createAssertionSigner({
          keyring: ctx.keyring,
          issuer: ctx.auth.issuer,
          audience: route.identityAssertion === true ? new URL(route.upstream).origin : route.identityAssertion.audience,
          ttl: ctx.auth.assertion.ttl,
          now: ctx.now,
        })
  // What an authenticated request carries upstream beyond x-user-*: computed here, before the
  // body is read, so that a claim a header cannot carry refuses the request (401) up front.
  const identify = async (request: Guarded, claims: AccessClaims) => {
    if (headersOf) request.identityHeaders = headersOf(claims)
    if (assertion) request.assertion = await assertion.sign(claims)
  }
  return {
    limiter: ctx.limiters.route(route),
    signInPage: required ? (ctx.signInPage ?? null) : null,
    cached(request) {
      if (open) return null
      const known = authenticateCached(request, authenticator, route.roles)
      // A stale sign-in on a route with maxAuthAge takes the async path, where its refusal can
      // still become a redirect to the sign-in page; a recent one stays on this one.
      if (!known || (fresh && !fresh.recent(known.claims))) return undefined
      request.auth = known
      if (!headersOf && !assertion) return null
      const signed = assertion?.cached(known.claims)
      if (assertion !== null && signed === undefined) return identify(request, known.claims)
      if (headersOf) request.identityHeaders = headersOf(known.claims)
      request.assertion = signed ?? null
      return null
    },
    async check(request, as = request) {
      if (open) return
      request.auth = await authenticate(as, authenticator, required, route.roles)
      if (request.auth && fresh) fresh.require(request.auth.claims)
      if (request.auth && (headersOf || assertion)) await identify(request, request.auth.claims)
    },
  }
}

/**
 * routes[].maxAuthAge: the session's last sign-in (`auth_time`) must be at most `maxAge` ms
 * old. A refresh keeps auth_time, so only signing in again helps: 401
 * reauthentication_required with RFC 9470's challenge, naming the age wanted in seconds.
 */
function freshness(maxAge: number, now: () => number) {
  const seconds = Math.ceil(maxAge / 1000)
  const challenge = `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=${seconds}`
  const recent = (claims: AccessClaims): boolean => {
    const authTime = claims['auth_time']
    // A token from before access tokens carried auth_time cannot show a recent sign-in.
    return typeof authTime === 'number' && now() - authTime * 1000 <= maxAge
  }
  return {
    recent,
    require(claims: AccessClaims): void {
      if (!recent(claims)) throw new GatewayError('reauthentication_required', undefined, { headers: { 'www-authenticate': challenge } })
    },
  }
}
