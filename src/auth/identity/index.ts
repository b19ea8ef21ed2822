/** The configured identity sources, tried in order as one source. */
import { GatewayError } from '../../errors.js'
import type { IdentityConfig } from '../../config/schema.js'
import { createHttpSource } from './http.js'
import { createStaticSource } from './static.js'
import type { Identity, IdentitySource } from './types.js'

export type { Identity, IdentitySource } from './types.js'

/** The password sources: an `oidc` source signs users in through its own endpoints instead. */
export type PasswordSourceConfig = Exclude<IdentityConfig, { type: 'oidc' }>

export function isPasswordSource(config: IdentityConfig): config is PasswordSourceConfig {
  return config.type !== 'oidc'
}

export function createSource(config: PasswordSourceConfig): IdentitySource {
  switch (config.type) {
    case 'static':
      return createStaticSource(config.users)
    case 'http':
      return createHttpSource(config)
  }
}

/**
 * One source that asks each in turn: the first identity wins; `null` when every source
 * says "invalid credentials". When a source failed and none after it accepted, the
 * failure propagates: we cannot know that source would have said no, so the client
 * gets 503 identity_unavailable, never a 401 that would read as "wrong password".
 */
export function createIdentityChain(sources: readonly (IdentityConfig | IdentitySource)[]): IdentitySource {
  const chain = sources.flatMap((s) => ('authenticate' in s ? [s] : isPasswordSource(s) ? [createSource(s)] : []))
  return {
    async authenticate(username, password): Promise<Identity | null> {
      let failure: GatewayError | undefined
      for (const source of chain) {
        try {
          const identity = await source.authenticate(username, password)
          if (identity !== null) return identity
        } catch (err) {
          // A bug in a source is still "this source could not answer": 503, not 500.
          failure ??=
            err instanceof GatewayError && err.code === 'identity_unavailable'
              ? err
              : new GatewayError('identity_unavailable', undefined, { cause: err })
        }
      }
      if (failure !== undefined) throw failure
      return null
    },
  }
}
