/**
 * POST {basePath}/oidc/:name/logout: sign out of the gateway and of the provider (OpenID
 * Connect RP-Initiated Logout 1.0). The gateway session ends first, exactly as POST /logout
 * ends it; then the browser goes to the provider's end_session_endpoint, which brings it back
 * to the post-logout URI. Form bodies are accepted (and ignored), so a plain <form> works.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import * as client from 'openid-client'
import { endCallerSession } from '../endpoints/logout.js'
import { AUTH_BODY_LIMIT } from '../routes.js'
import { signInPath } from '../signin.js'
import type { OidcProvider } from './provider.js'
import { type OidcContext, providerOf } from './sign-in.js'

type Params = { Params: { name: string }; Querystring: Record<string, unknown> }

/**
 * Registered in the scope that reads form bodies (./index.ts). The body is ignored: the CSRF
 * check (Origin) in endCallerSession is what guards this form.
 */
export function rpLogoutEndpoint(scope: FastifyInstance, ctx: OidcContext): void {
  scope.post<Params>('/oidc/:name/logout', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    const provider = providerOf(ctx, request)
    await endCallerSession(request, reply, ctx)
    return reply.redirect(await endSessionUrl(provider, request, ctx), 303)
  })
}

/** Where the browser goes next: the provider's end_session_endpoint, or straight back when it has none or is away. */
async function endSessionUrl(provider: OidcProvider, request: FastifyRequest, ctx: OidcContext): Promise<string> {
  const { auth } = ctx.config
  const back = provider.source.postLogoutRedirectUri ?? `${request.protocol}://${request.host}${auth.signInPage ? signInPath(auth.basePath) : '/'}`
  try {
    const config = await provider.configuration()
    if (config.serverMetadata().end_session_endpoint === undefined) return back
    // No id_token_hint: the gateway keeps no id_token (it would be one more credential to
    // guard in every session). client_id tells the provider whose post-logout URI to check.
    return client.buildEndSessionUrl(config, { post_logout_redirect_uri: back }).href
  } catch {
    // Signed out of the gateway already; the provider's own sign-out must wait for it to return.
    return back
  }
}
