/** Processes, configs and tokens for the benchmark. */
import { spawn } from 'node:child_process'
import { createPrivateKey, createSecretKey, randomBytes } from 'node:crypto'
import { openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { generatePem } from '../src/cli/keys-generate.js'

export type Alg = 'ES256' | 'EdDSA' | 'RS256' | 'HS256'

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts a process that serves HTTP on `port` (passed as the last argument and as $PORT) and
 * waits until it answers. Its stdout goes to `stdout` (/dev/null, as a log shipper would take it).
 */
export async function startProcess(
  cmd: string,
  args: string[],
  children: Array<{ kill(): void }>,
  env: Record<string, string> = {},
  stdout = '/dev/null',
): Promise<{ url: string; pid: number }> {
  const port = await freePort()
  const out = openSync(stdout, 'w')
  const child = spawn(cmd, args, { stdio: ['ignore', out, 'inherit'], env: { ...process.env, PORT: String(port), ...env } })
  children.push(child)
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`)
    const ok = await fetch(url + '/readyz').then(
      (r) => r.status < 500,
      () => false,
    )
    if (ok) return { url, pid: child.pid! }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${args.join(' ')} did not start`)
}

/** A gateway config for one algorithm: one protected and one public route to the upstream. */
export interface GatewayExtras {
  accessLog?: boolean
  workers?: number
  redisUrl?: string
  /** An `oidc` identity source with this issuer (its endpoints are off the proxied path). */
  oidcIssuer?: string
  /** The protected route sends identity assertions (routes[].identityAssertion). */
  assertion?: boolean
  /** The protected route's own revocation mode (routes[].revocation). */
  revocation?: 'strict' | 'cached'
  /** A static user, for a case that needs a real session (strict revocation reads it). */
  user?: { username: string; passwordHash: string }
}

export function gatewayConfig(alg: Alg, key: string, dir: string, upstream: string, extras: GatewayExtras = {}): string {
  const { accessLog = true, workers = 1, redisUrl, oidcIssuer, assertion = false, revocation, user } = extras
  let keys: string
  if (alg === 'HS256') {
    keys = `{ algorithm: HS256, signing: [{ kid: bench, secret: "${key}" }] }`
  } else {
    const file = join(dir, `${alg}.pem`)
    writeFileSync(file, key, { mode: 0o600 })
    keys = `{ algorithm: ${alg}, signing: [{ kid: bench, privateKeyFile: "${file}" }] }`
  }
  return `
server:
  host: 127.0.0.1
  port: \${PORT}
  logLevel: info
  accessLog: ${accessLog}
  workers: ${workers}
auth:
  accessTokenTtl: ${BENCH_TOKEN_TTL}s
  keys: ${keys}
${oidcIssuer ? `  identity: [{ type: oidc, name: corp, issuer: "${oidcIssuer}", clientId: bench, clientSecret: bench-secret }]\n` : ''}${user ? `  identity: [{ type: static, users: [{ username: ${user.username}, passwordHash: "${user.passwordHash}" }] }]\n` : ''}${redisUrl ? `store: { type: redis, url: "${redisUrl}" }\n` : ''}routes:
  - { name: api, prefix: /api, upstream: "${upstream}"${assertion ? ', identityAssertion: true' : ''}${revocation ? `, revocation: ${revocation}` : ''} }
  - { name: public, prefix: /public, upstream: "${upstream}", auth: none }
`
}

/**
 * What the profiling scripts share: the benchmark upstream, a config file for an ES256 gateway
 * in front of it (in `dir`) and a bearer header with a valid token for that gateway.
 */
export async function es256Gateway(
  dir: string,
  children: Array<{ kill(): void }>,
  extras: GatewayExtras = {},
): Promise<{ upstream: string; config: string; headers: { authorization: string } }> {
  const root = new URL('..', import.meta.url).pathname
  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
  const key = generatePem('ES256')
  const config = join(dir, 'gw.yaml')
  writeFileSync(config, gatewayConfig('ES256', key, dir, upstream.url, extras))
  const [token] = await mintTokens('ES256', key, 1)
  return { upstream: upstream.url, config, headers: { authorization: `Bearer ${token}` } }
}

/**
 * Access tokens outlive the longest benchmark run (a whole `npm run bench` takes about a
 * quarter of an hour): a token expiring mid-run would turn the rest into fast 401s.
 */
const BENCH_TOKEN_TTL = 3 * 3600

/** `count` distinct valid access tokens for the gateway with this key. */
export async function mintTokens(alg: Alg, key: string, count: number): Promise<string[]> {
  const signingKey = alg === 'HS256' ? createSecretKey(Buffer.from(key)) : createPrivateKey(key)
  const now = Math.floor(Date.now() / 1000)
  const tokens: string[] = []
  for (let i = 0; i < count; i++) {
    tokens.push(
      await new SignJWT({ roles: ['user'], sid: 'AAAAAA' + randomBytes(16).toString('base64url') })
        .setProtectedHeader({ alg, kid: 'bench', typ: 'JWT' })
        .setIssuer('portcullis')
        .setAudience('portcullis')
        .setSubject(`u-${i}`)
        .setIssuedAt(now)
        .setExpirationTime(now + BENCH_TOKEN_TTL)
        .setJti(randomBytes(8).toString('base64url'))
        .sign(signingKey),
    )
  }
  return tokens
}

/** A throwaway redis-server on a free port, or null when the binary is missing. */
export async function startRedisServer(children: Array<{ kill(): void }>): Promise<string | null> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false))
    child.once('spawn', () => resolve(true))
  })
  if (!spawned) return null
  children.push(child)
  await new Promise((r) => setTimeout(r, 300))
  return `redis://127.0.0.1:${port}`
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux this runs on). */
const USER_HZ = 100

/**
 * CPU time (user + system, ms) used so far by `pid` and its live child processes (cluster
 * workers), read from /proc; null where /proc is missing (not Linux).
 */
export function cpuTimeMs(pid: number): number | null {
  const read = (p: string): { ppid: number; ticks: number } | null => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      // Fields after the parenthesised command name: state ppid … utime(14) stime(15).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }
    } catch {
      return null
    }
  }
  const own = read(String(pid))
  if (!own) return null
  let ticks = own.ticks
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const other = read(entry)
    if (other && other.ppid === pid) ticks += other.ticks
  }
  return (ticks * 1000) / USER_HZ
}

/** Resident memory (bytes) of `pid` and its live child processes (nginx's worker), from /proc; null off Linux. */
export function rssBytes(pid: number): number | null {
  const rss = (p: string): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024
  try {
    let bytes = rss(String(pid))
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) bytes += rss(entry)
      } catch {
        // The process ended between the listing and the read.
      }
    }
    return bytes
  } catch {
    return null
  }
}
