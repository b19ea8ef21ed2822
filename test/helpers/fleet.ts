/**
 * Several real gateway instances (src/main.ts startGateway, each with its own Redis
 * connections) sharing one store, started from a config file written to a temp dir.
 * Every instance signs with the same key file: ephemeral keys would make each instance
 * reject the others' tokens.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { hash, type Algorithm } from '@node-rs/argon2'
import { generatePem } from '../../src/cli/keys-generate.js'
import { startGateway, type RunningGateway } from '../../src/main.js'
import { tempDir, type TeardownHost } from './redis-process.js'
import { startUpstream, type Upstream } from './upstream.js'

export interface FleetOptions {
  /** The `store:` block's body; `${REDIS_URL}` in it is each instance's own. */
  store: string
  mode?: 'cached' | 'strict' | 'off'
  /** revocation.resyncInterval (default 30s). */
  resyncInterval?: string
  commandTimeout?: string
  /** auth.accessTokenTtl (default 10m). */
  accessTokenTtl?: string
  /** A clock every instance shares (default: the real one). */
  now?: () => number
}

export interface Instance {
  name: string
  gw: RunningGateway
  url: string
  /** Everything this instance logged, one JSON line each. */
  logText(): string
}

export interface Fleet {
  configPath: string
  upstream: Upstream
  /** Starts one more instance; `redisUrl` becomes its ${REDIS_URL}. */
  start(name: string, redisUrl?: string): Promise<Instance>
}

/**
 * Every user's password is its username + "-pw", hashed with tiny argon2 parameters: the
 * fleet tests measure revocation, not password hashing (the verifier reads the parameters
 * from the hash itself).
 */
const passwordHash = (user: string) => hash(`${user}-pw`, { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm /* argon2id */ })

export const USERS = ['alice', 'bob', 'root'] as const

export async function startFleet(t: TeardownHost, opts: FleetOptions): Promise<Fleet> {
  const dir = tempDir(t, 'fleet')
  const upstream = await startUpstream(t)
  const hashes = await Promise.all(USERS.map(passwordHash))
  writeFileSync(join(dir, 'fleet.pem'), generatePem('ES256'), { mode: 0o600 })
  const configPath = join(dir, 'gateway.yaml')
  writeFileSync(
    configPath,
    `
server: { host: 127.0.0.1, port: 0, logLevel: warn, shutdownTimeout: 2s }
auth:
  accessTokenTtl: ${opts.accessTokenTtl ?? '10m'}
  refreshReuseGrace: 10s
  cookies: { secure: false }
  keys:
    algorithm: ES256
    signing: [{ kid: fleet, privateKeyFile: fleet.pem }]
  identity:
    - type: static
      users:
        - { username: alice, passwordHash: "${hashes[0]}", subject: u-alice, roles: [user] }
        - { username: bob, passwordHash: "${hashes[1]}", subject: u-bob, roles: [user] }
        - { username: root, passwordHash: "${hashes[2]}", subject: u-root, roles: [user, admin] }
store:
${opts.store
  .split('\n')
  .map((l) => `  ${l.trim()}`)
  .join('\n')}
  commandTimeout: ${opts.commandTimeout ?? '500ms'}
revocation: { mode: ${opts.mode ?? 'cached'}, resyncInterval: ${opts.resyncInterval ?? '30s'} }
# The tests poll from one address as fast as they can: no limit may answer in their place.
rateLimits: { login: { perClient: { max: 1000000, window: 1m } }, invalidTokens: { perClient: { max: 1000000, window: 10s } } }
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}", rateLimit: { max: 1000000, window: 1m } }
`,
  )
  return {
    configPath,
    upstream,
    async start(name, redisUrl = '') {
      const lines: string[] = []
      const logDestination = new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString('utf8'))
          cb()
        },
      })
      const gw = await startGateway({ configPath, env: { REDIS_URL: redisUrl }, logDestination, ...(opts.now ? { now: opts.now } : {}) })
      t.teardown(() => gw.close())
      return { name, gw, url: gw.url, logText: () => lines.join('') }
    },
  }
}
