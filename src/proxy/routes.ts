/**
 * One @fastify/http-proxy registration per configured route. Fastify's router does the
 * longest-prefix match (a static `/api/orders/*` wins over `/api/*`) on the already
 * normalised path; each route's scope authenticates in `onRequest`, before a byte of the
 * body is read.
 */
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Authenticator } from '../auth/authenticate.js'
import { redirectToSignIn } from '../auth/signin.js'
import type { Keyring } from '../auth/keys.js'
import type { AuthConfig, RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import type { GatewayMetrics } from '../ops/metrics.js'
import type { Limiters } from '../ops/rate-limit.js'
import { bodyLimitHook } from './body-limit.js'
import { UpstreamPool } from './forward.js'
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js'
import type { HeaderValues } from './identity-headers.js'
import type { LiveSockets } from './live-sockets.js'
import { routeGuard } from './route-guard.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request went upstream (upstream latency metric). */
    upstreamStartedAt: number
    /** The route's configured identity headers for this caller (routes[].identityHeaders). */
    identityHeaders: HeaderValues | null
    /** The identity assertion for this caller and route (routes[].identityAssertion). */
    assertion: string | null
  }
}

export interface ProxyContext {
  authenticator: Authenticator
  trustProxy: boolean
  /** server.bodyLimit, enforced on streamed bodies too. */
  bodyLimit: number
  metrics: GatewayMetrics
  limiters: Limiters
  /** auth.basePath when auth.signInPage is on: browser navigations needing a sign-in go there. */
  signInPage?: string | null
  /** Counts and logs an answer cut short (Fastify runs no onResponse hook for one). */
  cutShort: (request: FastifyRequest, reply: FastifyReply, by: 'client' | 'upstream') => void
  /** The authenticator of a route whose `revocation` overrides revocation.mode. */
  authenticatorFor: (mode: 'cached' | 'strict' | 'off') => Authenticator
  /** Signs identity assertions; with auth.assertion and auth.identityHeaders. */
  keyring: Keyring
  auth: Pick<AuthConfig, 'issuer' | 'assertion' | 'identityHeaders'>
  now: () => number
  /** Open WebSockets, closed when their session ends. */
  liveSockets: LiveSockets
}

export async function proxyRoutes(app: FastifyInstance, routes: readonly RouteConfig[], ctx: ProxyContext): Promise<void> {
  app.decorateRequest('upstreamStartedAt', 0)
  app.decorateRequest('identityHeaders', null)
  app.decorateRequest('assertion', null)
  for (const route of routes) {
    // biome-ignore lint/nursery/noMisusedPromises: Fastify awaits an async plugin (FastifyPluginAsync); the rule reads only the callback overload
    await app.register(async (scope) => proxyRoute(scope, route, ctx))
  }
}

async function proxyRoute(scope: FastifyInstance, route: RouteConfig, ctx: ProxyContext): Promise<void> {
  const { trustProxy } = ctx
  const guard = routeGuard(route, ctx)
  const limiter = guard.limiter
  const upstreamSeries = ctx.metrics.upstream(route.name)
  const upstream = new URL(route.upstream)
  const checkRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    // Before authentication: a flood is turned away without paying for signature checks.
    if (limiter) await limiter.consume(request.ip)
    // @fastify/http-proxy hands every upgrade to the route it matches; a route that does not
    // take WebSockets must refuse it here, or the socket is hijacked and left hanging.
    if (!route.websocket && request.headers.upgrade?.toLowerCase() === 'websocket') {
      throw new GatewayError('invalid_request', 'this route does not accept WebSocket upgrades')
    }
    try {
      await guard.check(request)
    } catch (err) {
      // A person at an address bar is better served by the sign-in page than by a 401 body.
      const redirected = guard.signInPage !== null && redirectToSignIn(request, reply, err, guard.signInPage)
      if (redirected) return redirected
      throw err
    }
  }
  // Callback style with a synchronous fast path (no limiter, no upgrade, a public route or a
  // token already verified): most requests then allocate no promise here at all.
  scope.addHook('onRequest', (request, reply, done) => {
    request.routeName = route.name
    if (!limiter && request.headers.upgrade === undefined) {
      let ready: Promise<void> | null | undefined
      try {
        ready = guard.cached(request)
      } catch (err) {
        return done(err as Error)
      }
      if (ready === null) return done()
      if (ready !== undefined) {
        ready.then(() => done(), done)
        return
      }
    }
    checkRequest(request, reply).then(
      (sent) => {
        if (sent === undefined) done()
      },
      (err: Error) => done(err),
    )
  })
  scope.addHook('preParsing', bodyLimitHook(ctx.bodyLimit))
  // Whatever its type, a body goes upstream as the bytes the client sent, as they arrive: a
  // gateway that parsed JSON or decoded text/plain here would alter bodies and hold them whole.
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', passBodyThrough)

  // A path on the upstream URL is prepended to the rewritten path.
  const basePath = upstream.pathname.replace(/\/+$/, '')
  const rewritePrefix = basePath + (route.rewritePrefix ?? route.prefix)
  const upstreamPrefix = rewritePrefix === '' ? '/' : rewritePrefix
  const paths = { prefix: route.prefix, upstreamPrefix }
  const pluginPrefix = route.prefix.replace(/\/+$/, '') || '/'
  // The plugin cuts the matched prefix off the path and puts rewritePrefix in its place; a root
  // route's prefix takes the path's leading '/' with it, so '/v1' would turn '/x' into '/v1x'.
  const pluginRewritePrefix = pluginPrefix === '/' && !upstreamPrefix.endsWith('/') ? `${upstreamPrefix}/` : upstreamPrefix
  const assertionHeader = ctx.auth.assertion.header.toLowerCase()
  const forward = (request: FastifyRequest, headers: IncomingHttpHeaders | Record<string, unknown>, upstreamHost: string) =>
    upstreamRequestHeaders(headers, {
      identity: request.auth ? request.auth.claims : null,
      extra: request.identityHeaders,
      assertion: request.assertion,
      assertionHeader,
      upstreamHost,
      forwardAuthorization: route.forwardAuthorization,
      trustProxy,
      peer: request.raw.socket.remoteAddress,
      protocol: request.protocol,
      host: request.headers.host,
      requestId: request.id,
      traceparent: request.trace?.upstream(upstreamHost),
      tracestate: request.trace?.tracestate,
    })
  const pool = new UpstreamPool(
    { origin: upstream.origin, connectTimeout: route.connectTimeout, timeout: route.timeout },
    {
      requestHeaders: (request, host) => {
        // From here to the upstream's response headers is the upstream latency (connect included).
        request.upstreamStartedAt = performance.now()
        return forward(request, request.headers, host)
      },
      responseHeaders: (headers) => downstreamResponseHeaders(headers, paths),
      settled: (request, failure) => {
        if (failure === null) upstreamSeries.observe(performance.now() - request.upstreamStartedAt)
        else upstreamSeries.error(failure)
        request.trace?.upstreamSettled(failure)
      },
      cutShort: ctx.cutShort,
    },
  )
  // Each config generation owns its upstream connections: closing a retired generation (after
  // its requests drained, src/server.ts) releases them.
  scope.addHook('onClose', (_instance, done) => void pool.close().then(() => done(), done))

  const sockets = route.websocket ? ctx.liveSockets.route(route.revocation) : null
  // The plugin's published types are looser than its behaviour; the options below are checked by its own validator.
  await scope.register(httpProxy as unknown as FastifyPluginCallback<Record<string, unknown>>, {
    upstream: upstream.origin,
    prefix: pluginPrefix,
    rewritePrefix: pluginRewritePrefix,
    websocket: route.websocket,
    disableRequestLogging: true,
    // The plugin's own parsers would leave Fastify's text/plain one in place: ours replace all.
    proxyPayloads: false,
    // HTTP requests go through our own undici pool (src/proxy/forward.ts); reply-from, which the
    // plugin registers regardless, is never called, and its idle agent is released on close.
    destroyAgent: true,
    handler: (request: FastifyRequest, reply: FastifyReply, dest: string) => {
      const url = request.url
      const query = url.indexOf('?')
      pool.forward(request, reply, query === -1 ? dest : dest + url.slice(query))
    },
    ...(sockets ? { wsServerOptions: sockets.serverOptions, wsHooks: sockets.hooks } : {}),
    wsClientOptions: {
      rewriteRequestHeaders: (_headers: Record<string, unknown>, request: FastifyRequest) => {
        sockets?.accepted(request)
        return forward(request, websocketHeaders(request.headers), upstream.host)
      },
    },
  })
}

/** The body stream (after the preParsing body limit) becomes `request.body` untouched. */
function passBodyThrough(_request: FastifyRequest, payload: Readable, done: (err: Error | null, body?: Readable) => void): void {
  done(null, payload)
}

/**
 * The ws client makes its own handshake (`Sec-WebSocket-*`, and no body); everything else of
 * the client's goes through upstreamRequestHeaders like any request's (hop-by-hop fields, Host).
 */
function websocketHeaders(headers: IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name in headers) {
    if (name.startsWith('sec-websocket-') || name === 'content-length') continue
    out[name] = headers[name]
  }
  return out
}
