/**
 * A new session for someone who just proved who they are: by password (POST /login) or at an
 * OpenID Provider (the oidc callback). Both get exactly the same kind of session.
 */
import type { FastifyRequest } from 'fastify'
import { formatRefreshToken, hashRefresh, newRefreshSecret, newSessionId } from '../../sessions/tokens.js'
import type { SessionRecord } from '../../sessions/types.js'
import type { Identity } from '../identity/types.js'
import type { EndpointContext } from '../routes.js'
import type { Issued } from '../transport.js'
import { clientFacts } from './body.js'

export async function startSession(
  ctx: EndpointContext,
  request: FastifyRequest,
  identity: Identity,
  now: number,
  options: {
    /** The `oidc` source signed in through. */
    provider?: string
    /** When the user authenticated, if before now (a provider's auth_time). */
    authTime?: number
    /** Runs before the session is stored, e.g. to index it; a failure stores nothing. */
    prepare?: (record: SessionRecord) => Promise<void>
  } = {},
): Promise<Issued> {
  const { provider, authTime, prepare } = options
  const { auth } = ctx.config
  const record: SessionRecord = {
    id: newSessionId(identity.subject),
    subject: identity.subject,
    roles: identity.roles,
    claims: identity.claims,
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: Math.min(now + auth.refreshTokenTtl, now + auth.sessionMaxAge),
    absoluteExpiresAt: now + auth.sessionMaxAge,
    ...clientFacts(request),
    ...(provider === undefined ? {} : { provider }),
    ...(authTime === undefined || authTime >= now ? {} : { authTime }),
  }
  await prepare?.(record)
  const secret = newRefreshSecret()
  const { evicted } = await ctx.deps.store.create({ record, refreshHash: hashRefresh(secret) }, now)
  ctx.revokeLocally(evicted, now)
  request.log.info({ sessionId: record.id, subject: record.subject, ...(provider === undefined ? {} : { provider }) }, 'session created')
  const access = await ctx.mint(record, now)
  return { session: record, access, refreshToken: formatRefreshToken(record.id, secret) }
}
