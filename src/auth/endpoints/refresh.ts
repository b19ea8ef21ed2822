/**
 * POST {basePath}/refresh: rotate the refresh token, mint a new access token.
 * The rotation itself (the per-session refresh limit, grace, reuse detection, expiry) is one
 * atomic store call: one round trip on Redis.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.js'
import type { SessionRecord } from '../../sessions/types.js'
import { deriveSuccessor, formatRefreshToken, hashRefresh, newNonce, parseRefreshToken } from '../../sessions/tokens.js'
import { cookieNames } from '../cookies.js'
import { checkCsrf } from '../csrf.js'
import type { EndpointContext } from '../routes.js'
import { AUTH_BODY_LIMIT } from '../routes.js'
import { clearCookies, sendTokens } from '../transport.js'
import { clientFacts, objectBody } from './body.js'

/** The presented refresh token: the JSON body's, else the refresh cookie's. */
export function presentedRefreshToken(request: { body: unknown; cookies: Record<string, string | undefined> }, cookieName: string) {
  const body = objectBody(request.body, false)
  const fromBody = body['refreshToken']
  if (fromBody !== undefined) {
    if (typeof fromBody !== 'string') throw new GatewayError('invalid_request', '"refreshToken" must be a string')
    return { token: fromBody, viaCookie: false }
  }
  const cookie = request.cookies[cookieName]
  return cookie ? { token: cookie, viaCookie: true } : null
}

/** The refreshes metric's result for each way a refresh is refused. */
const REFUSED: Partial<Record<string, string>> = {
  refresh_token_reused: 'reused',
  session_expired: 'expired',
  invalid_refresh_token: 'unknown',
  rate_limited: 'rate_limited',
  invalid_request: 'rejected',
  csrf_rejected: 'rejected',
}

export function refreshEndpoint(app: FastifyInstance, ctx: EndpointContext): void {
  const { auth } = ctx.config
  const refreshCookie = cookieNames(auth).refresh
  app.post('/refresh', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    try {
      return await rotate(request, reply)
    } catch (err) {
      ctx.metrics.refresh((err instanceof GatewayError && REFUSED[err.code]) || 'error')
      throw err
    }
  })

  async function rotate(request: FastifyRequest, reply: FastifyReply) {
    const presented = presentedRefreshToken(request, refreshCookie)
    if (!presented) throw new GatewayError('invalid_refresh_token', 'no refresh token presented')
    if (presented.viaCookie) checkCsrf(request, ctx.authenticator.allowedOrigins)
    const parsed = parseRefreshToken(presented.token)
    if (!parsed) {
      if (presented.viaCookie) clearCookies(reply, auth)
      throw new GatewayError('invalid_refresh_token')
    }
    const now = ctx.now()
    const nonce = newNonce()
    const result = await ctx.deps.store.rotate({
      sessionId: parsed.sessionId,
      presentedHash: hashRefresh(parsed.secret),
      successorHash: hashRefresh(deriveSuccessor(parsed.secret, nonce)),
      nonce,
      now,
      refreshTokenTtl: auth.refreshTokenTtl,
      refreshReuseGrace: auth.refreshReuseGrace,
      ...clientFacts(request),
      // Counted by the store before anything else: a refused refresh rotates nothing.
      limit: ctx.limiters.refreshSession.limit,
    })
    switch (result.kind) {
      case 'limited':
        throw ctx.limiters.refreshSession.refuse(result.retryAfterMs)
      case 'rotated':
      case 'grace': {
        if (ctx.deps.revocations.hasEnded(result.session)) return refuseEnded(result.session, reply, presented.viaCookie, now)
        // In the grace case the stored nonce re-derives the successor already handed out, so
        // two tabs refreshing at once end up holding the same token.
        const successor = deriveSuccessor(parsed.secret, result.kind === 'grace' ? result.nonce : nonce)
        const access = await ctx.mint(result.session, now)
        ctx.metrics.refresh(result.kind)
        return sendTokens(
          request,
          reply,
          auth,
          { session: result.session, access, refreshToken: formatRefreshToken(result.session.id, successor) },
          now,
        )
      }
      case 'reused':
        ctx.metrics.reuseDetected()
        ctx.deps.events?.emit('refresh.reuse_detected', {
          sessionId: result.session.id,
          subject: result.session.subject,
          // As stored by the last rotation (or the sign-in), against this presentation.
          rotatedBy: { ip: result.session.ip, userAgent: result.session.userAgent, at: new Date(result.session.lastUsedAt).toISOString() },
          reusedBy: clientFacts(request),
        })
        ctx.revokeLocally([result.session.id], now)
        request.log.warn({ sessionId: result.session.id, subject: result.session.subject }, 'refresh token reuse: session ended')
        clearCookies(reply, auth)
        throw new GatewayError('refresh_token_reused')
      case 'expired':
        ctx.revokeLocally([parsed.sessionId], now)
        clearCookies(reply, auth)
        throw new GatewayError('session_expired')
      case 'unknown':
        if (presented.viaCookie) clearCookies(reply, auth)
        throw new GatewayError('invalid_refresh_token')
    }
  }

  /**
   * A session this instance knows was ended, but that the store still holds: an ending whose
   * write is still on its way to the store (it was away), or one the store lost in a failover.
   * It mints nothing and is ended again (idempotent).
   */
  async function refuseEnded(session: SessionRecord, reply: FastifyReply, viaCookie: boolean, now: number): Promise<never> {
    await ctx.endSession(session.id, 'logout', now).catch(() => null)
    if (viaCookie) clearCookies(reply, auth)
    throw new GatewayError('invalid_refresh_token', 'session ended')
  }
}
