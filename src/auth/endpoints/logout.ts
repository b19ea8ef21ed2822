/**
 * POST {basePath}/logout and POST {basePath}/logout-all.
 */
import type { FastifyInstance } from 'fastify'
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

export function logoutEndpoints(app: FastifyInstance, ctx: EndpointContext): void {
  const { auth } = ctx.config
  const names = cookieNames(auth)

  // Ends the caller's session, found from a valid access token or else from the refresh
  // token. Logging out is idempotent: with nothing (left) to end it still clears the cookies.
  app.post('/logout', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    const access = presentedToken(request, names.access)
    const refresh = presentedRefreshToken(request, names.refresh)
    if (access?.viaCookie || refresh?.viaCookie) checkCsrf(request, ctx.authenticator.allowedOrigins)
    const now = ctx.now()
    let ended = false
    if (access) {
      const claims = await ctx.authenticator.verify(access.token).catch(() => null)
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
    return reply.code(204).send()
  })

  app.post('/logout-all', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    const caller = await authenticate(request, ctx.authenticator, true)
    if (!caller) throw new GatewayError('missing_token')
    const now = ctx.now()
    const subject = caller.claims.sub
    // The caller's own sid too: the user mark spares tokens issued in its own second.
    const failSafe = { sessionIds: [caller.claims.sid], subject, now }
    const ended = await endOrRevoke(ctx, () => ctx.deps.store.endAll(subject, 'logout_all', now), failSafe)
    ctx.revokeLocally(ended, now)
    ctx.deps.revocations.apply({
      type: 'user',
      subject: caller.claims.sub,
      notBefore: now,
      forgetAfter: now + auth.accessTokenTtl + auth.clockTolerance,
    })
    request.log.info({ subject: caller.claims.sub, sessions: ended.length }, 'logged out everywhere')
    clearCookies(reply, auth)
    return reply.code(204).send()
  })
}
