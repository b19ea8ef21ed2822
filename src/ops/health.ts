/**
 * `/healthz` (the process runs) and `/readyz` (it can serve: store answers, config and keys
 * loaded, not draining). Load balancers use the second to take an instance out of rotation.
 */
import type { FastifyInstance } from 'fastify'

export interface Readiness {
  /** Null when ready, else why not (logged, and shown as `reason`). */
  notReadyBecause(): Promise<string | null>
}

export function healthRoutes(app: FastifyInstance, readiness: Readiness): void {
  app.get('/healthz', { logLevel: 'warn' }, async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    const reason = await readiness.notReadyBecause()
    if (reason === null) return { status: 'ready' }
    reply.code(503)
    return { status: 'not_ready', reason }
  })
}
