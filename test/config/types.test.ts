import t from 'tap'
import type { AuthConfig, GatewayConfig, IdentityConfig, KeysConfig, RawConfig, RouteConfig } from '../../src/config/schema.js'

// Compile-time checks of the types derived from the schema: `tsc --noEmit` (or tap --typecheck)
// fails here when a helper in schema.ts turns a setting into the wrong type.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const assert = <T extends true>(): T => true as T

type Http = Extract<IdentityConfig, { type: 'http' }>
type StaticUser = Extract<IdentityConfig, { type: 'static' }>['users'][number]
const checks = [
  assert<Equal<AuthConfig['accessTokenTtl'], number>>(),
  assert<Equal<RawConfig['auth']['accessTokenTtl'], string | number>>(),
  assert<Equal<Http['timeout'], number>>(),
  assert<Equal<RouteConfig['timeout'], number>>(),
  assert<Equal<NonNullable<RouteConfig['rateLimit']>['window'], number>>(),
  assert<Equal<GatewayConfig['rateLimits']['login']['perUser'], { max: number; window: number }>>(),
  assert<Equal<KeysConfig['algorithm'], 'ES256' | 'EdDSA' | 'RS256' | 'HS256'>>(),
  assert<Equal<GatewayConfig['store']['type'], 'memory' | 'redis' | 'redis-cluster' | 'redis-sentinel'>>(),
  assert<Equal<RouteConfig['auth'], 'required' | 'optional' | 'none'>>(),
  assert<Equal<GatewayConfig['server']['workers'], number | 'auto'>>(),
  assert<Equal<GatewayConfig['server']['demoUpstream'], number | null>>(),
  assert<Equal<GatewayConfig['auth']['cookies']['domain'], string | null>>(),
  assert<Equal<StaticUser['claims'], Record<string, unknown>>>(),
  assert<Equal<StaticUser['subject'], string | undefined>>(),
  assert<Equal<GatewayConfig['source'], string | null>>(),
]

t.test('the config types derived from the schema have durations as numbers and closed sets as literals', async (t) => {
  t.equal(checks.length, 15)
})
