/**
 * The session endpoints under `auth.basePath` (SPEC.md "HTTP endpoints owned by the gateway").
 * Each endpoint lives in its own file under ./endpoints; this file wires shared state.
 */
import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import type { GatewayDeps } from '../app.js'
import type { GatewayConfig } from '../config/schema.js'
import type { GatewayMetrics } from '../ops/metrics.js'
import type { Limiters } from '../ops/rate-limit.js'
import type { EndReason, SessionRecord } from '../sessions/types.js'
import type { Authenticator } from './authenticate.js'
import { adminEndpoints } from './endpoints/admin.js'
import { loginEndpoint } from './endpoints/login.js'
import { logoutEndpoints } from './endpoints/logout.js'
import { refreshEndpoint } from './endpoints/refresh.js'
import { sessionEndpoints } from './endpoints/sessions.js'
import { signInPageEndpoints } from './endpoints/signin-page.js'
import { isPasswordSource } from './identity/index.js'
import { createMinter, type Minter } from './mint.js'
import { oidcEndpoints, oidcSources } from './oidc/index.js'
import { noStore } from './transport.js'

export interface SessionRoutesOptions {
  config: GatewayConfig
  deps: GatewayDeps
  authenticator: Authenticator
  now: () => number
  metrics: GatewayMetrics
  /** rateLimits.login and rateLimits.refresh of this generation. */
  limiters: Limiters
}

/** What every endpoint gets handed. */
export interface EndpointContext extends SessionRoutesOptions {
  mint: Minter
  /** Makes ended sessions fail on this instance at once (other instances learn via the store). */
  revokeLocally(sessionIds: Iterable<string>, now: number): void
  /** Ends one session in the store and locally. */
  endSession(sessionId: string, reason: EndReason, now: number, subject?: string): Promise<SessionRecord | null>
}

/** Small bodies only: credentials and a refresh token. */
export const AUTH_BODY_LIMIT = 16 * 1024

export async function sessionRoutes(app: FastifyInstance, opts: SessionRoutesOptions): Promise<void> {
  const { config, deps } = opts
  const revocationTtl = config.auth.accessTokenTtl + config.auth.clockTolerance
  const ctx: EndpointContext = {
    ...opts,
    mint: createMinter({
      keyring: deps.keyring,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      ttl: config.auth.accessTokenTtl,
    }),
    revokeLocally(sessionIds, now) {
      for (const sessionId of sessionIds) deps.revocations.apply({ type: 'session', sessionId, forgetAfter: now + revocationTtl })
    },
    async endSession(sessionId, reason, now, subject) {
      const ended = await deps.store.end(sessionId, reason, now, subject)
      if (ended) ctx.revokeLocally([ended.id], now)
      return ended
    },
  }
  // Only the session endpoints set cookies: on proxied routes the cookie plugin's hooks (a
  // parse, a Map and an onSend hook on every request) would be paid for nothing.
  await app.register(fastifyCookie)
  // Credentials come as JSON only: the form-friendly types a cross-site <form> can send without
  // a CORS preflight (text/plain, urlencoded, multipart) get 415 here.
  app.removeContentTypeParser('text/plain')
  app.addHook('onRequest', async (request, reply) => {
    request.routeName = 'auth'
    noStore(reply)
  })
  loginEndpoint(app, ctx)
  refreshEndpoint(app, ctx)
  logoutEndpoints(app, ctx)
  sessionEndpoints(app, ctx)
  adminEndpoints(app, ctx)
  const sources = ctx.config.auth.identity
  const choices = {
    providers: oidcSources(ctx).map((s) => ({ name: s.name, label: s.displayName ?? s.name })),
    // The form is left out only where every source is a provider: with none configured, a
    // deployment's injected source (tests, embedding) may still take passwords.
    passwordForm: sources.length === 0 || sources.some(isPasswordSource),
  }
  const showOnSignInPage = await signInPageEndpoints(app, ctx, choices)
  await oidcEndpoints(app, ctx, showOnSignInPage)
}
