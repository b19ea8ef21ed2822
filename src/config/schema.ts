/**
 * The single source of truth for `gateway.yaml`.
 *
 * The TypeBox schema below is (1) the JSON Schema that validates a file (published as
 * `config/gateway.schema.json` for editors), and (2) where the TypeScript types come from:
 * `RawConfig` is what a file may contain, `GatewayConfig` is what the loader hands out after
 * defaults, `${VAR}` expansion, durations (as milliseconds) and relative paths are resolved.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

/** `"500ms"`, `"30s"`, `"10m"`, `"12h"`, `"14d"` or an integer number of seconds. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$'
const Duration = (def: string, description: string) =>
  Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Integer({ minimum: 0 })], {
    default: def,
    description,
    'x-duration': true,
  })

const Strict = { additionalProperties: false } as const
const obj = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { ...Strict, default: {}, ...(description ? { description } : {}) })

const Limit = (max: number, window: string, description: string) =>
  Type.Object(
    { max: Type.Integer({ minimum: 1, default: max }), window: Duration(window, 'the window the count applies to') },
    { ...Strict, default: { max, window }, description },
  )

const Server = obj({
  host: Type.String({ default: '0.0.0.0', description: 'address to listen on' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'port to listen on (0 = any free port)' }),
  trustProxy: Type.Boolean({ default: false, description: 'believe X-Forwarded-For/Proto from the peer' }),
  workers: Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], {
    default: 1,
    description: '"auto" = one process per CPU; more than 1 needs a shared store (not memory)',
  }),
  bodyLimit: Type.Integer({ minimum: 1024, default: 1048576, description: 'largest request body in bytes (413 above)' }),
  maxHeaderSize: Type.Integer({ minimum: 4096, maximum: 1048576, default: 16384, description: 'largest request head in bytes (431 above)' }),
  requestTimeout: Duration('60s', 'time allowed to receive a whole request (408 after)'),
  headersTimeout: Duration('20s', 'time allowed to receive the request head'),
  keepAliveTimeout: Duration('72s', 'idle keep-alive connection lifetime'),
  shutdownTimeout: Duration('25s', 'on SIGTERM, how long in-flight requests may take before the process exits'),
  logLevel: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' },
  ),
  demoUpstream: Type.Union([Type.Null(), Type.Integer({ minimum: 0, maximum: 65535 })], {
    default: null,
    description: 'start the built-in echo upstream on 127.0.0.1:<port> (for the demo config only)',
  }),
})

const Cookies = obj({
  secure: Type.Boolean({ default: true, description: 'Secure cookies with __Host-/__Secure- names; false only for plain-http development' }),
  sameSite: Type.Union([Type.Literal('lax'), Type.Literal('strict')], { default: 'lax' }),
  domain: Type.Union([Type.Null(), Type.String({ minLength: 1 })], { default: null }),
})

const SigningKey = Type.Union([
  Type.Object(
    {
      kid: Type.String({ minLength: 1, maxLength: 128 }),
      privateKeyFile: Type.String({ minLength: 1, description: 'PKCS#8 PEM, relative to the config file' }),
    },
    Strict,
  ),
  Type.Object(
    {
      kid: Type.String({ minLength: 1, maxLength: 128 }),
      publicKeyFile: Type.String({ minLength: 1, description: 'SPKI PEM; verifies only (a retired key)' }),
    },
    Strict,
  ),
  Type.Object(
    {
      kid: Type.String({ minLength: 1, maxLength: 128 }),
      secret: Type.String({ minLength: 1, description: 'HS256 shared secret, at least 32 bytes' }),
    },
    Strict,
  ),
])

const Keys = obj({
  algorithm: Type.Union(['ES256', 'EdDSA', 'RS256', 'HS256'].map((a) => Type.Literal(a)), { default: 'ES256' }),
  signing: Type.Array(SigningKey, {
    minItems: 1,
    description: 'the first entry signs; every entry verifies; public parts go to the JWKS',
  }),
})

const StaticUser = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256 }),
    passwordHash: Type.String({ minLength: 1, description: 'made by `portcullis hash-password`' }),
    subject: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    roles: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    claims: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  },
  Strict,
)

const Identity = Type.Union([
  Type.Object({ type: Type.Literal('static'), users: Type.Array(StaticUser, { default: [] }) }, Strict),
  Type.Object(
    {
      type: Type.Literal('http'),
      url: Type.String({ pattern: '^https?://', description: 'POST {"username","password"}; 200 {"subject","roles"?,"claims"?} = valid' }),
      timeout: Duration('2s', 'no answer within it = 503 identity_unavailable'),
    },
    Strict,
  ),
])

const Auth = obj({
  basePath: Type.String({ pattern: '^/[A-Za-z0-9._~/-]*$', default: '/auth' }),
  issuer: Type.String({ minLength: 1, default: 'portcullis' }),
  audience: Type.String({ minLength: 1, default: 'portcullis' }),
  accessTokenTtl: Duration('10m', 'lifetime of an access token'),
  refreshTokenTtl: Duration('14d', 'idle (sliding) lifetime of a session'),
  sessionMaxAge: Duration('30d', 'absolute lifetime of a session'),
  refreshReuseGrace: Duration('10s', 'window in which the just-rotated refresh token returns the same successor'),
  clockTolerance: Duration('30s', 'leeway for exp/nbf checks'),
  maxSessionsPerUser: Type.Integer({ minimum: 1, maximum: 10000, default: 50, description: 'oldest sessions are ended beyond it' }),
  allowedOrigins: Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), {
    default: [],
    description: "origins allowed to make cookie-authenticated unsafe requests; the gateway's own origin always is",
  }),
  signInPage: Type.Boolean({ default: false }),
  cookies: Cookies,
  keys: Type.Optional(Keys),
  identity: Type.Array(Identity, { default: [], description: 'credential sources, tried in order' }),
})

const Store = obj({
  type: Type.Union(['memory', 'redis', 'redis-cluster', 'redis-sentinel'].map((t) => Type.Literal(t)), { default: 'memory' }),
  url: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379/0' }),
  nodes: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  sentinels: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  name: Type.String({ minLength: 1, default: 'mymaster' }),
  password: Type.Optional(Type.String()),
  keyPrefix: Type.String({ default: 'portcullis:' }),
  commandTimeout: Duration('500ms', 'a store call slower than this fails with 503 store_unavailable'),
})

const Revocation = obj({
  mode: Type.Union([Type.Literal('cached'), Type.Literal('strict'), Type.Literal('off')], { default: 'cached' }),
  resyncInterval: Duration('30s', 'cached mode: full resync of the revoked-session set'),
})

const RateLimits = obj({
  login: obj({
    perUser: Limit(10, '15m', 'failed sign-ins per username, then 429'),
    perClient: Limit(100, '1m', 'sign-in attempts per client address'),
  }),
  refresh: obj({
    perSession: Limit(30, '1m', 'refreshes per session'),
  }),
})

const Route = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', maxLength: 64, description: 'unique; used in logs and metric labels' }),
    prefix: Type.String({ pattern: '^/', description: 'matched by longest prefix, on segment boundaries' }),
    upstream: Type.String({ pattern: '^https?://[^/?#]+(/[^?#]*)?$' }),
    rewritePrefix: Type.Optional(Type.String({ pattern: '^/' })),
    auth: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('none')], { default: 'required' }),
    roles: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    websocket: Type.Boolean({ default: false }),
    timeout: Duration('30s', 'upstream response timeout, then 504'),
    connectTimeout: Duration('5s', 'upstream connect timeout, then 502'),
    forwardAuthorization: Type.Boolean({ default: false }),
    rateLimit: Type.Optional(Limit(100, '1m', 'requests per client address on this route')),
  },
  Strict,
)

const Admin = obj({ role: Type.String({ minLength: 1, default: 'admin' }) })

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    server: Server,
    auth: Auth,
    store: Store,
    revocation: Revocation,
    admin: Admin,
    rateLimits: RateLimits,
    routes: Type.Array(Route, { default: [] }),
  },
  { ...Strict, title: 'Portcullis gateway.yaml', $id: 'https://portcullis.dev/schema/gateway.json' },
)

export type RawConfig = Static<typeof ConfigSchema>

/** Replaces every duration field's type (string | number) with milliseconds. */
type Ms<T> = T extends string | number
  ? T
  : T extends (infer U)[]
    ? Ms<U>[]
    : T extends object
      ? { [K in keyof T]: Ms<T[K]> }
      : T
type Durations<T> = {
  [K in keyof T]: T[K] extends string | number
    ? string extends T[K]
      ? number extends T[K]
        ? number
        : T[K]
      : T[K]
    : Ms<Durations<T[K]>>
}

/** What the loader hands out: defaults applied, `${VAR}` expanded, durations in ms, paths absolute. */
export type GatewayConfig = Durations<RawConfig> & {
  /** Absolute path of the file this generation was loaded from (null when built in code). */
  readonly source: string | null
}
export type RouteConfig = GatewayConfig['routes'][number]
export type AuthConfig = GatewayConfig['auth']
export type StoreConfig = GatewayConfig['store']
export type KeysConfig = NonNullable<AuthConfig['keys']>
export type IdentityConfig = AuthConfig['identity'][number]
