/**
 * `npm run bench:population`: the gateway under a population of users, beside the bare proxy,
 * HAProxy 2.6 `jwt_verify` (ES256) and nginx (plain proxy), in the same run (issue #20).
 *
 * For each population (N sessions drawn from a Zipf distribution, tokens renewed every TTL of
 * simulated time: bench/population-tokens.ts; or `cold`, a never-seen token on every request)
 * five servers are started, each pinned to one core (BENCH_CPU) while wrk, the upstream and this
 * script share the other: the bare @fastify/http-proxy, a second copy of it (an A/A control: the
 * same program, so any ratio other than 1.00× is the method's own noise), the gateway
 * (`portcullis start`, access log on, memory store, cached revocation), HAProxy and nginx. Every round runs each server in
 * turn (the order rotates from round to round), WARMUP unmeasured seconds then SECONDS measured,
 * all with a different Authorization header per request. Ratios to the bare proxy and to HAProxy
 * are taken within each round; the table shows their medians over rounds.
 *
 * Environment: BENCH_POPULATIONS (1k,10k,100k,1m,cold), BENCH_ROUNDS (3; 1m runs at most 3),
 * BENCH_SECONDS (5), BENCH_WARMUP (1), BENCH_PREWARM (10: seconds of the population sent to the
 * gateway before the first round), BENCH_CONNECTIONS (50), BENCH_TTL (300, simulated
 * seconds), BENCH_SESSION_RATE (1/30: requests per session per simulated second),
 * BENCH_ZIPF_S (1), BENCH_CPU (1: the core the servers run on; `none` pins nothing), BENCH_NODE_FLAGS (none: the
 * gateway runs as `portcullis start` does), BENCH_NO_BUILD=1, BENCH_NO_WRITE=1.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePem } from '../src/cli/keys-generate.js'
import { hasWrk, runRaw } from './load.js'
import { startHaproxy, startNginx } from './peers.js'
import { es256Minter, type PopulationModel, REAL_TOKEN_TTL, TokenStream } from './population-tokens.js'
import { machineFacts, writeSection } from './report.js'
import { fixed, median } from './stats.js'
import { cpuTimeMs, gatewayConfig, rssBytes, startProcess } from './setup.js'

const env = (name: string, fallback: string) => process.env[name] ?? fallback
const ROUNDS = Number(env('BENCH_ROUNDS', '3'))
const SECONDS = Number(env('BENCH_SECONDS', '5'))
const WARMUP = Number(env('BENCH_WARMUP', '1'))
const PREWARM = Number(env('BENCH_PREWARM', '10'))
const CONNECTIONS = Number(env('BENCH_CONNECTIONS', '50'))
const TTL = Number(env('BENCH_TTL', '300'))
const SESSION_RATE = parseRate(env('BENCH_SESSION_RATE', '1/30'))
const ZIPF_S = Number(env('BENCH_ZIPF_S', '1'))
const CPU = env('BENCH_CPU', '1')
const NODE_FLAGS = env('BENCH_NODE_FLAGS', '').split(' ').filter(Boolean)
const POPULATIONS = env('BENCH_POPULATIONS', '1k,10k,100k,1m,cold').split(',').filter(Boolean)
/** Each 1M round mints a token for nearly every request the gateway takes (first contacts): at most 3. */
const MAX_ROUNDS_1M = 3
const SERVERS = ['bare', 'bare-again', 'gateway', 'haproxy', 'nginx'] as const
type ServerName = (typeof SERVERS)[number]
const LABEL: Record<ServerName, string> = {
  bare: 'bare proxy',
  'bare-again': 'bare proxy again (A/A control)',
  gateway: 'gateway',
  haproxy: 'HAProxy jwt_verify',
  nginx: 'nginx (no auth)',
}

function parseRate(text: string): number {
  const [a, b = '1'] = text.split('/')
  return Number(a) / Number(b)
}

function parsePopulation(text: string): number | 'cold' {
  if (text === 'cold') return 'cold'
  const m = /^(\d+)([km]?)$/i.exec(text)
  if (!m) throw new Error(`BENCH_POPULATIONS: ${text} is not a size (1k, 10k, 100k, 1m, cold)`)
  return Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6 } as Record<string, number>)[m[2]!.toLowerCase()]!
}

interface Sample {
  rps: number
  p50: number
  p99: number
  p999: number
  cpuUs: number
  rssMiB: number
  failures: number
  /** The gateway: share of measured requests carrying a token sent for the first time. */
  freshShare?: number
  /** The gateway: the run sent more requests than the stream segment held (tokens reused). */
  wrapped?: boolean
}

async function main(): Promise<void> {
  if (!hasWrk) throw new Error('bench:population needs wrk (scripts/bench-deps.sh installs it)')
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  // This script, and through it wrk and the upstream, on every core but the servers' one.
  const pinned = CPU !== 'none'
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', otherCores(CPU), String(process.pid)], { stdio: 'ignore' })
  // `env` runs the command as it is: the same argv shape either way.
  const pin = pinned ? ['taskset', '-c', CPU] : ['env']
  const pem = generatePem('ES256')
  const mint = es256Minter(pem)
  const results = new Map<string, Map<ServerName, Sample[]>>()
  const started = Date.now()
  const loadAtStart = loadavg()[1]!

  for (const label of POPULATIONS) {
    const users = parsePopulation(label)
    const rounds = users !== 'cold' && users >= 1e6 ? Math.min(ROUNDS, MAX_ROUNDS_1M) : ROUNDS
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-population-'))
    const children: Array<{ kill(): void }> = []
    const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
    const config = join(dir, 'gateway.yaml')
    writeFileSync(config, gatewayConfig('ES256', pem, dir, upstream.url))
    const servers: Record<ServerName, { url: string; pid: number }> = {
      bare: await startProcess(pin[0]!, [...pin.slice(1), 'node', ...NODE_FLAGS, join(root, 'bench/bare-proxy.mjs'), upstream.url], children),
      'bare-again': await startProcess(pin[0]!, [...pin.slice(1), 'node', ...NODE_FLAGS, join(root, 'bench/bare-proxy.mjs'), upstream.url], children),
      gateway: await startProcess(
        pin[0]!,
        [...pin.slice(1), 'node', ...NODE_FLAGS, join(root, 'dist/cli.js'), 'start', '--config', config],
        children,
      ),
      haproxy: await startHaproxy(dir, pem, upstream.url, pin, children),
      nginx: await startNginx(dir, upstream.url, pin, children),
    }
    const model: PopulationModel = { users, s: ZIPF_S, ttl: TTL, rate: SESSION_RATE, seed: 20 }
    const stream = new TokenStream(model, mint)
    const samples = new Map<ServerName, Sample[]>(SERVERS.map((s) => [s, []]))
    results.set(label, samples)
    // The gateway gets the stream in order, each run a segment longer than it can send (so wrk
    // never wraps round it), and only what it sent is taken off the front.
    let gatewayRps = 5_000
    const feedGateway = async (seconds: number, measured: boolean) => {
      const { url, pid } = servers.gateway
      const tokens = stream.peek(Math.ceil(gatewayRps * 1.5 * seconds) + CONNECTIONS + 1000)
      const r = measured
        ? await measure(url + '/api/x', pid, seconds, tokens)
        : await runRaw({ url: url + '/api/x', connections: CONNECTIONS, seconds, tokens })
      gatewayRps = Math.max(gatewayRps, r.requests / r.seconds)
      // wrk's script starts at the second line; requests in flight at the end were sent too.
      const sent = r.requests + CONNECTIONS + 1
      const fresh = stream.consume(Math.min(tokens.length, sent))
      return { r, freshShare: fresh / Math.min(tokens.length, sent), wrapped: sent > tokens.length }
    }

    const run = async (name: ServerName): Promise<Sample> => {
      const { url, pid } = servers[name]
      if (name === 'gateway') {
        if (WARMUP > 0) await feedGateway(WARMUP, false)
        const { r, freshShare, wrapped } = await feedGateway(SECONDS, true)
        return { ...(r as Measured).sample, freshShare, wrapped }
      }
      // No cache (HAProxy) or no verification at all: a sample of the stream's tokens, cycled.
      const tokens = stream.peek(20_000)
      if (WARMUP > 0) await runRaw({ url: url + '/api/x', connections: CONNECTIONS, seconds: WARMUP, tokens })
      return (await measure(url + '/api/x', pid, SECONDS, tokens)).sample
    }

    // Before the first round the gateway has been up for a while: its cache holds what the
    // population sent it (for 1k–10k sessions, several TTLs of simulated time).
    if (PREWARM > 0) await feedGateway(PREWARM, false)
    console.log(`\npopulation ${label}: ${rounds} rounds, servers ${pinned ? `pinned to CPU ${CPU}` : 'not pinned'}`)
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < SERVERS.length; k++) {
        const name = SERVERS[(round + k) % SERVERS.length]!
        const s = await run(name)
        samples.get(name)!.push(s)
        console.log(
          `${label.padEnd(5)} round ${round + 1} ${name.padEnd(8)} ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${fixed(s.p50)}  p99 ${fixed(s.p99)}  p99.9 ${fixed(s.p999)} ms  ${s.cpuUs.toFixed(0)} µs CPU/req  RSS ${s.rssMiB.toFixed(0)} MiB  failures ${s.failures}` +
            (s.freshShare === undefined ? '' : `  new tokens ${(100 * s.freshShare).toFixed(1)}%${s.wrapped ? ' (WRAPPED)' : ''}`),
        )
      }
    }
    console.log(`population ${label}: ${stream.minted} tokens minted`)
    for (const c of children) c.kill()
  }

  const minutes = (Date.now() - started) / 60_000
  const text = report(
    results,
    `${minutes.toFixed(0)} minutes; load average of the machine (5 min) ${fixed(loadAtStart, 1)} at the start, ${fixed(loadavg()[1]!, 1)} at the end`,
  )
  console.log('\n' + text)
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/benchmarks.md'), 'population', text)
  process.exit(0)
}

/** One measured run: load, and the server's CPU time (from /proc) and memory around it. */
interface Measured {
  sample: Sample
  requests: number
  seconds: number
}

async function measure(url: string, pid: number, seconds: number, tokens: string[]): Promise<Measured> {
  const before = cpuTimeMs(pid)
  const r = await runRaw({ url, connections: CONNECTIONS, seconds, tokens })
  const after = cpuTimeMs(pid)
  const rss = rssBytes(pid)
  const sample: Sample = {
    rps: r.rps,
    p50: r.p50ms,
    p99: r.p99ms,
    p999: r.p999ms,
    cpuUs: before === null || after === null ? Number.NaN : ((after - before) * 1000) / r.requests,
    rssMiB: rss === null ? Number.NaN : rss / 2 ** 20,
    failures: (r.non2xx ?? 0) + r.errors,
  }
  return { sample, requests: r.requests, seconds: r.seconds }
}

function otherCores(cpu: string): string {
  const all = execFileSync('nproc', ['--all']).toString().trim()
  const list = Array.from({ length: Number(all) }, (_, i) => String(i)).filter((c) => c !== cpu)
  return list.length > 0 ? list.join(',') : cpu
}

/** A run that answered nothing (this shared machine can stall one) leaves its round out. */
const ratio = (xs: number[]) => median(xs.filter((x) => Number.isFinite(x) && x > 0))
const times = (x: number) => `${fixed(x)}×`
const verdict = (ok: boolean) => (ok ? 'pass' : '**FAIL**')

function report(results: Map<string, Map<ServerName, Sample[]>>, when: string): string {
  const absolute: string[] = []
  const ratios: string[] = []
  const targets: string[] = []
  for (const [label, samples] of results) {
    const of = (name: ServerName) => samples.get(name)!
    const per = (name: ServerName, f: (s: Sample) => number, base: ServerName) => ratio(of(name).map((s, i) => f(s) / f(of(base)[i]!)))
    for (const name of SERVERS) {
      const ss = of(name)
      const m = (f: (s: Sample) => number) => median(ss.map(f))
      const fresh =
        name === 'gateway' ? `${fixed(100 * m((s) => s.freshShare ?? Number.NaN), 1)}%${ss.some((s) => s.wrapped) ? ' (wrapped)' : ''}` : ''
      absolute.push(
        `| ${label} | ${LABEL[name]} | ${m((s) => s.rps).toFixed(0)} | ${fixed(m((s) => s.p50))} | ${fixed(m((s) => s.p99))} | ${fixed(m((s) => s.p999))} | ${m((s) => s.cpuUs).toFixed(0)} | ${m((s) => s.rssMiB).toFixed(0)} | ${fresh} | ${ss.reduce((a, s) => a + s.failures, 0)} |`,
      )
      if (name === 'bare') continue
      const pair = (f: (s: Sample) => number) => `${times(per(name, f, 'bare'))} / ${name === 'haproxy' ? '1×' : times(per(name, f, 'haproxy'))}`
      ratios.push(
        `| ${label} | ${LABEL[name]} | ${pair((s) => s.rps)} | ${pair((s) => s.p50)} | ${pair((s) => s.p99)} | ${pair((s) => s.p999)} | ${pair((s) => s.cpuUs)} | ${pair((s) => s.rssMiB)} |`,
      )
    }
    const rpsHa = per('gateway', (s) => s.rps, 'haproxy')
    const rpsBare = per('gateway', (s) => s.rps, 'bare')
    const p99Ha = per('gateway', (s) => s.p99, 'haproxy')
    const users = parsePopulation(label)
    if (users === 'cold') targets.push(`- cold: req/s ≥ 0.9× HAProxy: ${times(rpsHa)} ${verdict(rpsHa >= 0.9)}`)
    else if (users <= 100_000)
      targets.push(
        `- ${label}: req/s ≥ 1.25× HAProxy: ${times(rpsHa)} ${verdict(rpsHa >= 1.25)}; ≥ 1.0× bare: ${times(rpsBare)} ${verdict(rpsBare >= 1)}; p99 ≤ HAProxy's: ${times(p99Ha)} ${verdict(p99Ha <= 1)}`,
      )
  }
  const rounds = (label: string) => results.get(label)!.get('gateway')!.length
  return [
    '## Population: many users, renewed tokens, peers in the same run',
    '',
    machineFacts(),
    `Load: wrk 4 (1 thread), ${CONNECTIONS} connections, a different Authorization header on every request; ${WARMUP} s unmeasured then ${SECONDS} s measured per server per round, after ${PREWARM} s of the population sent to the gateway alone; rounds: ${[...results.keys()].map((l) => `${l} ${rounds(l)}`).join(', ')}; the order of the servers rotates each round. ${CPU === 'none' ? 'No process is pinned to a core.' : `Each server is pinned to CPU ${CPU} (\`taskset\`), wrk, the upstream and the script to the other core(s).`} Gateway: \`portcullis start\`${NODE_FLAGS.length ? ` under \`node ${NODE_FLAGS.join(' ')}\`` : ''}, ES256, access log on (to /dev/null), memory store, revocation cached. Population model: Zipf s = ${ZIPF_S}, simulated TTL ${TTL} s, ${fixed(SESSION_RATE, 3)} requests per session per simulated second; tokens valid ${REAL_TOKEN_TTL / 3600} h in real time.`,
    `Command: \`${[
      ROUNDS !== 3 && `BENCH_ROUNDS=${ROUNDS}`,
      SECONDS !== 5 && `BENCH_SECONDS=${SECONDS}`,
      CPU !== '1' && `BENCH_CPU=${CPU}`,
      process.env['BENCH_POPULATIONS'] && `BENCH_POPULATIONS=${process.env['BENCH_POPULATIONS']}`,
      'npm run bench:population',
    ]
      .filter(Boolean)
      .join(' ')}\` (${when}: on 2 cores, anything far above 2 means the servers measured had a fraction of a core).`,
    '',
    "Medians over rounds. CPU µs/req: user + system time of the server (nginx: master and worker) over the requests it answered. RSS after each run. New tokens: share of the gateway's measured requests whose token it had never been sent before.",
    '',
    '| population | server | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | RSS MiB | new tokens | non-2xx + errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...absolute,
    '',
    'Ratios, each taken within a round and then the median over rounds: **vs the bare proxy / vs HAProxy** (req/s: higher is better; latency, CPU and memory: lower is better).',
    '',
    '| population | server | req/s | p50 | p99 | p99.9 | CPU/req | RSS |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...ratios,
    '',
    'Targets (issue #20):',
    '',
    ...targets,
  ].join('\n')
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
