/**
 * Sign-in through OpenID Providers: the `oidc` identity sources' endpoints under
 * {basePath}/oidc/:name/. None of this runs on proxied requests.
 */
import type { FastifyInstance } from 'fastify'
import type { OidcConfig } from '../../config/schema.js'
import type { SignInPageRenderer } from '../endpoints/signin-page.js'
import { AUTH_BODY_LIMIT, type EndpointContext } from '../routes.js'
import { backchannelLogoutEndpoint } from './backchannel.js'
import { createProvider, type OidcProvider } from './provider.js'
import { rpLogoutEndpoint } from './rp-logout.js'
import { oidcSignInEndpoints } from './sign-in.js'

export function oidcSources(ctx: EndpointContext): OidcConfig[] {
  return ctx.config.auth.identity.filter((s): s is OidcConfig => s.type === 'oidc')
}

export async function oidcEndpoints(app: FastifyInstance, ctx: EndpointContext, showOnSignInPage: SignInPageRenderer): Promise<void> {
  const sources = oidcSources(ctx)
  if (sources.length === 0) return
  const log = ctx.deps.logger
  const providers = new Map<string, OidcProvider>()
  for (const source of sources) {
    const provider = createProvider(source, {
      clockTolerance: ctx.config.auth.clockTolerance,
      now: ctx.now,
      // The message only: a failed fetch's cause can carry the request, and so the client secret.
      onDiscoveryError: (err) =>
        log.warn({ provider: source.name, issuer: source.issuer, reason: err instanceof Error ? err.message : String(err) }, 'oidc discovery failed'),
    })
    providers.set(source.name, provider)
    // Discovered ahead of the first sign-in; a provider that is away delays no start.
    provider.configuration().catch(() => {})
  }
  const oidc = { ...ctx, providers, showOnSignInPage }
  oidcSignInEndpoints(app, oidc)
  // A child scope: only these two endpoints read form bodies. Everywhere else under basePath
  // a form type would let a cross-site <form> post without a CORS preflight.
  // biome-ignore lint/nursery/noMisusedPromises: Fastify awaits an async plugin (FastifyPluginAsync); the rule reads only the callback overload
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: AUTH_BODY_LIMIT }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string))
    })
    backchannelLogoutEndpoint(scope, oidc)
    rpLogoutEndpoint(scope, oidc)
  })
}
