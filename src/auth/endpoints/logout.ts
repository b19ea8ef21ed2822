/**
 * POST {basePath}/logout and POST {basePath}/logout-all.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.js'
import { hashRefresh, parseRefreshToken } from '../../sessions/tokens.js'
import { authenticate, presentedToken } from '../authenticate.js'
import { cookieNames } from '../cookies.js'
import { checkCsrf } from '../csrf.js'
import type { EndpointContext } from '../routes.js'
import { AUTH_BODY_LIMIT } from '../routes.js'
import { clearCookies } from '../transport.js'
import { endOrRevoke, revokeAnyway } from './fail-safe.js'
import { presentedRefreshToken } from './refresh.js'
import type { AccessClaims } from '../verify.js'

export function logoutEndpoints(app: FastifyInstance, ctx: EndpointContext): void {
  const { auth } = ctx.config

  app.post('/logout', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    await endCallerSession(request, reply, ctx)
    return reply.code(204).send()
  })

  app.post('/logout-all', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    const { claims, asOf: now } = await logoutAllCaller(request, ctx)
    const subject = claims.sub
    // The caller's own sid too: the user mark spares tokens issued in its own second.
    const failSafe = { sessionIds: [claims.sid], subject, now }
    const ended = await endOrRevoke(ctx, () => ctx.deps.store.endAll(subject, 'logout_all', now), failSafe)
    ctx.revokeLocally(ended, now)
    ctx.deps.revocations.apply({
      type: 'user',
      subject,
      notBefore: now,
      forgetAfter: now + auth.accessTokenTtl + auth.clockTolerance,
    })
    request.log.info({ subject, sessions: ended.length }, 'logged out everywhere')
    clearCookies(reply, auth)
    return reply.code(204).send()
  })
}

/**
 * The caller of logout-all, and the time the logout takes effect as of. A logout-all whose
 * answer was lost (the store was away: 503) has already revoked the caller's token, on this
 * instance at once and everywhere once the store heals; the same caller must still be able to
 * retry it. A token revoked by a logout-all made after it was issued is therefore accepted
 * here, and the retry replays that logout-all as of its own time: it ends what existed then,
 * never a session signed in since. Any other revoked token stays refused.
 */
async function logoutAllCaller(request: FastifyRequest, ctx: EndpointContext): Promise<{ claims: AccessClaims; asOf: number }> {
  try {
    const caller = await authenticate(request, ctx.authenticator, true)
    if (!caller) throw new GatewayError('missing_token')
    return { claims: caller.claims, asOf: ctx.now() }
  } catch (err) {
    if (!(err instanceof GatewayError) || err.code !== 'token_revoked') throw err
    const presented = presentedToken(request, ctx.authenticator.accessCookie)
    if (!presented) throw err
    const claims = await ctx.authenticator.verify(presented.token, request.ip)
    const mark = ctx.deps.revocations.userMark(claims.sub)
    if (mark === undefined || mark < claims.iat * 1000) throw err
    if (presented.viaCookie) checkCsrf(request, ctx.authenticator.allowedOrigins)
    return { claims, asOf: mark }
  }
}

/**
 * Ends the caller's session, found from a valid access token or else from the refresh token,
 * and clears the cookies. Idempotent: with nothing (left) to end it still clears them.
 */
export async function endCallerSession(request: FastifyRequest, reply: FastifyReply, ctx: EndpointContext): Promise<void> {
  const { auth } = ctx.config
  const names = cookieNames(auth)
  const access = presentedToken(request, names.access)
  const refresh = presentedRefreshToken(request, names.refresh)
  if (access?.viaCookie || refresh?.viaCookie) checkCsrf(request, ctx.authenticator.allowedOrigins)
  const now = ctx.now()
  let ended = false
  if (access) {
    // Charged to the caller's address like any other check, so logout is no way around the
    // failure budget; a valid token refused only because checks are overloaded is not
    // treated as no token (that would skip the logout): the caller gets 429 and retries.
    const claims = await ctx.authenticator.verify(access.token, request.ip).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'rate_limited') throw err
      return null
    })
    if (claims) {
      const end = () => ctx.endSession(claims.sid, 'logout', now, claims.sub)
      ended = (await endOrRevoke(ctx, end, { sessionIds: [claims.sid], now })) !== null
      // A valid token whose session is already gone (ended by a call whose answer was lost,
      // or lost with the store's data) is revoked all the same: after a logout, the
      // caller's tokens must stop working.
      if (!ended && !ctx.deps.revocations.isRevoked(claims.sid, claims.sub, claims.iat)) revokeAnyway(ctx, [claims.sid], now)
    }
  }
  const parsed = refresh && parseRefreshToken(refresh.token)
  if (!ended && parsed) {
    const session = await ctx.deps.store.endByRefresh(parsed.sessionId, hashRefresh(parsed.secret), now)
    if (session) ctx.revokeLocally([session.id], now)
  }
  clearCookies(reply, auth)
}
