/**
 * One @fastify/http-proxy registration per configured route. Fastify's router does the
 * longest-prefix match (a static `/api/orders/*` wins over `/api/*`) on the already
 * normalised path; each route's scope authenticates in `onRequest`, before a byte of the
 * body is read.
 */
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { authenticate, type Authenticator } from '../auth/authenticate.js'
import type { RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js'

export interface ProxyContext {
  authenticator: Authenticator
  trustProxy: boolean
}

export async function proxyRoutes(app: FastifyInstance, routes: readonly RouteConfig[], ctx: ProxyContext): Promise<void> {
  for (const route of routes) {
    await app.register(async (scope) => proxyRoute(scope, route, ctx))
  }
}

async function proxyRoute(scope: FastifyInstance, route: RouteConfig, ctx: ProxyContext): Promise<void> {
  const { authenticator, trustProxy } = ctx
  const required = route.auth === 'required'
  scope.addHook('onRequest', async (request) => {
    request.routeName = route.name
    if (route.auth !== 'none') request.auth = await authenticate(request, authenticator, required, route.roles)
  })

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
    undici: {
      connectTimeout: route.connectTimeout,
      headersTimeout: route.timeout,
      bodyTimeout: route.timeout,
    },
    replyOptions: {
      timeout: route.timeout,
      rewriteRequestHeaders: (request: FastifyRequest, headers: Record<string, unknown>) => forward(request, headers),
      rewriteHeaders: (headers: Record<string, unknown>) => downstreamResponseHeaders(headers),
      onError: (reply: FastifyReply, { error }: { error: Error & { code?: string; statusCode?: number } }) => {
        reply.send(upstreamError(error))
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
