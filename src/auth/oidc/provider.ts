/**
 * One OpenID Provider as the gateway sees it: its discovered metadata, kept and renewed, and
 * what a provider's failure means to a caller.
 *
 * The relying-party protocol is openid-client's (the certified library by jose's author):
 * discovery, PKCE, the code exchange and every id_token check. We only choose its settings.
 */
import * as client from 'openid-client'
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import type { OidcConfig } from '../../config/schema.js'
import { GatewayError } from '../../errors.js'

/** Metadata is re-read this often (a provider may move endpoints or add algorithms). */
const METADATA_MAX_AGE = 60 * 60_000
/**
 * After a failed discovery, sign-ins through this provider fail at once for this long rather
 * than each waiting `timeout` on a provider that is down; then one caller tries again.
 */
const RETRY_AFTER_FAILURE = 5_000

export interface OidcProvider {
  readonly source: OidcConfig
  /** The discovered configuration; rejects with 503 identity_unavailable when it cannot be had. */
  configuration(): Promise<client.Configuration>
  /** The provider's signing keys, for logout tokens (fetched again on an unknown kid, at most every 30 s). */
  keys(): Promise<JWTVerifyGetKey>
}

export interface ProviderOptions {
  /** auth.clockTolerance, ms. */
  clockTolerance: number
  now?: () => number
  /** Where a failed discovery is told (without secrets). */
  onDiscoveryError?: (err: unknown) => void
}

export function createProvider(source: OidcConfig, options: ProviderOptions): OidcProvider {
  const now = options.now ?? Date.now
  const timeout = source.timeout / 1000
  let current: { at: number; config: Promise<client.Configuration>; keys?: JWTVerifyGetKey } | null = null
  let failedAt = Number.NEGATIVE_INFINITY

  function discover(): Promise<client.Configuration> {
    const execute = [
      // Signatures are checked on every id_token, though it comes straight from the token
      // endpoint (OpenID Connect Core §3.1.3.7 would let TLS stand in): an issuer behind a
      // proxy or a misconfigured TLS setup must not be enough to forge a sign-in. Only
      // asymmetric algorithms the provider lists are accepted; `none` and HS* never are.
      client.enableNonRepudiationChecks,
      ...(source.issuer.startsWith('http://') ? [client.allowInsecureRequests] : []),
    ]
    const metadata = { client_secret: source.clientSecret, [client.clockTolerance]: Math.ceil(options.clockTolerance / 1000) }
    return client.discovery(new URL(source.issuer), source.clientId, metadata, client.ClientSecretBasic(source.clientSecret), {
      timeout,
      execute,
    })
  }

  async function configuration(): Promise<client.Configuration> {
    const at = now()
    if (current === null || at - current.at > METADATA_MAX_AGE) {
      if (at - failedAt < RETRY_AFTER_FAILURE) throw new GatewayError('identity_unavailable', `provider ${source.name} is unreachable`)
      const attempt = { at, config: discover() }
      current = attempt
      attempt.config.catch((err: unknown) => {
        if (current === attempt) current = null
        failedAt = now()
        options.onDiscoveryError?.(err)
      })
    }
    try {
      return await current.config
    } catch (cause) {
      throw new GatewayError('identity_unavailable', `provider ${source.name} is unreachable`, { cause })
    }
  }

  return {
    source,
    configuration,
    async keys() {
      const config = await configuration()
      if (current === null) throw new GatewayError('identity_unavailable')
      if (current.keys === undefined) {
        const uri = config.serverMetadata().jwks_uri
        if (uri === undefined) throw new GatewayError('identity_unavailable', `provider ${source.name} publishes no jwks_uri`)
        current.keys = createRemoteJWKSet(new URL(uri), { timeoutDuration: source.timeout, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 })
      }
      return current.keys
    },
  }
}

/**
 * Whether a failed provider call means "the provider is not answering properly" (503, try
 * again later) rather than "this sign-in is not valid" (400).
 */
export function isProviderOutage(err: unknown): boolean {
  if (err instanceof GatewayError) return err.code === 'identity_unavailable'
  // fetch() rejects with a TypeError when the connection fails.
  if (err instanceof TypeError) return true
  if (err instanceof client.ResponseBodyError) return err.status >= 500
  if (err instanceof client.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return true
    // Not JSON at all, whatever the status (a proxy's or captive portal's HTML page): nothing the user did.
    if (err.code === 'OAUTH_RESPONSE_IS_NOT_JSON') return true
    const status = (err.cause as { status?: unknown } | undefined)?.status
    return typeof status === 'number' && status >= 500
  }
  return false
}
