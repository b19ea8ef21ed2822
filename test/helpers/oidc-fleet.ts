/**
 * Two real gateway instances (src/main.ts startGateway, each with its own Redis connections)
 * sharing one real redis-server, with an `oidc` source in front of one real OpenID Provider
 * (oidc-provider in its own process) and one real upstream.
 *
 * The instances' ports are chosen first: the provider is started with their redirect and
 * post-logout URIs. Its back-channel logout URI names a recorder on loopback that keeps every
 * logout token and passes it on to one instance (A unless told otherwise), as a load balancer
 * in front of the fleet would: tests can then replay a token the provider really sent.
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { generatePem } from '../../src/cli/keys-generate.js'
import { startGateway, type RunningGateway } from '../../src/main.js'
import { startOidcProvider, type OidcProvider } from './oidc-provider.js'
import { startRedis, type RedisServer } from './redis.js'
import { freePort, tempDir, type TeardownHost } from './redis-process.js'
import { startUpstream, type Upstream } from './upstream.js'

export const FLEET_CLIENT_SECRET = 'a-fleet-client-secret'
export const FLEET_ACCOUNTS = {
  alice: { email: 'alice@example.com', name: 'Alice', groups: ['staff', 'ops'] },
  bob: { email: 'bob@example.com', name: 'Bob', groups: ['staff'] },
}

export interface OidcInstance {
  name: string
  gw: RunningGateway
  /** `http://<host>:<port>`: the origin the browser uses (localhost for secure cookies). */
  origin: string
  /** Everything this instance logged, one JSON object a line. */
  logs(): Record<string, unknown>[]
}

/** One logout token the provider sent, and what the instance it went to answered. */
export interface RecordedLogout {
  logoutToken: string
  /** The instance it was passed on to; null when kept. */
  to: string | null
  status: number
  /** performance.now() when the request reached the recorder, and when the instance's answer came back. */
  receivedAt: number
  answeredAt: number
}

export interface BackchannelRecorder {
  /** Every delivery so far, oldest first. */
  readonly deliveries: RecordedLogout[]
  /**
   * Which instance the next deliveries go to; null: none, the recorder keeps the token unused
   * and answers 200 itself (a test then holds a fresh logout token to deliver as it likes).
   */
  target: OidcInstance | null
}

export interface OidcFleet {
  provider: OidcProvider
  redis: RedisServer
  upstream: Upstream
  a: OidcInstance
  b: OidcInstance
  backchannel: BackchannelRecorder
}

export interface OidcFleetOptions {
  /** The host in the instances' origins: localhost for a browser (then cookies are Secure), 127.0.0.1 otherwise. */
  host: 'localhost' | '127.0.0.1'
  /** Set up the upstream's answers before the instances start. */
  upstream?: (upstream: Upstream) => void
}

export async function startOidcFleet(t: TeardownHost, opts: OidcFleetOptions): Promise<OidcFleet> {
  const ports = { a: await freePort(), b: await freePort() }
  const origins = { a: `http://${opts.host}:${ports.a}`, b: `http://${opts.host}:${ports.b}` }
  const instances: Partial<Record<'a' | 'b', OidcInstance>> = {}
  const recorder = await startRecorder(t)
  const provider = await startOidcProvider(t, {
    clients: [
      {
        client_id: 'portcullis',
        client_secret: FLEET_CLIENT_SECRET,
        redirect_uris: [`${origins.a}/auth/oidc/corp/callback`, `${origins.b}/auth/oidc/corp/callback`],
        post_logout_redirect_uris: [`${origins.a}/auth/signin`, `${origins.b}/auth/signin`],
        backchannel_logout_uri: `${recorder.url}/auth/oidc/corp/backchannel-logout`,
      },
    ],
    accounts: FLEET_ACCOUNTS,
  })
  const redis = await startRedis(t)
  const upstream = await startUpstream(t)
  opts.upstream?.(upstream)

  const dir = tempDir(t, 'oidc-fleet')
  // One signing key for the fleet: each instance must accept the others' access tokens.
  writeFileSync(join(dir, 'fleet.pem'), generatePem('ES256'), { mode: 0o600 })
  const configPath = join(dir, 'gateway.yaml')
  writeFileSync(
    configPath,
    `
server:
  host: 127.0.0.1
  port: \${PORT}
  logLevel: info
  shutdownTimeout: 2s
auth:
  signInPage: true
  cookies: { secure: ${opts.host === 'localhost'} }
  keys:
    algorithm: ES256
    signing: [{ kid: fleet, privateKeyFile: fleet.pem }]
  identity:
    - { type: oidc, name: corp, displayName: Corp SSO, issuer: "${provider.issuer}", clientId: portcullis, clientSecret: ${FLEET_CLIENT_SECRET},
        scopes: [openid, profile, email, groups], rolesClaim: groups, defaultRoles: [user], claims: [email, name] }
store:
  type: redis
  url: \${REDIS_URL}
  commandTimeout: 500ms
revocation: { mode: cached }
# The tests poll from one address as fast as they can: no limit may answer in their place.
rateLimits: { login: { perClient: { max: 1000000, window: 1m } }, invalidTokens: { perClient: { max: 1000000, window: 10s } } }
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}", auth: required, rateLimit: { max: 1000000, window: 1m } }
  - { name: app, prefix: /app, upstream: "${upstream.url}", auth: required }
`,
  )
  for (const name of ['a', 'b'] as const) {
    const lines: string[] = []
    const logDestination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
        cb()
      },
    })
    const gw = await startGateway({ configPath, env: { PORT: String(ports[name]), REDIS_URL: redis.url }, logDestination })
    t.teardown(() => gw.close())
    instances[name] = { name, gw, origin: origins[name], logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
  }
  const a = instances.a!
  const b = instances.b!
  recorder.target = a
  return { provider, redis, upstream, a, b, backchannel: recorder }
}

/** The back-channel receiver the provider knows: keeps each logout token and passes the request on. */
async function startRecorder(t: TeardownHost) {
  const recorder = { url: '', deliveries: [] as RecordedLogout[], target: null as OidcInstance | null }
  const server = createServer((req, res) => {
    const receivedAt = performance.now()
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const to = recorder.target
      const logoutToken = new URLSearchParams(body).get('logout_token') ?? ''
      if (to === null) {
        recorder.deliveries.push({ logoutToken, to: null, status: 200, receivedAt, answeredAt: performance.now() })
        return void res.writeHead(200).end()
      }
      // The instance listens on 127.0.0.1 whatever host the browser uses.
      fetch(`${to.gw.url}${req.url}`, { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body }).then(
        async (answer) => {
          const text = await answer.text()
          recorder.deliveries.push({
            logoutToken,
            to: to.name,
            status: answer.status,
            receivedAt,
            answeredAt: performance.now(),
          })
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' }).end(text)
        },
        (err: unknown) => res.writeHead(502).end(String(err)),
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  recorder.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return recorder
}
