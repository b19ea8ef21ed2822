/**
 * buildGateway(config, deps) → a ready-to-use Fastify instance for one config generation.
 * It never listens: main.ts (or a test) decides where requests come from.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import Fastify, { LogController, type FastifyInstance, type FastifyServerFactory } from 'fastify'
import type { Logger } from 'pino'
import type { Authenticated, Authenticator } from './auth/authenticate.js'
import { cookieNames } from './auth/cookies.js'
import type { IdentitySource } from './auth/identity/types.js'
import type { Keyring } from './auth/keys.js'
import { CheckGate } from './auth/check-gate.js'
import { FailureBudget } from './auth/failure-budget.js'
import { createVerifier } from './auth/verify.js'
import { RESERVED_PATHS } from './config/check-routes.js'
import type { GatewayConfig } from './config/schema.js'
import { GatewayError } from './errors.js'
import { errorHandler, notFoundHandler, sendProblem } from './ops/error-handler.js'
import { SecurityEvents } from './ops/events.js'
import { healthRoutes, type Readiness } from './ops/health.js'
import { instrumentStore } from './ops/instrument-store.js'
import { accessLogFor, cutShortStatus } from './ops/access-log.js'
import { requestId } from './ops/logger.js'
import { requestLoggerFactory } from './ops/request-logger.js'
import { GatewayMetrics } from './ops/metrics.js'
import { metricsRoutes } from './ops/metrics-route.js'
import { createLimiters, type RateLimitStore } from './ops/rate-limit.js'
import { createMemoryRateLimitStore } from './ops/rate-limit-memory.js'
import { untraced, type Traces } from './ops/tracing/request-trace.js'
import { identityHeaderStripper } from './proxy/headers.js'
import { normalizeTarget, RouteTable } from './proxy/normalize.js'
import { LiveSockets } from './proxy/live-sockets.js'
import { proxyRoutes, type ProxyContext } from './proxy/routes.js'
import { earlyVerify, type EarlyAnswer } from './proxy/verify-early.js'
import { verifyEndpoint, type ForwardAuth } from './proxy/verify-endpoint.js'
import { revocationCheck } from './revocation/check.js'
import type { RevocationSet } from './revocation/set.js'
import type { SessionStore } from './sessions/types.js'
import { sessionRoutes } from './auth/routes.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by authentication on protected routes and session endpoints. */
    auth: Authenticated | null
    /** The configured route that served this request, for logs and metrics. */
    routeName: string
  }
}

export interface GatewayDeps {
  logger: Logger
  keyring: Keyring
  store: SessionStore
  revocations: RevocationSet
  identity: IdentitySource
  readiness?: Readiness
  /** Injected clock (ms). */
  now?: () => number
  /** Supplied by main.ts so one long-lived http.Server can serve successive generations. */
  serverFactory?: FastifyServerFactory
  /** The process's metrics (main.ts); without it the gateway keeps a private registry. */
  metrics?: GatewayMetrics
  /** Where rate-limit hits are counted (main.ts: Redis with a Redis store); memory by default. */
  rateLimitStore?: RateLimitStore
  /** OpenTelemetry spans (main.ts, when an OTLP endpoint is set); W3C trace context is passed on either way. */
  tracing?: Traces
  /** The process's security events (main.ts, with events.webhook); without it they go to the log only. */
  events?: SecurityEvents
}

const kBadTarget = Symbol('portcullis.badTarget')

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

export async function buildGateway(config: GatewayConfig, deps: GatewayDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now
  const traces = deps.tracing ?? untraced
  const { server, auth } = config
  const metrics = deps.metrics ?? new GatewayMetrics()
  if (!deps.metrics) metrics.watch({ store: deps.store, revocations: deps.revocations })
  const events = deps.events ?? new SecurityEvents({ logger: deps.logger, now })
  const store = traces.store(instrumentStore(deps.store, metrics, events))
  const limiters = createLimiters(config, deps.rateLimitStore ?? createMemoryRateLimitStore(now), { metrics, log: deps.logger, now, events })
  // Every prefix a path can be routed by, so that no path parameter moves a request to another.
  const routeTable = new RouteTable([...config.routes.map((r) => r.prefix), auth.basePath, ...RESERVED_PATHS])
  // Forward-auth's answer before routing (src/proxy/verify-early.ts), once its routes exist.
  let early: EarlyAnswer | null = null
  const serverFactory = deps.serverFactory
  const app = Fastify({
    loggerInstance: deps.logger,
    genReqId: requestId,
    // request.log is made only when a request logs through it (most never do).
    childLoggerFactory: requestLoggerFactory,
    trustProxy: server.trustProxy,
    bodyLimit: server.bodyLimit,
    // One access line per request, written by our onResponse hook, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    ...(serverFactory
      ? {
          serverFactory: ((handler: RequestHandler, options: unknown) =>
            serverFactory((req, res) => {
              if (early === null || !early(req, res, handler)) handler(req, res)
            }, options as never)) as unknown as FastifyServerFactory,
        }
      : {}),
    // Errors Fastify answers before any hook runs (a URL its router cannot decode, a bad
    // Content-Type header): the same JSON problem bodies as everything else.
    frameworkErrors: (error, _request, reply) => {
      sendProblem(reply, new GatewayError(error.statusCode === 404 ? 'not_found' : 'invalid_request', undefined, { cause: error }))
    },
    // Runs before routing: the route is chosen on the normalised path only.
    rewriteUrl(req) {
      const url = req.url ?? '/'
      const normalised = normalizeTarget(url, routeTable)
      if (normalised === null) {
        ;(req as unknown as Record<symbol, boolean>)[kBadTarget] = true
        return '/'
      }
      return normalised
    },
  }) as unknown as FastifyInstance

  app.decorateRequest('auth', null)
  app.decorateRequest('routeName', '')
  app.decorateRequest('trace', null)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)

  // Every name the gateway sends identity under, on any route: the assertion header too.
  const stripIdentity = identityHeaderStripper([
    auth.assertion.header,
    ...Object.keys(auth.identityHeaders),
    ...config.routes.flatMap((r) => Object.keys(r.identityHeaders ?? {})),
  ])
  // Hooks on every request are callback-style: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    request.trace = traces.begin(request, reply)
    reply.header('x-request-id', request.id)
    // On every route and every error path: a client never speaks for the gateway.
    stripIdentity(request.headers)
    if ((request.raw as unknown as Record<symbol, boolean>)[kBadTarget]) {
      return done(new GatewayError('invalid_request', 'invalid request target'))
    }
    done()
  })
  traces.attach(app)
  const accessLog = server.accessLog ? accessLogFor(deps.logger) : null
  if (accessLog) {
    app.addHook('onResponse', (request, reply, done) => {
      accessLog.record(request, reply)
      done()
    })
  }

  const authenticator: Authenticator = {
    verify: createVerifier({
      failures: new FailureBudget({
        max: config.rateLimits.invalidTokens.perClient.max,
        window: config.rateLimits.invalidTokens.perClient.window,
        now,
      }),
      gate: new CheckGate(),
      observeCheck: (deferred, valid) => metrics.signatureCheck(deferred, valid),
      keyring: deps.keyring,
      issuer: auth.issuer,
      audience: auth.audience,
      clockTolerance: auth.clockTolerance,
      maxLifetime: auth.accessTokenTtl,
      cacheSize: auth.tokenCache.maxMemory,
      cacheStats: metrics.tokenCache,
      now,
    }),
    isRevoked: revocationCheck(config.revocation.mode, deps.revocations, deps.store, now),
    accessCookie: cookieNames(auth).access,
    allowedOrigins: new Set(auth.allowedOrigins),
    observe: (outcome) => metrics.auth(outcome),
    syncRevocation: config.revocation.mode !== 'strict',
  }

  metricsRoutes(app, metrics, { serve: !server.admin })
  healthRoutes(
    app,
    deps.readiness ?? {
      notReadyBecause: async () =>
        deps.store.ping().then(
          () => null,
          () => 'store unreachable',
        ),
    },
  )
  app.get('/.well-known/jwks.json', async (_req, reply) => {
    // Managed keys: cached for at most half of publishAhead, so an upstream holds a new key
    // before the first token it signs (docs/keys.md). Read per request: the keyring is live.
    reply.header('cache-control', `public, max-age=${deps.keyring.jwksMaxAge}`)
    return deps.keyring.jwks
  })
  // biome-ignore lint/nursery/noMisusedPromises: Fastify awaits an async plugin (FastifyPluginAsync); the rule reads only the callback overload
  await app.register(sessionRoutes, { prefix: auth.basePath, config, deps: { ...deps, store, events }, authenticator, now, metrics, limiters })
  // Open WebSockets close when their session ends, on whichever instance it was ended.
  const liveSockets = new LiveSockets({ store, revocations: deps.revocations, mode: config.revocation.mode, now, log: deps.logger })
  const stopClosingSockets = deps.revocations.subscribe((event) => liveSockets.revoked(event))
  app.addHook('onClose', (_instance, done) => {
    stopClosingSockets()
    liveSockets.stop()
    done()
  })
  const proxy: ProxyContext = {
    authenticator,
    trustProxy: server.trustProxy,
    bodyLimit: server.bodyLimit,
    metrics,
    limiters,
    signInPage: auth.signInPage ? auth.basePath : null,
    authenticatorFor: (mode) => ({
      ...authenticator,
      isRevoked: revocationCheck(mode, deps.revocations, deps.store, now),
      syncRevocation: mode !== 'strict',
    }),
    keyring: deps.keyring,
    auth,
    now,
    liveSockets,
    // Fastify runs no onResponse hook for an answer cut short: counted and logged from here.
    // A client that left before the headers is 499 (as nginx has it); an upstream that broke
    // off a body counts as a 502 for the metrics, whatever status the client had received.
    cutShort: (request, reply, by) => {
      const status = by === 'upstream' ? 502 : cutShortStatus(reply)
      metrics.request(request.routeName, request.method, status, reply.elapsedTime)
      accessLog?.record(request, reply, by)
    },
  }
  await proxyRoutes(app, config.routes, proxy)
  // Forward-auth: an edge proxy asks what a proxied request would have been answered.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  // biome-ignore lint/nursery/noMisusedPromises: Fastify awaits an async plugin (FastifyPluginAsync); the rule reads only the callback overload
  await app.register(verifyEndpoint, {
    prefix: auth.basePath,
    routes: config.routes,
    routeTable,
    guards: proxy,
    // With OpenTelemetry on, every request is a span started in Fastify's hooks: no early answer.
    ...(traces === untraced && {
      early: (forward: ForwardAuth) => {
        early = earlyVerify(forward, { trustProxy: server.trustProxy, accessLog, metrics, closing: () => closing })
      },
    }),
  })
  await app.ready()
  return app
}
