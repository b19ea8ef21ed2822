/**
 * `GET /metrics` (Prometheus text) and the per-request recording that feeds it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'
import type { GatewayMetrics } from './metrics.js'

/** Label for requests that no configured route or session endpoint claimed. */
const FIXED_ROUTES: Readonly<Record<string, string>> = {
  '/healthz': 'health',
  '/readyz': 'health',
  '/metrics': 'metrics',
  '/.well-known/jwks.json': 'jwks',
}

/** `serve: false` (server.admin is set): /metrics lives on the admin listener only. */
export function metricsRoutes(app: FastifyInstance, metrics: GatewayMetrics, opts: { serve: boolean } = { serve: true }): void {
  // A callback hook, not an async one: no promise per request.
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    metrics.request(request.routeName || fixedRoute(request), request.method, reply.statusCode, reply.elapsedTime)
    done()
  })
  // Runs only when a request fails, so counting costs nothing on the happy path.
  app.addHook('onError', (_request: FastifyRequest, _reply: FastifyReply, error: Error, done: () => void) => {
    if (error instanceof GatewayError && error.code === 'store_unavailable') metrics.storeError('request')
    done()
  })

  if (!opts.serve) {
    // Answered here, not left to routing: a route with prefix / would otherwise proxy it upstream.
    app.get('/metrics', { logLevel: 'warn' }, async () => {
      throw new GatewayError('not_found')
    })
    return
  }
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}

/**
 * The router's pattern, never the path itself (a path would make one series per URL). Only
 * reached for requests outside the configured routes and the session endpoints.
 */
function fixedRoute(request: FastifyRequest): string {
  const pattern = request.routeOptions.url
  return pattern === undefined ? 'unmatched' : (FIXED_ROUTES[pattern] ?? 'other')
}
