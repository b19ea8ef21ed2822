/**
 * Process wiring: load the config, build the shared parts (store, revocation set, logger),
 * build and serve a generation, reload on demand, shut down gracefully.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DestinationStream, Logger } from 'pino'
import { buildGateway } from './app.js'
import { createIdentityChain } from './auth/identity/index.js'
import { loadKeyring, type Algorithm, type Keyring } from './auth/keys.js'
import { loadGatewayConfig } from './config/gateway.js'
import type { GatewayConfig } from './config/schema.js'
import { startEchoUpstream } from './demo/echo.js'
import { createLogger } from './ops/logger.js'
import { RevocationSet } from './revocation/set.js'
import { RevocationSync } from './revocation/sync.js'
import { GenerationServer } from './server.js'
import { createStore } from './sessions/index.js'
import type { SessionStore } from './sessions/types.js'

export interface StartOptions {
  configPath: string
  env?: Record<string, string | undefined>
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: DestinationStream
  now?: () => number
}

export interface RunningGateway {
  readonly url: string
  readonly logger: Logger
  readonly server: GenerationServer
  readonly store: SessionStore
  readonly revocations: RevocationSet
  config(): GatewayConfig
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
  let config = await loadGatewayConfig(opts.configPath, env)
  const logger = createLogger(config.server.logLevel, opts.logDestination)
  let keyring = await loadKeyring(config.auth.keys, config.auth.keys?.algorithm as Algorithm | undefined)
  warnIfEphemeral(keyring, config, logger)

  const store = await createStore(config, logger)
  const revocations = new RevocationSet()
  const sync = new RevocationSync(store, revocations, { resyncInterval: config.revocation.resyncInterval, now, log: logger })
  await sync.start()

  let demo: Server | null = null
  if (config.server.demoUpstream !== null) {
    demo = await startEchoUpstream(config.server.demoUpstream)
    logger.info({ port: (demo.address() as AddressInfo).port }, 'demo echo upstream started')
  }

  let draining = false
  const readiness = {
    async notReadyBecause() {
      if (draining) return 'shutting down'
      if (!sync.synced) return 'revocation set not yet synchronised'
      return store.ping().then(
        () => null,
        () => 'store unreachable',
      )
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
  )
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
      }),
    )
  await gen.activate(await build(config, keyring), config.server.shutdownTimeout)

  await new Promise<void>((resolve, reject) => {
    gen.server.once('error', reject)
    gen.server.listen(config.server.port, config.server.host, () => resolve())
  })
  const address = gen.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`
  logger.info({ url, routes: config.routes.map((r) => r.name), store: config.store.type }, 'portcullis listening')

  return {
    url,
    logger,
    server: gen,
    store,
    revocations,
    config: () => config,
    get draining() {
      return draining
    },
    async reload() {
      let next: GatewayConfig
      let ring: Keyring
      try {
        next = await loadGatewayConfig(opts.configPath, env)
        ring = next.auth.keys || !keyring.ephemeral ? await loadKeyring(next.auth.keys, next.auth.keys?.algorithm as Algorithm | undefined) : keyring
      } catch (err) {
        const problems = describeLoadError(err)
        logger.error({ problems }, 'config reload rejected; still serving the previous config')
        return { ok: false, problems }
      }
      for (const setting of restartOnlyChanges(config, next)) {
        logger.warn({ setting }, 'this setting only takes effect after a restart')
      }
      const generation = await build(next, ring)
      const previous = config
      config = next
      keyring = ring
      void gen.activate(generation, previous.server.shutdownTimeout)
      logger.info({ generation: generation.id, routes: next.routes.map((r) => r.name) }, 'config reloaded')
      return { ok: true, generation: generation.id }
    },
    async close() {
      if (draining) return
      draining = true
      logger.info('shutting down: draining in-flight requests')
      const closed = new Promise<void>((resolve) => gen.server.close(() => resolve()))
      gen.server.closeIdleConnections()
      const current = gen.current
      if (current) await gen.retire(current, config.server.shutdownTimeout)
      gen.server.closeAllConnections()
      await closed
      sync.stop()
      await store.close()
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

/** Settings read only at start. */
function restartOnlyChanges(a: GatewayConfig, b: GatewayConfig): string[] {
  const changed: string[] = []
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y)
  for (const key of ['host', 'port', 'workers', 'maxHeaderSize', 'requestTimeout', 'headersTimeout', 'keepAliveTimeout', 'demoUpstream', 'logLevel'] as const) {
    if (!same(a.server[key], b.server[key])) changed.push(`server.${key}`)
  }
  if (!same(a.store, b.store)) changed.push('store')
  if (a.revocation.resyncInterval !== b.revocation.resyncInterval) changed.push('revocation.resyncInterval')
  return changed
}

export function describeLoadError(err: unknown): string[] {
  if (err && typeof err === 'object' && 'formatted' in err && Array.isArray((err as { formatted: unknown }).formatted)) {
    return (err as { formatted: string[] }).formatted
  }
  return [err instanceof Error ? err.message : String(err)]
}
