/**
 * A whole gateway in one call, listening on 127.0.0.1:0, for contract tests over real HTTP.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Writable } from 'node:stream'
import type { FastifyInstance, FastifyServerFactory } from 'fastify'
import { buildGateway } from '../../src/app.js'
import { createIdentityChain } from '../../src/auth/identity/index.js'
import { loadKeyring, type Algorithm, type Keyring } from '../../src/auth/keys.js'
import { parseConfig } from '../../src/config/load.js'
import type { GatewayConfig } from '../../src/config/schema.js'
import { accessLogFor } from '../../src/ops/access-log.js'
import { createLogger } from '../../src/ops/logger.js'
import type { RateLimitStore } from '../../src/ops/rate-limit.js'
import { RevocationSet } from '../../src/revocation/set.js'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import type { SessionStore } from '../../src/sessions/types.js'

export interface TestGateway {
  url: string
  app: FastifyInstance
  config: GatewayConfig
  keyring: Keyring
  store: SessionStore
  revocations: RevocationSet
  /** Every log line written so far, parsed. */
  logs(): Record<string, unknown>[]
  /** The raw log text (to search for leaked secrets). */
  logText(): string
  clock: { now: number }
  fetch(path: string, init?: RequestInit): Promise<Response>
}

/** An HTTP/1.1 server with Fastify's own keep-alive default (72 s) for the handler it is given. */
const plainServer = ((handler: (req: IncomingMessage, res: ServerResponse) => void) => {
  const server = createServer(handler)
  server.keepAliveTimeout = 72_000
  return server
}) as unknown as FastifyServerFactory

/** Parses YAML into a config or fails the test with the problems. */
export function configFrom(yaml: string, env: Record<string, string> = {}, source: string | null = null): GatewayConfig {
  const result = parseConfig(yaml, { source, env })
  if (!result.ok) throw new Error('bad test config:\n' + result.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`).join('\n'))
  return result.config
}

export interface GatewayOptions {
  store?: SessionStore
  /** Start time of the injected clock (ms); defaults to the real time now. */
  now?: number
  keyring?: Keyring
  /** Where rate-limit hits are counted (main.ts: Redis with a Redis store); memory by default. */
  rateLimitStore?: RateLimitStore
  /** A port chosen beforehand (e.g. registered at an OpenID Provider started first); default any. */
  port?: number
  /**
   * Fastify's own server, as the gateway had before forward-auth answered ahead of routing
   * (src/proxy/verify-early.ts): the answer that one is compared with. By default the test
   * gateway's server is made the way src/server.ts makes it, through a serverFactory.
   */
  fastifyOnly?: boolean
}

export async function startGateway(t: { teardown(fn: () => unknown): void }, yaml: string, opts: GatewayOptions = {}): Promise<TestGateway> {
  const config = configFrom(yaml)
  const clock = { now: opts.now ?? Date.now() }
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const logger = createLogger('debug', sink)
  const keyring = opts.keyring ?? (await loadKeyring(config.auth.keys, config.auth.keys?.algorithm as Algorithm | undefined))
  const revocationTtl = config.auth.accessTokenTtl + config.auth.clockTolerance
  const store = opts.store ?? createMemoryStore({ revocationTtl, maxSessionsPerUser: config.auth.maxSessionsPerUser, historySize: 8 })
  const revocations = new RevocationSet()
  store.subscribe({ onEvent: (e) => revocations.apply(e), onGap: () => {} })
  const app = await buildGateway(config, {
    logger,
    keyring,
    store,
    revocations,
    identity: createIdentityChain(config.auth.identity),
    now: () => clock.now,
    ...(opts.rateLimitStore ? { rateLimitStore: opts.rateLimitStore } : {}),
    ...(!opts.fastifyOnly && { serverFactory: plainServer }),
  })
  await app.listen({ port: opts.port ?? 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  return {
    url,
    app,
    config,
    keyring,
    store,
    revocations,
    // Access lines wait for the end of the event-loop turn (src/ops/access-log.ts): take them too.
    logs: () => {
      accessLogFor(logger).flush()
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    },
    logText: () => {
      accessLogFor(logger).flush()
      return lines.join('\n')
    },
    clock,
    fetch: (path, init) => fetch(url + path, init),
  }
}
