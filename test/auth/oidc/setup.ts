/**
 * A gateway with an `oidc` source in front of a real OpenID Provider (oidc-provider in its own
 * process) and a real upstream, all on loopback. The gateway's port is chosen first so that the
 * provider can be started with its redirect, post-logout and back-channel logout URIs.
 */
import type { Test } from 'tap'
import { cookieFetch, type CookieFetch } from '../../helpers/cookie-fetch.js'
import { startGateway, type GatewayOptions, type TestGateway } from '../../helpers/gateway.js'
import { signInAtProvider, startOidcProvider, type OidcProvider } from '../../helpers/oidc-provider.js'
import { freePort } from '../../helpers/redis-process.js'
import { startUpstream, type Upstream } from '../../helpers/upstream.js'

export const CLIENT_SECRET = 'a-client-secret-that-must-never-be-logged'
export const ACCOUNTS = {
  alice: { email: 'alice@example.com', name: 'Alice', groups: ['staff', 'ops'] },
  bob: { email: 'bob@example.com', name: 'Bob', groups: ['staff'] },
}

export interface OidcSetup {
  gw: TestGateway
  provider: OidcProvider
  upstream: Upstream
  origin: string
}

/** `source` is YAML merged into the oidc source (a flow mapping's inner text, e.g. `timeout: 1s`). */
export async function oidcSetup(t: Test, opts: { source?: string; gateway?: string; provider?: OidcProvider; port?: number } & GatewayOptions = {}) {
  const port = opts.port ?? (await freePort())
  const origin = `http://127.0.0.1:${port}`
  const provider =
    opts.provider ??
    (await startOidcProvider(t, {
      clients: [
        {
          client_id: 'portcullis',
          client_secret: CLIENT_SECRET,
          redirect_uris: [`${origin}/auth/oidc/corp/callback`],
          post_logout_redirect_uris: [`${origin}/auth/signin`],
          backchannel_logout_uri: `${origin}/auth/oidc/corp/backchannel-logout`,
        },
      ],
      accounts: ACCOUNTS,
    }))
  const upstream = await startUpstream(t)
  const yaml = `
auth:
  signInPage: true
  cookies: { secure: false }
  identity:
    - { type: oidc, name: corp, displayName: Corp SSO, issuer: "${provider.issuer}", clientId: portcullis, clientSecret: ${CLIENT_SECRET},
        scopes: [openid, profile, email, groups], rolesClaim: groups, defaultRoles: [user], claims: [email, name]${opts.source ? `, ${opts.source}` : ''} }
${opts.gateway ?? ''}
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}" }
`
  const gw = await startGateway(t, yaml, { ...opts, port })
  return { gw, provider, upstream, origin }
}

/** A browser: its cookie jar, manual redirects. */
export function browser(): CookieFetch {
  return cookieFetch()
}

export interface SignedIn {
  /** The provider's authorization URL the gateway redirected to. */
  authorizeUrl: URL
  /** The callback URL the provider sent the browser back to (already used). */
  callbackUrl: string
  /** The callback's answer. */
  callback: Response
  providerCookies: Awaited<ReturnType<typeof signInAtProvider>>['providerCookies']
}

/** Starts at the gateway, signs in at the provider as `login`, and follows the callback. */
export async function signIn(setup: OidcSetup, user: CookieFetch, login: string, returnTo = '/api/hello'): Promise<SignedIn> {
  const start = await user(`${setup.origin}/auth/oidc/corp/start?return=${encodeURIComponent(returnTo)}`, { redirect: 'manual' })
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`)
  const authorizeUrl = new URL(start.headers.get('location')!)
  const { callbackUrl, providerCookies } = await signInAtProvider(authorizeUrl.href, login)
  const callback = await user(callbackUrl, { redirect: 'manual' })
  return { authorizeUrl, callbackUrl, callback, providerCookies }
}
