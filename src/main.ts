/**
 * Process wiring: load the config, build the shared parts (store, revocation set, logger),
 * build and serve a generation, reload on demand, shut down gracefully.
 */
import cluster from 'node:cluster'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DestinationStream, Logger } from 'pino'
import { buildGateway } from './app.js'
import { createIdentityChain } from './auth/identity/index.js'
import { loadKeyring, type Keyring } from './auth/keys.js'
import { isManaged } from './auth/managed-keys.js'
import { loadGateway } from './config/gateway.js'
import type { GatewayConfig } from './config/schema.js'
import { answerPrimary } from './cli/worker-admin.js'
import { startEchoUpstream } from './demo/echo.js'
import { hostPort, listenError, openUrl } from './listen.js'
import { listenAdmin, type AdminListener } from './ops/admin-server.js'
import { checkEvictionPolicy } from './ops/eviction-policy.js'
import { SecurityEvents } from './ops/events.js'
import type { DeliveryOptions } from './ops/webhook.js'
import { createLogger } from './ops/logger.js'
import { GatewayMetrics } from './ops/metrics.js'
import { createMemoryRateLimitStore } from './ops/rate-limit-memory.js'
import { connectRedisRateLimitStore } from './ops/rate-limit-redis.js'
import { restartOnlyChanges, withRunningSettings } from './ops/restart-only.js'
import { startTracing } from './ops/tracing/otel.js'
import { RevocationSet } from './revocation/set.js'
import { RevocationSync } from './revocation/sync.js'
import { GenerationServer } from './server.js'
import { Certificates, type SecureServer } from './tls/certificates.js'
import { openStore } from './sessions/index.js'
import { openKeyset, type KeysetStore } from './sessions/keyset.js'
import type { SessionStore } from './sessions/types.js'

export interface StartOptions {
  configPath: string
  env?: Record<string, string | undefined>
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: DestinationStream
  now?: () => number
  /** The events webhook's queue bound and backoff (tests shorten them). */
  eventDelivery?: DeliveryOptions
  /** ms between looks at the managed keyset in the store (default 5 s; tests shorten it). */
  keyPollInterval?: number
}

export interface RunningGateway {
  readonly url: string
  readonly logger: Logger
  readonly server: GenerationServer
  readonly store: SessionStore
  readonly revocations: RevocationSet
  config(): GatewayConfig
  /** The keyring in use (a managed one changes under it; tests call its sync()). */
  keyring(): Keyring
  /** Loads the file again; a bad file leaves the running generation in place. */
  reload(): Promise<{ ok: true; generation: number } | { ok: false; problems: string[] }>
  /** Stops taking requests, lets in-flight ones finish (bounded), releases everything. */
  close(): Promise<void>
  /** True between the start of close() and exit: /readyz answers 503. */
  readonly draining: boolean
}

export async function startGateway(opts: StartOptions): Promise<RunningGateway> {
  const env = opts.env ?? process.env
  const now = opts.now ?? Date.now
  const warnings: string[] = []
  const first = await loadGateway(opts.configPath, env, (w) => warnings.push(w))
  let config = first.config
  const logger = createLogger(config.server.logLevel, opts.logDestination)
  for (const warning of warnings) logger.warn({ warning }, 'config warning')
  // No keys configured: a throwaway key for this process (warned about just below).
  let keyring = first.keyring ?? (await loadKeyring(undefined))
  warnIfEphemeral(keyring, config, logger)

  // One registry per process: it outlives config generations (counters survive a reload).
  const metrics = new GatewayMetrics({ processMetrics: true })
  // HTTPS: the certificate is read before anything else starts, so a bad one stops the start
  // with nothing to release.
  const certificates = config.server.tls ? await Certificates.load(config.server.tls, { log: logger, counters: metrics }) : null
  const storeLog = {
    warn(obj: object, msg: string) {
      metrics.storeError('connection')
      logger.warn(obj, msg)
    },
  }
  const store = await openStore(config, storeLog)
  // Managed keys live in the store, so they load once it is open; without them nothing can
  // be signed or verified, so a problem with them stops the start (the store is released).
  let keyset: KeysetStore | null = null
  if (isManaged(keyring)) {
    const managed = keyring
    try {
      keyset = await openKeyset(config.store, storeLog)
      await managed.start(keyset, {
        retainFor: config.auth.accessTokenTtl + config.auth.clockTolerance,
        now,
        log: logger,
        ...(opts.keyPollInterval ? { pollInterval: opts.keyPollInterval } : {}),
      })
    } catch (err) {
      managed.stop()
      await Promise.allSettled([keyset?.close(), store.close()])
      throw err
    }
    logger.info({ kid: managed.signer.kid, keys: managed.jwks.keys.length }, 'managed signing keys loaded from the store')
  }
  const eviction = config.store.type === 'memory' ? null : checkEvictionPolicy(config.store, logger, (p) => metrics.evictionPolicies(p))
  const revocations = new RevocationSet()
  const sync = new RevocationSync(store, revocations, {
    resyncInterval: config.revocation.resyncInterval,
    now,
    log: logger,
    observePropagation: (seconds) => metrics.revocationPropagated(seconds),
  })
  await sync.start()
  // Like the metrics, one per process: a reload re-points the webhook and keeps its queue.
  const events = new SecurityEvents({ logger, now, webhook: config.events.webhook, counters: metrics, delivery: opts.eventDelivery })
  metrics.watch({ store, revocations, sync, events })
  // Shared through Redis when the sessions are, so every instance counts the same hits.
  const rateLimitStore =
    config.store.type === 'memory'
      ? createMemoryRateLimitStore(now)
      : await connectRedisRateLimitStore(config.store, (err) => storeLog.warn({ err }, 'rate-limit store: redis error'))

  let demo: Server | null = null
  if (config.server.demoUpstream !== null) {
    demo = await startEchoUpstream(config.server.demoUpstream)
    logger.info({ port: (demo.address() as AddressInfo).port }, 'demo echo upstream started')
  }

  let draining = false
  const limitsRefuseWhenAway = config.store.type !== 'redis-cluster'
  const readiness = {
    async notReadyBecause() {
      if (draining) return 'shutting down'
      if (!sync.synced) return 'revocation set not yet synchronised'
      // Each Redis connection reconnects on its own backoff: ready only once all of them are
      // back, or a sign-in could still fail or a revocation made elsewhere go unheard.
      // (A Cluster's sign-in limits are counted in the instance while their slot is away.)
      const [sessions, limits] = await Promise.allSettled([store.ping(), limitsRefuseWhenAway ? rateLimitStore.ping?.() : undefined])
      if (sessions.status === 'rejected') return storeDown(sessions.reason)
      if (limits.status === 'rejected') return 'rate-limit store unreachable'
      // After the pings: a feed that came back while they were under way has a resync to finish.
      if (!sync.current) return 'revocation set resynchronising'
      return null
    },
  }
  const gen = new GenerationServer(
    {
      maxHeaderSize: config.server.maxHeaderSize,
      requestTimeout: config.server.requestTimeout,
      headersTimeout: config.server.headersTimeout,
      keepAliveTimeout: config.server.keepAliveTimeout,
    },
    logger,
    certificates && { certificate: certificates.current, http2: config.server.tls!.http2 },
  )
  certificates?.serve(gen.server as SecureServer)
  gen.server.on('clientError', (err: NodeJS.ErrnoException) => metrics.clientError(err.code))
  // OpenTelemetry, when the environment names an OTLP endpoint: one exporter for every generation.
  const tracing = startTracing(env, logger)
  const build = (cfg: GatewayConfig, ring: Keyring) =>
    gen.prepare((serverFactory) =>
      buildGateway(cfg, {
        logger,
        keyring: ring,
        store,
        revocations,
        identity: createIdentityChain(cfg.auth.identity),
        readiness,
        now,
        serverFactory,
        metrics,
        rateLimitStore,
        events,
        tracing,
      }),
    )
  await gen.activate(await build(config, keyring), config.server.shutdownTimeout)
  // With several workers the primary serves server.admin for all of them (src/cli/worker-admin.ts).
  const stopAnswering = cluster.isWorker && config.server.admin ? answerPrimary(metrics.registry, readiness) : () => {}

  let admin: AdminListener | null = null
  await new Promise<void>((resolve, reject) => {
    const { host, port } = config.server
    gen.server.once('error', (err) => reject(listenError(err, { host, port, setting: 'server.port', file: opts.configPath })))
    gen.server.listen(port, host, () => resolve())
  })
    .then(async () => {
      if (config.server.admin && !cluster.isWorker) {
        admin = await listenAdmin(
          config.server.admin,
          { metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }), readiness },
          logger,
          opts.configPath,
        )
        logger.info({ url: admin.url }, 'admin listener: /metrics, /healthz, /readyz')
      }
    })
    .catch(async (err: unknown) => {
      // A taken port: release what was started, or it would keep the process alive.
      if (gen.server.listening) gen.server.close()
      certificates?.stop()
      await gen.drainAll(0)
      sync.stop()
      stopAnswering()
      if (isManaged(keyring)) keyring.stop()
      await Promise.allSettled([
        tracing?.shutdown(),
        events.close(),
        store.close(),
        keyset?.close(),
        rateLimitStore.close(),
        eviction?.stop(),
        demo && new Promise((resolve) => demo!.close(resolve)),
      ])
      throw err
    })
  const address = gen.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const scheme = certificates ? 'https' : 'http'
  const url = `${scheme}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`
  // `url` is for people (a browser needs localhost for the cookies); `address` is the socket.
  logger.info(
    {
      url: openUrl(address, scheme),
      address: hostPort(address.address, address.port),
      routes: config.routes.map((r) => r.name),
      store: config.store.type,
    },
    'portcullis listening',
  )

  return {
    url,
    logger,
    server: gen,
    store,
    revocations,
    config: () => config,
    keyring: () => keyring,
    get draining() {
      return draining
    },
    reload: serially(async () => {
      let next: GatewayConfig
      let ring: Keyring
      let generation: Awaited<ReturnType<typeof build>>
      try {
        const { config: loaded, keyring: loadedKeys } = await loadGateway(
          opts.configPath,
          env,
          (warning) => logger.warn({ warning }, 'config warning'),
          {
            refuseEmpty: true,
          },
        )
        for (const setting of restartOnlyChanges(config, loaded)) {
          logger.warn({ setting }, 'this setting only takes effect after a restart')
        }
        next = withRunningSettings(config, loaded)
        if (isManaged(keyring) || (loadedKeys !== null && isManaged(loadedKeys))) {
          // Managed keys live as long as the process: a reload retimes them, no more.
          ;({ ring, next } = keepManagedKeys(keyring, loadedKeys, config, next, logger))
        } else {
          // Still no keys configured: keep this process's throwaway key, or every token dies.
          ring = loadedKeys ?? (keyring.ephemeral ? keyring : await loadKeyring(undefined))
        }
        if (ring !== keyring) warnIfEphemeral(ring, next, logger)
        // Building can still fail (an identity source that cannot start): same as a bad file.
        generation = await build(next, ring)
      } catch (err) {
        const problems = describeLoadError(err)
        logger.error({ problems }, 'config reload rejected; still serving the previous config')
        metrics.reload('rejected')
        // A reload re-reads the certificate too, even when the file it names is refused.
        await certificates?.reload('reload')
        return { ok: false, problems }
      }
      const previous = config
      config = next
      keyring = ring
      logger.level = next.server.logLevel
      events.configure(next.events.webhook)
      void gen.activate(generation, previous.server.shutdownTimeout)
      // server.tls's files, re-read (and moved, when the file names others).
      await certificates?.reload('reload', next.server.tls)
      logger.info({ generation: generation.id, routes: next.routes.map((r) => r.name) }, 'config reloaded')
      metrics.reload('ok')
      return { ok: true, generation: generation.id }
    }),
    async close() {
      if (draining) return
      draining = true
      logger.info('shutting down: draining in-flight requests')
      // No new connections; idle keep-alive ones close now, busy ones after their response.
      const closed = new Promise<void>((resolve) => gen.server.close(() => resolve()))
      certificates?.stop()
      gen.closeIdleConnections()
      await gen.drainAll(config.server.shutdownTimeout)
      gen.closeAllConnections()
      await closed
      // Requests have drained: no event comes after this flush (bounded like the drain).
      await events.close(Math.min(config.events.webhook?.timeout ?? 0, config.server.shutdownTimeout))
      // The last spans go out too, bounded like the drain (a collector that does not answer must not hold the exit).
      await tracing?.shutdown(config.server.shutdownTimeout)
      sync.stop()
      stopAnswering()
      if (isManaged(keyring)) keyring.stop()
      await admin?.close()
      await eviction?.stop()
      await store.close()
      await keyset?.close()
      await rateLimitStore.close()
      if (demo) await new Promise((resolve) => demo!.close(resolve))
      logger.info('shut down')
    },
  }
}

function warnIfEphemeral(keyring: Keyring, config: GatewayConfig, logger: Logger): void {
  if (!keyring.ephemeral) return
  logger.warn(
    { algorithm: keyring.algorithm, store: config.store.type },
    'no signing keys configured: using an ephemeral key. Every token dies with this process and other instances cannot verify them; configure auth.keys for production (`portcullis keys generate`).',
  )
}

/**
 * A reload where managed keys run or are asked for. rotateEvery and publishAhead apply at once;
 * a new algorithm or encryptionKey, or a switch between managed keys and key files, only at a
 * restart (the keys in use are kept, and the config says so, since the JWKS caching follows it).
 */
function keepManagedKeys(
  running: Keyring,
  loaded: Keyring | null,
  config: GatewayConfig,
  next: GatewayConfig,
  logger: Logger,
): { ring: Keyring; next: GatewayConfig } {
  const now = config.auth.keys?.managed
  const then = next.auth.keys?.managed
  if (isManaged(running) && loaded !== null && isManaged(loaded) && now && then) {
    if (running.algorithm === loaded.algorithm && now.encryptionKey === then.encryptionKey) {
      running.configure(then)
      return { ring: running, next }
    }
  }
  logger.warn({ setting: 'auth.keys' }, 'this setting only takes effect after a restart')
  return { ring: running, next: Object.freeze({ ...next, auth: { ...next.auth, keys: config.auth.keys } }) }
}

export function describeLoadError(err: unknown): string[] {
  if (err && typeof err === 'object' && 'formatted' in err && Array.isArray((err as { formatted: unknown }).formatted)) {
    return (err as { formatted: string[] }).formatted
  }
  return [err instanceof Error ? err.message : String(err)]
}

/** Runs calls one at a time, in call order: a burst of reloads must not activate an older file last. */
function serially<T>(fn: () => Promise<T>): () => Promise<T> {
  let queue: Promise<unknown> = Promise.resolve()
  return () => {
    const run = queue.then(fn)
    queue = run.catch(() => {})
    return run
  }
}

/** The readiness reason for a failed session-store ping. */
function storeDown(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : ''
  return cause === 'revocation feed not subscribed' ? cause : 'store unreachable'
}
