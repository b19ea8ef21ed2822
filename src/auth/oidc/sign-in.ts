/**
 * GET {basePath}/oidc/:name/start and GET {basePath}/oidc/:name/callback: the Authorization
 * Code flow with PKCE (RFC 9700 §2.1.1), ending in a session made exactly as a password
 * sign-in makes one (cookie mode).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as client from 'openid-client'
import { GatewayError } from '../../errors.js'
import { startSession } from '../endpoints/new-session.js'
import type { SessionRecord } from '../../sessions/types.js'
import type { EndpointContext } from '../routes.js'
import { isBrowserNavigation, safeReturnPath } from '../signin.js'
import { setTokenCookies } from '../transport.js'
import { type Claims, claimAt, mapClaims, unmetRequirement, wantedClaims } from './claims.js'
import { FLOW_TTL, keepFlow, takeFlow } from './flow.js'
import { linkSession } from './links.js'
import { isProviderOutage, type OidcProvider } from './provider.js'

type Params = { Params: { name: string }; Querystring: Record<string, unknown> }

export interface OidcContext extends EndpointContext {
  providers: ReadonlyMap<string, OidcProvider>
  /** Renders a browser-facing failure on the sign-in page; null when there is no page. */
  showOnSignInPage(reply: FastifyReply, error: GatewayError, returnTo: string): FastifyReply | null
}

export function providerOf(ctx: OidcContext, request: FastifyRequest<Params>): OidcProvider {
  const provider = ctx.providers.get(request.params.name)
  if (!provider) throw new GatewayError('not_found')
  return provider
}

export function oidcSignInEndpoints(app: FastifyInstance, ctx: OidcContext): void {
  const { auth } = ctx.config
  const base = auth.basePath.replace(/\/+$/, '')

  app.get<Params>('/oidc/:name/start', async (request, reply) => {
    const provider = providerOf(ctx, request)
    const returnTo = safeReturnPath(request.query['return'])
    const maxAge = reauthAge(request.query['max_age'])
    return browserFacing(request, reply, returnTo, async () => {
      // Each start writes to the store: counted like a sign-in attempt.
      await ctx.limiters.loginClient.consume(request.ip)
      const config = await provider.configuration()
      const state = client.randomState()
      const nonce = client.randomNonce()
      const verifier = client.randomPKCECodeVerifier()
      const redirectUri = provider.source.redirectUri ?? `${request.protocol}://${request.host}${base}/oidc/${provider.source.name}/callback`
      const flow = { provider: provider.source.name, verifier, nonce, returnTo, redirectUri, ...(maxAge === undefined ? {} : { maxAge }) }
      await keepFlow(ctx.deps.store, reply, auth, state, flow, ctx.now())
      const target = client.buildAuthorizationUrl(config, {
        ...provider.source.authorizationParams,
        redirect_uri: redirectUri,
        scope: provider.source.scopes.join(' '),
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        // A route wants a recent sign-in (maxAuthAge): the provider must really ask again,
        // not answer from its own session (OpenID Connect Core §3.1.2.1).
        ...(maxAge === undefined ? {} : { prompt: 'login', max_age: String(maxAge) }),
      })
      return reply.redirect(target.href, 302)
    })
  })

  app.get<Params>('/oidc/:name/callback', async (request, reply) => {
    const provider = providerOf(ctx, request)
    const name = provider.source.name
    let returnTo = '/'
    const finish = async () => {
      await ctx.limiters.loginClient.consume(request.ip)
      const now = ctx.now()
      const { state, flow } = await takeFlow(ctx.deps.store, request, reply, auth, name, now)
      returnTo = flow.returnTo
      const error = request.query['error']
      if (typeof error === 'string') {
        // Only the provider's error code: its description is free text we would be echoing.
        throw new GatewayError('invalid_request', `the provider did not sign you in (${error.replace(/[^\x21-\x7e]/g, '').slice(0, 64)})`)
      }
      const claims = await exchange(provider, request, flow, state, now, auth.clockTolerance)
      const unmet = unmetRequirement(provider.source.requireClaims, claims)
      if (unmet !== null) {
        request.log.info({ provider: name, claim: unmet }, 'oidc sign-in refused: requireClaims not met')
        throw new GatewayError('forbidden', 'this account may not sign in here')
      }
      const mapped = mapClaims(provider.source, claims)
      if (mapped === null) {
        request.log.warn({ provider: name, claim: provider.source.subjectClaim }, 'oidc sign-in refused: no usable subject claim')
        throw new GatewayError('invalid_request', `the provider sent no usable "${provider.source.subjectClaim}"`)
      }
      if (mapped.droppedRoles > 0) request.log.warn({ provider: name, dropped: mapped.droppedRoles }, 'oidc roles dropped (not header-safe)')
      const link = (record: SessionRecord) => linkSession(ctx.deps.store, name, claims, record, now)
      // The provider's auth_time when it sent one: an SSO sign-in may be hours old, and that is
      // what maxAuthAge must judge, not when the gateway session was made.
      const providerAuth = typeof claims['auth_time'] === 'number' ? claims['auth_time'] * 1000 : undefined
      const issued = await startSession(ctx, request, mapped.identity, now, { provider: name, authTime: providerAuth, prepare: link })
      setTokenCookies(reply, auth, issued, now)
      return reply.redirect(flow.returnTo, 302)
    }
    // Counted as a sign-in attempt (portcullis_logins_total), like POST /login.
    const counted = async () => {
      try {
        const sent = await finish()
        ctx.metrics.login('ok')
        return sent
      } catch (err) {
        ctx.metrics.login(err instanceof GatewayError ? err.code : 'error')
        throw err
      }
    }
    return browserFacing(request, reply, () => returnTo, counted)
  })

  /**
   * Runs an endpoint a browser navigates to: a failure is shown on the sign-in page (with
   * the status it would have had) when there is one and a browser asked, else as JSON.
   */
  async function browserFacing(request: FastifyRequest, reply: FastifyReply, returnTo: string | (() => string), run: () => Promise<FastifyReply>) {
    try {
      return await run()
    } catch (err) {
      if (!(err instanceof GatewayError) || !isBrowserNavigation(request)) throw err
      return ctx.showOnSignInPage(reply, err, typeof returnTo === 'string' ? returnTo : returnTo()) ?? Promise.reject(err)
    }
  }
}

/** The code for tokens, every id_token check, and the claims (userinfo's merged in if needed). */
async function exchange(
  provider: OidcProvider,
  request: FastifyRequest,
  flow: { verifier: string; nonce: string; redirectUri: string; maxAge?: number },
  state: string,
  now: number,
  tolerance: number,
) {
  const config = await provider.configuration()
  // The response parameters as they came, on the redirect_uri they were sent to.
  const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''
  const current = new URL(flow.redirectUri + query)
  try {
    const tokens = await client.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: flow.verifier,
      expectedState: state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
      // With max_age sent, auth_time must be present and that recent (openid-client checks it).
      ...(flow.maxAge === undefined ? {} : { maxAge: flow.maxAge }),
    })
    const idClaims = tokens.claims() as Claims | undefined
    if (idClaims === undefined) throw new GatewayError('invalid_request', 'the provider sent no id_token')
    // openid-client leaves iat unchecked in the code flow (OpenID Connect Core §3.1.3.7 item 10
    // lets a client refuse tokens issued too far from now): the id_token was minted by this very
    // exchange, so it must be recent and not from the future.
    const iat = idClaims['iat']
    const skew = (now - (typeof iat === 'number' ? iat * 1000 : Number.NaN)) / 1000
    if (!(skew >= -tolerance / 1000 && skew <= (FLOW_TTL + tolerance) / 1000)) {
      // A provider whose clock is off shows here first: say so to the operator.
      request.log.warn({ provider: provider.source.name, reason: 'iat out of range', skew }, 'oidc sign-in refused')
      throw new GatewayError('invalid_request', 'the id_token was not issued now (iat)')
    }
    const missing = wantedClaims(provider.source).some((name) => claimAt(idClaims, name) === undefined)
    if (!missing || config.serverMetadata().userinfo_endpoint === undefined || tokens.access_token === undefined) return idClaims
    // userinfo must speak of the same user (its sub is compared by openid-client); the
    // id_token's own claims win over it.
    const info = (await client.fetchUserInfo(config, tokens.access_token, idClaims.sub as string)) as Claims
    return { ...info, ...idClaims }
  } catch (err) {
    if (err instanceof GatewayError) throw err
    if (isProviderOutage(err)) throw new GatewayError('identity_unavailable', `provider ${provider.source.name} did not answer`, { cause: err })
    // openid-client's codes and messages name the check that failed, never a code or a token.
    request.log.warn({ provider: provider.source.name, reason: reasonOf(err) }, 'oidc sign-in refused')
    throw new GatewayError('invalid_request', 'the sign-in could not be verified; start again')
  }
}

/** A log-safe reason: the library's code and message, never its `cause` (which can hold tokens). */
function reasonOf(err: unknown): string {
  if (err instanceof client.ResponseBodyError) return `${err.error} (HTTP ${err.status})`
  if (err instanceof client.AuthorizationResponseError) return err.error
  if (err instanceof Error) return `${(err as { code?: string }).code ?? err.name}: ${err.message}`
  return 'unknown'
}

/** `max_age` on /start (set by the sign-in page for a route's maxAuthAge): whole seconds, else none. */
function reauthAge(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return undefined
  return Number(value)
}
