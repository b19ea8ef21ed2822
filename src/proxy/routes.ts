/**
 * One @fastify/http-proxy registration per configured route. Fastify's router does the
 * longest-prefix match (a static `/api/orders/*` wins over `/api/*`) on the already
 * normalised path; each route's scope authenticates in `onRequest`, before a byte of the
 * body is read.
 */
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { authenticate, authenticateCached, type Authenticator } from '../auth/authenticate.js'
import { redirectToSignIn } from '../auth/signin.js'
import type { RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import type { GatewayMetrics } from '../ops/metrics.js'
import type { Limiters } from '../ops/rate-limit.js'
import { bodyLimitHook, isBodyCut, tooLarge } from './body-limit.js'
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request went upstream (upstream latency metric). */
    upstreamStartedAt: number
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
}

export async function proxyRoutes(app: FastifyInstance, routes: readonly RouteConfig[], ctx: ProxyContext): Promise<void> {
  app.decorateRequest('upstreamStartedAt', 0)
  for (const route of routes) {
    await app.register(async (scope) => proxyRoute(scope, route, ctx))
  }
}

async function proxyRoute(scope: FastifyInstance, route: RouteConfig, ctx: ProxyContext): Promise<void> {
  const { authenticator, trustProxy } = ctx
  const required = route.auth === 'required'
  const limiter = ctx.limiters.route(route)
  const upstreamSeries = ctx.metrics.upstream(route.name)
  const signInPage = required ? (ctx.signInPage ?? null) : null
  const checkRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    // Before authentication: a flood is turned away without paying for signature checks.
    if (limiter) await limiter.consume(request.ip)
    // @fastify/http-proxy hands every upgrade to the route it matches; a route that does not
    // take WebSockets must refuse it here, or the socket is hijacked and left hanging.
    if (!route.websocket && request.headers.upgrade?.toLowerCase() === 'websocket') {
      throw new GatewayError('invalid_request', 'this route does not accept WebSocket upgrades')
    }
    if (route.auth === 'none') return
    try {
      request.auth = await authenticate(request, authenticator, required, route.roles)
    } catch (err) {
      // A person at an address bar is better served by the sign-in page than by a 401 body.
      const redirected = signInPage !== null && redirectToSignIn(request, reply, err, signInPage)
      if (redirected) return redirected
      throw err
    }
  }
  // Callback style with a synchronous fast path (no limiter, no upgrade, a public route or a
  // token already verified): most requests then allocate no promise here at all.
  scope.addHook('onRequest', (request, reply, done) => {
    request.routeName = route.name
    if (!limiter && request.headers.upgrade === undefined) {
      if (route.auth === 'none') return done()
      const known = authenticateCached(request, authenticator, route.roles)
      if (known) {
        request.auth = known
        return done()
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

  const upstream = new URL(route.upstream)
  // A path on the upstream URL is prepended to the rewritten path.
  const basePath = upstream.pathname.replace(/\/+$/, '')
  const rewritePrefix = basePath + (route.rewritePrefix ?? route.prefix)
  const forward = (request: FastifyRequest, headers: Record<string, unknown>) =>
    upstreamRequestHeaders(headers, {
      identity: request.auth ? request.auth.claims : null,
      forwardAuthorization: route.forwardAuthorization,
      trustProxy,
      peer: request.raw.socket.remoteAddress,
      protocol: request.protocol,
      host: request.headers.host,
      requestId: request.id,
    })

  // The plugin's published types are looser than its behaviour; the options below are checked by its own validator.
  await scope.register(httpProxy as unknown as FastifyPluginCallback<Record<string, unknown>>, {
    upstream: upstream.origin,
    prefix: route.prefix.replace(/\/+$/, '') || '/',
    rewritePrefix: rewritePrefix === '' ? '/' : rewritePrefix,
    websocket: route.websocket,
    disableRequestLogging: true,
    internalRewriteLocationHeader: true,
    // Each config generation owns its upstream pools: closing a retired generation (after its
    // requests drained, src/server.ts) must release them, which reply-from skips by default.
    destroyAgent: true,
    undici: {
      connectTimeout: route.connectTimeout,
      headersTimeout: route.timeout,
      bodyTimeout: route.timeout,
    },
    replyOptions: {
      timeout: route.timeout,
      // Called right before the upstream request and on its response headers: the time between
      // is the upstream latency (connect included).
      rewriteRequestHeaders: (request: FastifyRequest, headers: Record<string, unknown>) => {
        request.upstreamStartedAt = performance.now()
        return forward(request, headers)
      },
      rewriteHeaders: (headers: Record<string, unknown>, request: FastifyRequest) => {
        upstreamSeries.observe(performance.now() - request.upstreamStartedAt)
        return downstreamResponseHeaders(headers)
      },
      onError: (reply: FastifyReply, { error }: { error: Error & { code?: string; statusCode?: number } }) => {
        if (isBodyCut(error)) return void reply.send(tooLarge(error))
        const failure = upstreamError(error)
        if (failure.code !== 'invalid_request') upstreamSeries.error(failure.code === 'upstream_timeout' ? 'timeout' : 'unavailable')
        reply.send(failure)
      },
    },
    wsClientOptions: {
      rewriteRequestHeaders: (_headers: Record<string, unknown>, request: FastifyRequest) =>
        forward(request, websocketHeaders(request.headers)),
    },
  })
}

/** reply-from's error for a failed upstream call, as our error codes. */
function upstreamError(error: Error & { code?: string; statusCode?: number }): GatewayError {
  if (error.statusCode === 400) return new GatewayError('invalid_request', 'invalid path', { cause: error })
  if (error.code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayError('upstream_unavailable', undefined, { cause: error })
  if (error.statusCode === 504) return new GatewayError('upstream_timeout', undefined, { cause: error })
  return new GatewayError('upstream_unavailable', undefined, { cause: error })
}

/** The ws client makes its own handshake headers; everything else of the client's goes on. */
function websocketHeaders(headers: IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name in headers) {
    if (name === 'host' || name === 'connection' || name === 'upgrade' || name.startsWith('sec-websocket-')) continue
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'keep-alive') continue
    out[name] = headers[name]
  }
  return out
}
