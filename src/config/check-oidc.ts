/** OpenID Connect sources: names that can be told apart, scopes and URLs that can work. */
import { reportDuplicates, type Check } from './check.js'
import type { OidcConfig } from './schema.js'

/** The parameters the flow itself sets: authorizationParams must not change them. */
const PROTOCOL_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'response_mode',
])

const LOOPBACK = /^http:\/\/(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?(\/|$)/i

export const oidcChecks: Check[] = [
  {
    needs: [['auth', 'identity']],
    run({ auth }, report) {
      const sources = auth.identity
        .map((source, s) => ({ source, s }))
        .filter((e): e is { source: OidcConfig; s: number } => e.source.type === 'oidc' && report.clean(['auth', 'identity', e.s]))
      // The name is the source's address ({basePath}/oidc/NAME/...): two sources with one name
      // would share a callback, and a logout token from one provider would end the other's sessions.
      reportDuplicates(
        sources,
        (e) => e.source.name,
        (i, first, name) =>
          report.problem(['auth', 'identity', sources[i]!.s, 'name'], `"${name}" is already the name of auth.identity[${sources[first]!.s}]`),
      )
      for (const { source, s } of sources) {
        const at = (key: string) => ['auth', 'identity', s, key]
        // Without openid the provider answers plain OAuth: no id_token, so no verified identity.
        if (!source.scopes.includes('openid')) report.problem(at('scopes'), 'must include openid')
        for (const param of Object.keys(source.authorizationParams)) {
          if (PROTOCOL_PARAMS.has(param)) report.problem([...at('authorizationParams'), param], 'is set by the gateway itself (scopes go in scopes)')
        }
        for (const key of ['issuer', 'redirectUri', 'postLogoutRedirectUri'] as const) {
          const url = source[key]
          // Plain http exposes the code, the tokens and the client secret to anyone on the path.
          if (url?.startsWith('http://') && !LOOPBACK.test(url)) {
            report.warning(at(key), 'is plain http: codes and tokens cross the network in the clear; use https outside development')
          }
        }
      }
    },
  },
]
