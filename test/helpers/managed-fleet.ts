/**
 * Real gateway instances (src/main.ts startGateway, each with its own Redis connections) on
 * one store with auth.keys.managed, as test/helpers/fleet.ts runs them with key files: the
 * instances make and rotate their keys themselves. A shared `now` clock drives the schedule.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { hash, type Algorithm } from '@node-rs/argon2'
import type { ManagedKeyring } from '../../src/auth/managed-keys.js'
import { startGateway, type RunningGateway } from '../../src/main.js'
import { tempDir, type TeardownHost } from './redis-process.js'
import { startUpstream, type Upstream } from './upstream.js'

export const KEY_SECRET = 'the fleet encryptionKey, 32 bytes or more'

export interface ManagedFleetOptions {
  /** The `store:` line's body; ${REDIS_URL} is each instance's. */
  store?: string
  rotateEvery?: string
  publishAhead?: string
  accessTokenTtl?: string
  now?: () => number
  /** ms between each instance's looks at the keyset (default: the gateway's 5 s). */
  keyPollInterval?: number
}

export interface ManagedInstance {
  gw: RunningGateway
  url: string
  keys: ManagedKeyring
  logText(): string
}

export interface ManagedFleet {
  configPath: string
  upstream: Upstream
  start(redisUrl: string, opts?: { keySecret?: string }): Promise<ManagedInstance>
}

export async function startManagedFleet(t: TeardownHost, opts: ManagedFleetOptions = {}): Promise<ManagedFleet> {
  const dir = tempDir(t, 'managed-fleet')
  const upstream = await startUpstream(t)
  // Tiny argon2 parameters: these tests measure keys, not password hashing.
  const alice = await hash('alice-pw', { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm })
  const configPath = join(dir, 'gateway.yaml')
  writeFileSync(
    configPath,
    `
server: { host: 127.0.0.1, port: 0, logLevel: info, shutdownTimeout: 2s }
auth:
  accessTokenTtl: ${opts.accessTokenTtl ?? '5m'}
  cookies: { secure: false }
  keys:
    algorithm: ES256
    managed: { rotateEvery: ${opts.rotateEvery ?? '1h'}, publishAhead: ${opts.publishAhead ?? '10m'}, encryptionKey: "\${KEY_SECRET}" }
  identity:
    - type: static
      users: [{ username: alice, passwordHash: "${alice}", subject: u-alice, roles: [user] }]
store: { ${opts.store ?? 'type: redis, url: "${REDIS_URL}"'} }
rateLimits: { login: { perClient: { max: 1000000, window: 1m } }, invalidTokens: { perClient: { max: 1000000, window: 10s } } }
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}", identityAssertion: true, rateLimit: { max: 1000000, window: 1m } }
`,
  )
  return {
    configPath,
    upstream,
    async start(redisUrl, startOpts = {}) {
      const lines: string[] = []
      const logDestination = new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString('utf8'))
          cb()
        },
      })
      const gw = await startGateway({
        configPath,
        env: { REDIS_URL: redisUrl, KEY_SECRET: startOpts.keySecret ?? KEY_SECRET },
        logDestination,
        ...(opts.now ? { now: opts.now } : {}),
        ...(opts.keyPollInterval ? { keyPollInterval: opts.keyPollInterval } : {}),
      })
      t.teardown(() => gw.close())
      return { gw, url: gw.url, keys: gw.keyring() as ManagedKeyring, logText: () => lines.join('') }
    },
  }
}
