/**
 * The single source of truth for `gateway.yaml`.
 *
 * The TypeBox schema below is (1) the JSON Schema that validates a file (published as
 * `config/gateway.schema.json` for editors), and (2) where the TypeScript types come from:
 * `RawConfig` is a file's content once schema defaults are filled in, `GatewayConfig` is what
 * the loader hands out after `${VAR}` expansion, durations (as milliseconds) and relative
 * paths are resolved. `json-schema.ts` derives the published, editor-facing form.
 */
import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox'

/** `"500ms"`, `"30s"`, `"10m"`, `"12h"`, `"14d"` or an integer number of seconds. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$'

/**
 * Annotation keywords of our own. `x-duration` marks a duration (the loader converts it to
 * milliseconds); `x-expected` is the human wording of a `pattern`, used in error messages.
 */
export const ANNOTATIONS = ['x-duration', 'x-expected'] as const

/**
 * A closed set of strings as a JSON Schema `enum`: one readable error ("must be one of ...")
 * instead of one per literal, and a literal union as its static type. (`Type.Union` over
 * `values.map(Type.Literal)` would type as plain `string`.)
 */
const OneOf = <const T extends readonly string[]>(values: T, opts: SchemaOptions = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts })

/** A string matching `pattern`; `expected` words the rule for error messages. */
const Matching = (pattern: string, expected: string, opts: SchemaOptions = {}) => Type.String({ pattern, 'x-expected': expected, ...opts })

/**
 * A URL path: `/`-separated segments of RFC 3986 pchars, without `%`, empty segments (`//`)
 * or dot segments (`.`, `..`). Request paths are normalised before matching, so a prefix
 * that is not already normal could never match, or would match something unintended.
 * (Each repetition starts with `/`, so the regular expression cannot backtrack badly.)
 */
const PATH_PATTERN = "^(?!.*/\\.\\.?(/|$))(/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*/?$"
const PathString = (opts: SchemaOptions = {}) => Matching(PATH_PATTERN, 'a path such as /api/orders (no //, no . or .. segments, no %)', opts)
const Duration = (def: string, description: string) =>
  Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Integer({ minimum: 0 })], {
    default: def,
    description,
    'x-duration': true,
  })

const Strict = { additionalProperties: false } as const

/** An HTTP field name (RFC 9110 §5.1 token), compared without case. */
const HeaderName = (opts: SchemaOptions = {}) =>
  Matching("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", 'a header name such as x-user-email', { maxLength: 64, ...opts })
const IdentityHeaders = (description: string) =>
  Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" }), Type.String({ minLength: 1 }), { default: {}, description })
const obj = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { ...Strict, default: {}, ...(description ? { description } : {}) })

const Limit = (max: number, window: string, description: string) =>
  Type.Object(
    {
      max: Type.Integer({ minimum: 1, default: max, description: 'how many are allowed in one window' }),
      window: Duration(window, 'the window the count applies to'),
    },
    { ...Strict, default: { max, window }, description },
  )

const Server = obj(
  {
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
    logLevel: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
    accessLog: Type.Boolean({ default: true, description: 'one JSON line per request (method, path, route, status, duration, request id)' }),
    demoUpstream: Type.Union([Type.Null(), Type.Integer({ minimum: 0, maximum: 65535 })], {
      default: null,
      description: 'start the built-in echo upstream on 127.0.0.1:<port> (for the demo config only)',
    }),
    // No default: without it there is no second listener and /metrics stays on the public one.
    admin: Type.Optional(
      Type.Object(
        {
          host: Type.String({ default: '127.0.0.1', description: "address of the operators' listener" }),
          port: Type.Integer({ minimum: 0, maximum: 65535, default: 9901, description: "port of the operators' listener (0 = any free port)" }),
        },
        {
          ...Strict,
          description: 'a second listener for operators: /metrics is served there only (404 on the public listener), /healthz and /readyz on both',
        },
      ),
    ),
    // No default: without it server.port speaks plain HTTP.
    tls: Type.Optional(
      Type.Object(
        {
          certFile: Type.String({ minLength: 1, description: 'PEM certificate chain, relative to the config file; re-read on SIGHUP or change' }),
          keyFile: Type.String({ minLength: 1, description: 'PEM private key, relative to the config file; re-read with the certificate' }),
          http2: Type.Boolean({ default: true, description: 'offer HTTP/2 by ALPN beside HTTP/1.1 (WebSockets use HTTP/1.1)' }),
        },
        { ...Strict, description: 'HTTPS on server.port instead of plain HTTP (TLS 1.2 or later)' },
      ),
    ),
  },
  'the listening socket, client-side limits, logging and processes',
)

const Cookies = obj(
  {
    secure: Type.Boolean({ default: true, description: 'Secure cookies with __Host-/__Secure- names; false only for plain-http development' }),
    sameSite: OneOf(['lax', 'strict'], { default: 'lax', description: 'SameSite attribute of both cookies' }),
    domain: Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null,
      description: 'Domain attribute of both cookies; null = host-only (the access cookie is then named __Host-, else __Secure-)',
    }),
  },
  'attributes of the access and refresh cookies (cookie mode)',
)

const Kid = Type.String({
  minLength: 1,
  maxLength: 128,
  description: 'key id: named in the header of the tokens it signs, and how a token picks its key when verified',
})

const SigningKey = Type.Union([
  Type.Object(
    {
      kid: Kid,
      privateKeyFile: Type.String({ minLength: 1, description: 'PKCS#8 PEM, relative to the config file' }),
    },
    Strict,
  ),
  Type.Object(
    {
      kid: Kid,
      publicKeyFile: Type.String({ minLength: 1, description: 'SPKI PEM; verifies only (a retired key)' }),
    },
    Strict,
  ),
  Type.Object(
    {
      kid: Kid,
      secret: Type.String({ minLength: 1, description: 'HS256 shared secret, at least 32 bytes' }),
    },
    Strict,
  ),
])

// No default: without `keys` the gateway generates an ephemeral key (and says so).
const Keys = Type.Object(
  {
    algorithm: OneOf(['ES256', 'EdDSA', 'RS256', 'HS256'], {
      default: 'ES256',
      description: 'the one algorithm tokens are signed and verified with (pinned: a token naming another is refused)',
    }),
    signing: Type.Optional(
      Type.Array(SigningKey, {
        minItems: 1,
        description: 'the first entry signs; every entry verifies; public parts go to the JWKS',
      }),
    ),
    managed: Type.Optional(
      Type.Object(
        {
          rotateEvery: Duration('30d', 'how long each key signs before the next takes over'),
          publishAhead: Duration('1d', 'a new key is in the JWKS this long before it signs (and JWKS caching never outlasts it)'),
          encryptionKey: Type.String({
            minLength: 32,
            description: 'at least 32 bytes; private keys are kept in the store encrypted with it (AES-256-GCM)',
          }),
        },
        { ...Strict, description: 'instead of signing: the gateway makes, shares (through the store) and rotates its own keys' },
      ),
    ),
  },
  { ...Strict, description: 'signing keys (signing or managed); without them an ephemeral key is generated at each start (a warning says so)' },
)

const StaticUser = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256, description: 'the name typed at sign-in (compared exactly)' }),
    passwordHash: Type.String({ minLength: 1, description: 'made by `portcullis hash-password`' }),
    subject: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'the `sub` of its tokens and x-user-id upstream; default: the username' }),
    ),
    roles: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'the `roles` of its tokens, joined by "," in x-user-roles upstream',
    }),
    claims: Type.Record(Type.String(), Type.Unknown(), {
      default: {},
      description: 'extra claims put in its access tokens (registered claim names are ignored)',
    }),
  },
  Strict,
)

const Identity = Type.Union([
  Type.Object(
    {
      type: Type.Literal('static', {
        description: 'the kind of source: static (users listed here), http (a user service) or oidc (an OpenID Provider)',
      }),
      users: Type.Array(StaticUser, { default: [], description: 'the users of this source' }),
    },
    Strict,
  ),
  Type.Object(
    {
      type: Type.Literal('http', {
        description: 'the kind of source: static (users listed here), http (a user service) or oidc (an OpenID Provider)',
      }),
      url: Matching('^https?://', 'an http:// or https:// URL', {
        description: 'POST {"username","password"}; 200 {"subject","roles"?,"claims"?} = valid',
      }),
      timeout: Duration('2s', 'no answer within it = 503 identity_unavailable'),
    },
    Strict,
  ),
  Type.Object(
    {
      type: Type.Literal('oidc', { description: 'sign-in through an external OpenID Provider (Authorization Code flow with PKCE)' }),
      name: Matching('^[a-z0-9-]{1,32}$', 'lower-case letters, digits and "-" (at most 32)', {
        description: 'unique among oidc sources; in its URLs ({basePath}/oidc/NAME/...) and its sessions',
      }),
      displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the sign-in page says "Sign in with" it; default: name' })),
      issuer: Matching('^https?://[^\\s]+$', 'an https:// URL (http:// only for development)', {
        description: "the provider's issuer; discovery reads {issuer}/.well-known/openid-configuration",
      }),
      clientId: Type.String({ minLength: 1, description: 'the client id registered at the provider' }),
      clientSecret: Type.String({ minLength: 1, description: 'its secret, sent as client_secret_basic' }),
      scopes: Type.Array(Type.String({ minLength: 1, pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$' }), {
        default: ['openid', 'profile', 'email'],
        description: 'scopes asked for; must include openid',
      }),
      subjectClaim: Type.String({ minLength: 1, default: 'sub', description: 'the claim that becomes the Portcullis subject (x-user-id)' }),
      rolesClaim: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
        default: null,
        description: 'the claim holding roles: a claim name, else a dot path such as realm_access.roles; a list of strings or one string',
      }),
      defaultRoles: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'roles every user of this source gets' }),
      claims: Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description: 'claims copied into the access token (registered names are ignored)',
      }),
      redirectUri: Type.Union([Matching('^https?://[^\\s]+$', 'an http:// or https:// URL'), Type.Null()], {
        default: null,
        description: "where the provider sends the browser back; default: the request's origin + {basePath}/oidc/NAME/callback",
      }),
      postLogoutRedirectUri: Type.Union([Matching('^https?://[^\\s]+$', 'an http:// or https:// URL'), Type.Null()], {
        default: null,
        description:
          "where the provider sends the browser after {basePath}/oidc/NAME/logout; default: the request's origin + the sign-in page (or /)",
      }),
      requireClaims: Type.Record(
        Type.String({ minLength: 1 }),
        Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Array(Type.String(), { minItems: 1 })]),
        {
          default: {},
          description:
            'claim (name or dot path) → required value, or a list of which any will do; a list claim must contain one. Otherwise 403 forbidden',
        },
      ),
      authorizationParams: Type.Record(Type.String({ minLength: 1 }), Type.String(), {
        default: {},
        description: 'extra parameters of the authorization request, e.g. { hd: example.com } or { prompt: login }',
      }),
      timeout: Duration('5s', 'each call to the provider; no answer within it = 503 identity_unavailable'),
    },
    Strict,
  ),
])

const Auth = obj(
  {
    basePath: PathString({ default: '/auth', description: 'all auth endpoints live under it' }),
    issuer: Type.String({ minLength: 1, default: 'portcullis', description: 'the `iss` of every access token (checked on every request)' }),
    audience: Type.String({ minLength: 1, default: 'portcullis', description: 'the `aud` of every access token (checked on every request)' }),
    accessTokenTtl: Duration('10m', 'lifetime of an access token'),
    refreshTokenTtl: Duration('14d', 'idle (sliding) lifetime of a session'),
    sessionMaxAge: Duration('30d', 'absolute lifetime of a session'),
    refreshReuseGrace: Duration('10s', 'window in which the just-rotated refresh token returns the same successor'),
    clockTolerance: Duration('30s', 'leeway for exp/nbf checks'),
    tokenCache: obj(
      {
        maxMemory: Type.Integer({
          minimum: 0,
          default: 134217728,
          description:
            'bytes of heap the verified-token cache may hold (0 = no cache): an access token of ours without custom claims costs about 1.2 KB (1.75 bytes per token character + 480), so the default 128 MiB holds about 110,000; the least recently used go first',
        }),
      },
      'the cache of verified access tokens, one per process: a token in it costs no signature check',
    ),
    maxSessionsPerUser: Type.Integer({ minimum: 1, maximum: 10000, default: 50, description: 'oldest sessions are ended beyond it' }),
    allowedOrigins: Type.Array(Matching('^https?://[^/]+$', 'an origin such as https://app.example.com (no path)'), {
      default: [],
      description: "origins allowed to make cookie-authenticated unsafe requests; the gateway's own origin always is",
    }),
    signInPage: Type.Boolean({
      default: false,
      description: 'send unauthenticated browser navigations on protected routes to a sign-in page under basePath instead of a 401',
    }),
    cookies: Cookies,
    keys: Type.Optional(Keys),
    assertion: obj(
      {
        header: HeaderName({ default: 'x-portcullis-assertion', description: 'the request header that carries the assertion upstream' }),
        ttl: Duration('60s', "an assertion's lifetime; never past its access token's exp"),
      },
      'identity assertions for routes with identityAssertion (signed by the active key, verifiable with the JWKS)',
    ),
    identityHeaders: IdentityHeaders(
      'on every authenticated route: request header → the claim it carries (name or dot path), e.g. x-user-email: email',
    ),
    identity: Type.Array(Identity, { default: [], description: 'credential sources, tried in order' }),
  },
  'sign-in, tokens, sessions and cookies',
)

const Store = obj(
  {
    type: OneOf(['memory', 'redis', 'redis-cluster', 'redis-sentinel'], {
      default: 'memory',
      description: 'where sessions and revocations live; memory is one process only, the redis types share them across instances',
    }),
    url: Matching('^rediss?://', 'a redis:// or rediss:// URL', { default: 'redis://127.0.0.1:6379/0', description: 'type redis: the server' }),
    nodes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'type redis-cluster: some of its nodes, host:port or redis:// URLs',
    }),
    sentinels: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'type redis-sentinel: the sentinels, host:port (port 26379 by default)',
    }),
    name: Type.String({ minLength: 1, default: 'mymaster', description: "type redis-sentinel: the monitored master's name" }),
    password: Type.Optional(Type.String({ description: 'Redis AUTH password (for every redis type)' })),
    keyPrefix: Type.String({ default: 'portcullis:', description: 'prefix of every Redis key; instances sharing it share sessions' }),
    commandTimeout: Duration('500ms', 'a store call slower than this fails with 503 store_unavailable'),
  },
  'the session store',
)

const Revocation = obj(
  {
    mode: OneOf(['cached', 'strict', 'off'], {
      default: 'cached',
      description:
        'cached: ended sessions kept in memory, synced through the store; strict: the store asked on every request; off: signature and claims only',
    }),
    resyncInterval: Duration('30s', 'cached mode: full resync of the revoked-session set'),
  },
  'how ended sessions make their access tokens fail before they expire',
)

const Events = obj(
  {
    webhook: Type.Optional(
      Type.Object(
        {
          url: Matching('^https?://[^\\s]+$', 'an http:// or https:// URL', { description: 'where security events are POSTed as JSON' }),
          secret: Type.String({ minLength: 16, description: 'signs every delivery: HMAC-SHA256 over the timestamp and the body' }),
          timeout: Duration('2s', 'one delivery attempt; then it is retried with backoff'),
        },
        { ...Strict, description: 'security events: session.created, session.ended, refresh.reuse_detected, login.rate_limited' },
      ),
    ),
  },
  'security events, to a webhook and the log',
)

const RateLimits = obj(
  {
    login: obj(
      {
        perUser: Limit(10, '15m', 'failed sign-ins per username, then 429'),
        perClient: Limit(100, '1m', 'sign-in attempts per client address'),
      },
      'limits on POST {basePath}/login',
    ),
    refresh: obj(
      {
        perSession: Limit(30, '1m', 'refreshes per session'),
      },
      'limits on POST {basePath}/refresh',
    ),
    invalidTokens: obj(
      {
        perClient: Limit(
          20,
          '10s',
          'failed access-token signature checks per client address; beyond it that address waits behind the others for checks (never refused for it)',
        ),
      },
      'the budget of failed signature checks (forged-token floods)',
    ),
  },
  'rate limits (429 rate_limited with Retry-After beyond them)',
)

const Route = Type.Object(
  {
    name: Matching('^[A-Za-z0-9_.-]+$', 'letters, digits, _ . or -', {
      maxLength: 64,
      description: 'unique; used in logs and metric labels',
    }),
    prefix: PathString({ description: 'matched by longest prefix, on segment boundaries, case-sensitively' }),
    upstream: Matching('^https?://[^/?#]+(/[^?#]*)?$', 'an http:// or https:// URL without query or fragment', {
      description: 'where requests go; a path on it is put before the forwarded path',
    }),
    rewritePrefix: Type.Optional(PathString({ description: 'replaces the prefix upstream; default: the prefix itself' })),
    auth: OneOf(['required', 'optional', 'none'], {
      default: 'required',
      description: 'required: a valid access token or 401; optional: checked when presented; none: not read (identity headers still stripped)',
    }),
    roles: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'the caller needs any one of them, else 403 forbidden' }),
    ),
    websocket: Type.Boolean({ default: false, description: 'accept WebSocket upgrades (authenticated like any request)' }),
    timeout: Duration('30s', 'upstream response timeout, then 504'),
    connectTimeout: Duration('5s', 'upstream connect timeout, then 502'),
    forwardAuthorization: Type.Boolean({ default: false, description: "pass the client's Authorization header upstream (removed otherwise)" }),
    identityAssertion: Type.Union(
      [Type.Boolean(), Type.Object({ audience: Type.String({ minLength: 1, description: "the assertion's aud" }) }, Strict)],
      {
        default: false,
        description: "send a signed identity assertion upstream (auth.assertion.header); true: its aud is the upstream's origin",
      },
    ),
    identityHeaders: Type.Optional(IdentityHeaders('request header → claim for this route, over auth.identityHeaders')),
    revocation: Type.Optional(
      OneOf(['cached', 'strict', 'off'], { description: 'this route only: overrides revocation.mode (e.g. strict for payments)' }),
    ),
    maxAuthAge: Type.Optional(
      Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Integer({ minimum: 1 })], {
        description: "the session's last sign-in (auth_time) must be this recent, else 401 reauthentication_required",
        'x-duration': true,
      }),
    ),
    // No object-level default: a route has a request limit only when it declares one.
    rateLimit: Type.Optional(
      Type.Object(
        {
          max: Type.Integer({ minimum: 1, default: 100, description: 'how many are allowed in one window' }),
          window: Duration('1m', 'the window the count applies to'),
        },
        { ...Strict, description: 'requests per client address on this route' },
      ),
    ),
  },
  Strict,
)

const Admin = obj(
  { role: Type.String({ minLength: 1, default: 'admin', description: 'the role that may use the admin endpoints' }) },
  'the admin endpoints under {basePath}/admin',
)

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'ignored; lets editors find the JSON Schema' })),
    server: Server,
    auth: Auth,
    store: Store,
    revocation: Revocation,
    events: Events,
    admin: Admin,
    rateLimits: RateLimits,
    routes: Type.Array(Route, { default: [], description: 'the proxied routes, matched by longest prefix' }),
  },
  { ...Strict, title: 'Portcullis gateway.yaml', $id: 'https://portcullis.dev/schema/gateway.json' },
)

export type RawConfig = Static<typeof ConfigSchema>

/**
 * What a setting becomes once loaded. Durations are the only settings typed exactly
 * `string | number`, and they become milliseconds; everything else keeps its type.
 * (`unknown` is passed through first: it would otherwise recurse forever below.)
 */
type Loaded<T> = unknown extends T
  ? T
  : undefined extends T
    ? Loaded<Exclude<T, undefined>> | undefined
    : [T] extends [string | number]
      ? [string | number] extends [T]
        ? number
        : T
      : T extends readonly (infer U)[]
        ? Loaded<U>[]
        : T extends object
          ? { [K in keyof T]: Loaded<T[K]> }
          : T

/** What the loader hands out: defaults applied, `${VAR}` expanded, durations in ms, paths absolute. */
export type GatewayConfig = Loaded<RawConfig> & {
  /** Absolute path of the file this generation was loaded from (null when built in code). */
  readonly source: string | null
}
export type RouteConfig = GatewayConfig['routes'][number]
export type AuthConfig = GatewayConfig['auth']
export type StoreConfig = GatewayConfig['store']
export type KeysConfig = NonNullable<AuthConfig['keys']>
export type IdentityConfig = AuthConfig['identity'][number]
export type OidcConfig = Extract<IdentityConfig, { type: 'oidc' }>
