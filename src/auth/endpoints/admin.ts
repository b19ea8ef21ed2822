/**
 * Admin endpoints, for callers holding `admin.role`:
 * GET/DELETE {basePath}/admin/users/:subject/sessions, DELETE {basePath}/admin/sessions/:id.
 */
import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../errors.js'
import { isSessionId } from '../../sessions/tokens.js'
import type { EndpointContext } from '../routes.js'
import { endOrRevoke } from './fail-safe.js'
import { caller, sessionView } from './sessions.js'

const MAX_SUBJECT = 256

export function adminEndpoints(app: FastifyInstance, ctx: EndpointContext): void {
  const roles = [ctx.config.admin.role]
  const { auth } = ctx.config

  app.get<{ Params: { subject: string } }>('/admin/users/:subject/sessions', async (request) => {
    const { claims } = await caller(request, ctx, roles)
    const subject = checkedSubject(request.params.subject)
    const sessions = await ctx.deps.store.list(subject, ctx.now())
    return { sessions: sessions.map((s) => sessionView(s, claims.sid)) }
  })

  app.delete<{ Params: { subject: string } }>('/admin/users/:subject/sessions', async (request, reply) => {
    const { claims } = await caller(request, ctx, roles)
    const subject = checkedSubject(request.params.subject)
    const now = ctx.now()
    const ended = await endOrRevoke(ctx, () => ctx.deps.store.endAll(subject, 'admin', now), { sessionIds: [], subject, now })
    ctx.revokeLocally(ended, now)
    ctx.deps.revocations.apply({ type: 'user', subject, notBefore: now, forgetAfter: now + auth.accessTokenTtl + auth.clockTolerance })
    request.log.info({ admin: claims.sub, subject, sessions: ended.length }, 'admin ended all sessions of a user')
    return reply.code(204).send()
  })

  app.delete<{ Params: { id: string } }>('/admin/sessions/:id', async (request, reply) => {
    const { claims } = await caller(request, ctx, roles)
    const id = request.params.id
    const now = ctx.now()
    const ended = isSessionId(id) ? await endOrRevoke(ctx, () => ctx.endSession(id, 'admin', now), { sessionIds: [id], now }) : null
    if (!ended) throw new GatewayError('not_found')
    request.log.info({ admin: claims.sub, sessionId: id, subject: ended.subject }, 'admin ended a session')
    return reply.code(204).send()
  })
}

function checkedSubject(subject: string): string {
  if (subject.length === 0 || subject.length > MAX_SUBJECT) throw new GatewayError('not_found')
  return subject
}
