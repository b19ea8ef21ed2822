/**
 * GET {basePath}/me, GET {basePath}/sessions, DELETE {basePath}/sessions/:id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.js'
import { isSessionId, sessionTag, subjectTag } from '../../sessions/tokens.js'
import type { SessionRecord } from '../../sessions/types.js'
import { authenticate, type Authenticated } from '../authenticate.js'
import type { EndpointContext } from '../routes.js'
import { clearCookies } from '../transport.js'
import { endOrRevoke } from './fail-safe.js'

/** The device list entry shown to a user (SPEC.md `GET /sessions`). */
export function sessionView(s: SessionRecord, currentSessionId: string | null) {
  return {
    id: s.id,
    createdAt: new Date(s.createdAt).toISOString(),
    lastUsedAt: new Date(s.lastUsedAt).toISOString(),
    expiresAt: new Date(Math.min(s.idleExpiresAt, s.absoluteExpiresAt)).toISOString(),
    userAgent: s.userAgent,
    ip: s.ip,
    current: s.id === currentSessionId,
    /** The `oidc` source it was signed in through; null for a password sign-in. */
    provider: s.provider ?? null,
  }
}

export async function caller(request: FastifyRequest, ctx: EndpointContext, roles?: string[]): Promise<Authenticated> {
  const auth = await authenticate(request, ctx.authenticator, true, roles)
  if (!auth) throw new GatewayError('missing_token')
  return auth
}

export function sessionEndpoints(app: FastifyInstance, ctx: EndpointContext): void {
  app.get('/me', async (request) => {
    const { claims } = await caller(request, ctx)
    const { iss: _iss, aud: _aud, sub, sid, iat, exp, jti: _jti, nbf: _nbf, roles, auth_time, ...custom } = claims
    return {
      subject: sub,
      roles,
      sessionId: sid,
      claims: custom,
      issuedAt: new Date(iat * 1000).toISOString(),
      expiresAt: new Date(exp * 1000).toISOString(),
      // Tokens minted before auth_time existed lack it.
      authTime: typeof auth_time === 'number' ? new Date(auth_time * 1000).toISOString() : null,
    }
  })

  app.get('/sessions', async (request) => {
    const { claims } = await caller(request, ctx)
    const sessions = await ctx.deps.store.list(claims.sub, ctx.now())
    return { sessions: sessions.map((s) => sessionView(s, claims.sid)) }
  })

  app.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const { claims } = await caller(request, ctx)
    const id = request.params.id
    const now = ctx.now()
    const end = () => ctx.endSession(id, 'deleted', now, claims.sub)
    // Someone else's session and no session at all look the same: 404 either way. If the store
    // does not answer, the id is revoked anyway only when it carries the caller's own subject
    // tag (a sid is no secret: it must not let anyone revoke another user's session).
    const ended = !isSessionId(id)
      ? null
      : sessionTag(id) === subjectTag(claims.sub)
        ? await endOrRevoke(ctx, end, { sessionIds: [id], now })
        : await end()
    if (!ended) throw new GatewayError('not_found')
    if (id === claims.sid) clearCookies(reply, ctx.config.auth)
    return reply.code(204).send()
  })
}
