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
      if (claims) ended = (await ctx.endSession(claims.sid, 'logout', now, claims.sub)) !== null
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
    const ended = await ctx.deps.store.endAll(caller.claims.sub, 'logout_all', now)
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
