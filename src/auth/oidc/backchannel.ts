/**
 * POST {basePath}/oidc/:name/backchannel-logout (OpenID Connect Back-Channel Logout 1.0):
 * the provider says one of its sessions (or every session of one user) has ended, and every
 * gateway session made from it ends too, on every instance.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../errors.js'
import { endOrRevoke } from '../endpoints/fail-safe.js'
import { AUTH_BODY_LIMIT } from '../routes.js'
import { sidKey, subKey } from './links.js'
import { InvalidLogoutToken, LOGOUT_TOKEN_MAX_AGE, verifyLogoutToken } from './logout-token.js'
import { type OidcContext, providerOf } from './sign-in.js'

type Params = { Params: { name: string }; Querystring: Record<string, unknown> }

/** Never accepted for a logout token, whatever a discovery document lists. */
const UNACCEPTABLE = /^(none|HS\d+)$/

/** Registered in the scope that reads form bodies (./index.ts): §2.5 posts a form. */
export function backchannelLogoutEndpoint(scope: FastifyInstance, ctx: OidcContext): void {
  scope.post<Params>('/oidc/:name/backchannel-logout', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    const provider = providerOf(ctx, request)
    const form = request.body
    const tokens = form instanceof URLSearchParams ? form.getAll('logout_token') : []
    if (tokens.length !== 1 || tokens[0] === '') throw new GatewayError('invalid_request', 'one logout_token form field is required')
    const config = await provider.configuration()
    const metadata = config.serverMetadata()
    const now = ctx.now()
    let claims: Awaited<ReturnType<typeof verifyLogoutToken>>
    try {
      claims = await verifyLogoutToken(tokens[0]!, await provider.keys(), {
        issuer: metadata.issuer,
        clientId: provider.source.clientId,
        algorithms: (metadata.id_token_signing_alg_values_supported ?? ['RS256']).filter((alg) => !UNACCEPTABLE.test(alg)),
        clockTolerance: ctx.config.auth.clockTolerance,
        now,
      })
    } catch (err) {
      if (!(err instanceof InvalidLogoutToken)) throw new GatewayError('identity_unavailable', undefined, { cause: err })
      request.log.warn({ provider: provider.source.name, reason: err.message }, 'logout token refused')
      // Only refusals are counted: a provider sending many valid logouts is never slowed.
      await ctx.limiters.loginClient.consume(request.ip)
      throw new GatewayError('invalid_request', 'the logout token is not valid')
    }
    const name = provider.source.name
    // §2.6: a jti seen before is a replay. Kept in the store, so every instance refuses it,
    // for as long as the token could be accepted at all.
    const jtiKey = `oidc:jti:${name}:${createHash('sha256').update(claims.jti).digest('base64url')}`
    if (!(await ctx.deps.store.putNew(jtiKey, '1', LOGOUT_TOKEN_MAX_AGE + 2 * ctx.config.auth.clockTolerance, now))) {
      throw new GatewayError('invalid_request', 'this logout token was already used')
    }
    try {
      // With a sid, only the sessions of that provider session (§2.4); else all of that user's from this provider.
      const ids = await ctx.deps.store.linked(claims.sid !== undefined ? sidKey(name, claims.sid) : subKey(name, claims.sub!), now)
      // A store call that fails still revokes that session's tokens here at once (fail-safe.ts).
      const end = (id: string) => endOrRevoke(ctx, () => ctx.endSession(id, 'provider_logout', now), { sessionIds: [id], now })
      const ended = await Promise.all(ids.map(end))
      request.log.info({ provider: name, sessions: ended.filter((s) => s !== null).length }, 'provider logout')
    } catch (err) {
      // Not done: the provider may retry with this same token, so it must not count as used.
      await ctx.deps.store.take(jtiKey, now).catch(() => {})
      throw err
    }
    return reply.code(200).header('cache-control', 'no-store').send()
  })
}
