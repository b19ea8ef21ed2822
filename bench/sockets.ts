/**
 * `npm run bench:sockets`: proxied HTTP throughput with 1,000 idle WebSockets open through the
 * gateway, against none (issue #18: each open socket is watched for its session's end).
 *
 * Real processes on loopback: an upstream with a WebSocket echo (bench/ws-upstream.mjs) and two
 * identical gateways (built dist/, `portcullis start`, memory store, cached revocation), each
 * with a protected HTTP route and two WebSocket routes. Each round, one gateway holds SOCKETS
 * open sockets and the other none, and both are loaded at the same time with half the
 * connections each: whatever else slows this shared machine down slows both alike. The sockets
 * move to the other gateway every other round, so a difference between the two processes
 * cancels out. Rounds alternate between watched sockets (a protected route, tokens from real
 * sign-ins: src/proxy/live-sockets.ts indexes them as in production) and unwatched ones (a
 * route with auth: none, which nothing indexes): the second is what holding a thousand proxied
 * sockets costs whatever watches them. Reported: the medians over rounds of the ratios (with
 * sockets / without) of requests per second and of gateway CPU time per request.
 *
 * Environment: BENCH_ROUNDS (6 of each kind), BENCH_SECONDS (5), BENCH_CONNECTIONS (50, both gateways
 * together), BENCH_SOCKETS (1000), BENCH_NODE_FLAGS (node flags of both gateways, in place of
 * the V8 flags they set themselves: src/cli/node-flags.ts), BENCH_NO_BUILD=1.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { hashPassword } from '../src/auth/passwords.js'
import { generatePem } from '../src/cli/keys-generate.js'
import { loadGenerator, runLoad, type LoadResult } from './load.js'
import { machineFacts } from './report.js'
import { cpuTimeMs, startProcess } from './setup.js'
import { fixed, median, mib, whole } from './stats.js'

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 6)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const SOCKETS = Number(process.env['BENCH_SOCKETS'] ?? 1000)
/** Within maxSessionsPerUser (50): the sockets spread over this many sessions of one user. */
const SESSIONS = 20
/** Given to node and as PORTCULLIS_NODE_FLAGS, so that the gateways add none of their own. */
const GIVEN_FLAGS = process.env['BENCH_NODE_FLAGS']
const NODE_FLAGS = (GIVEN_FLAGS ?? '').split(' ').filter(Boolean)
const NODE_ENV: Record<string, string> = GIVEN_FLAGS === undefined ? {} : { PORTCULLIS_NODE_FLAGS: GIVEN_FLAGS }

interface Gateway {
  url: string
  pid: number
  tokens: string[]
}

interface Run extends LoadResult {
  /** Gateway CPU time per request (µs). */
  cpuUs: number
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-sockets-'))
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })

  const upstream = await startProcess('node', [join(root, 'bench/ws-upstream.mjs')], children)
  writeFileSync(join(dir, 'key.pem'), generatePem('ES256'), { mode: 0o600 })
  const config = join(dir, 'gw.yaml')
  writeFileSync(
    config,
    `
server:
  host: 127.0.0.1
  port: \${PORT}
  logLevel: warn
auth:
  keys: { algorithm: ES256, signing: [{ kid: bench, privateKeyFile: "${join(dir, 'key.pem')}" }] }
  identity: [{ type: static, users: [{ username: bench, passwordHash: "${await hashPassword('bench-pw')}" }] }]
rateLimits: { login: { perClient: { max: 1000000, window: 1m } } }
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}" }
  - { name: live, prefix: /live, upstream: "${upstream.url}", websocket: true }
  - { name: open, prefix: /open, upstream: "${upstream.url}", websocket: true, auth: none }
`,
  )
  const gateways: Gateway[] = []
  for (let i = 0; i < 2; i++) {
    const served = await startProcess('node', [...NODE_FLAGS, join(root, 'dist/cli.js'), 'start', '--config', config], children, NODE_ENV)
    gateways.push({ ...served, tokens: await signIn(served.url, SESSIONS) })
  }
  const load = async (gw: Gateway, seconds: number): Promise<Run> => {
    const before = cpuTimeMs(gw.pid) ?? Number.NaN
    const url = `${gw.url}/api/x`
    const result = await runLoad({ url, connections: CONNECTIONS / 2, seconds, headers: { authorization: `Bearer ${gw.tokens[0]}` } })
    const cpu = (cpuTimeMs(gw.pid) ?? Number.NaN) - before
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`)
    return { ...result, cpuUs: (cpu * 1000) / (result.rps * seconds) }
  }

  console.log(
    `${machineFacts()}\nLoad: ${loadGenerator()}, ${CONNECTIONS / 2} connections to each gateway, ${SECONDS} s a run, ${ROUNDS} rounds of each kind.`,
  )
  await Promise.all(gateways.map((gw) => load(gw, 1))) // warm-up
  const ratios = { watched: { rps: [] as number[], cpu: [] as number[] }, unwatched: { rps: [] as number[], cpu: [] as number[] } }
  const rss: number[] = []
  for (let round = 0; round < 2 * ROUNDS; round++) {
    // The kind changes every round, the gateway holding the sockets every other round.
    const kind = round % 2 === 0 ? 'watched' : 'unwatched'
    const holder = gateways[Math.floor(round / 2) % 2]!
    const other = gateways[(Math.floor(round / 2) + 1) % 2]!
    const rssBefore = residentBytes(holder.pid)
    const sockets = await openSockets(holder.url, kind === 'watched' ? '/live/x' : '/open/x', holder.tokens, SOCKETS)
    rss.push(residentBytes(holder.pid) - rssBefore)
    // Unmeasured: the garbage of a thousand handshakes is collected before the measured run.
    await Promise.all([load(holder, 1), load(other, 1)])
    const [withSockets, without] = await Promise.all([load(holder, SECONDS), load(other, SECONDS)])
    if (!(await Promise.all(sockets.map(echoes))).every(Boolean)) throw new Error('a socket stopped relaying during the run')
    await closeAll(sockets)
    ratios[kind].rps.push(withSockets.rps / without.rps)
    ratios[kind].cpu.push(withSockets.cpuUs / without.cpuUs)
    console.log(
      `round ${round + 1}, ${kind}, on gateway ${holder === gateways[0] ? 1 : 2}: ${whole(withSockets.rps)} req/s and ${fixed(withSockets.cpuUs, 1)} µs CPU a request with the sockets, ${whole(without.rps)} and ${fixed(without.cpuUs, 1)} without`,
    )
  }
  const line = (kind: 'watched' | 'unwatched') =>
    `| ${SOCKETS} ${kind === 'watched' ? 'watched (protected route)' : 'unwatched (auth: none)'} | ${fixed(median(ratios[kind].rps), 3)} (${ratios[kind].rps.map((r) => fixed(r, 2)).join(', ')}) | ${fixed(median(ratios[kind].cpu), 3)} (${ratios[kind].cpu.map((r) => fixed(r, 2)).join(', ')}) |`
  console.log(`
Idle sockets open on a gateway, as a ratio of the gateway without them loaded at the same time (median over ${ROUNDS} rounds, each round in brackets):

| sockets | requests/s | CPU per request |
| --- | --- | --- |
${line('watched')}
${line('unwatched')}

Gateway RSS grew by a median ${mib(median(rss))} MiB when the ${SOCKETS} sockets opened (${whole(median(rss) / SOCKETS)} bytes each, both ends).`)
  process.exit(0)
}

/** Access tokens of `count` sessions made by real sign-ins. */
async function signIn(base: string, count: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
      body: JSON.stringify({ username: 'bench', password: 'bench-pw' }),
    })
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`)
    tokens.push(((await res.json()) as { accessToken: string }).accessToken)
  }
  return tokens
}

/** Opens `count` sockets spread over the sessions, each checked to relay. */
async function openSockets(base: string, path: string, tokens: string[], count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  // In batches: a thousand handshakes at once would be a benchmark of their own.
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, j) =>
      open(`${base.replace('http', 'ws')}${path}`, tokens[(i + j) % tokens.length]!),
    )
    sockets.push(...(await Promise.all(batch)))
  }
  if (!(await Promise.all(sockets.map(echoes))).every(Boolean)) throw new Error('a socket does not relay')
  return sockets
}

function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
}

function echoes(ws: WebSocket): Promise<boolean> {
  return new Promise((resolve) => {
    if (ws.readyState !== WebSocket.OPEN) return resolve(false)
    ws.once('message', (data) => resolve(data.toString() === 'ping'))
    ws.send('ping')
  })
}

function closeAll(sockets: WebSocket[]): Promise<unknown> {
  return Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          ws.once('close', resolve)
          ws.close(1000)
        }),
    ),
  )
}

/** The process's resident set (bytes), from /proc. */
function residentBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return kb === undefined ? NaN : Number(kb) * 1024
}

await main()
