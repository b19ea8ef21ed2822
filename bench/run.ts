/**
 * `npm run bench`: the gateway against a bare @fastify/http-proxy, measured in the same run.
 *
 * Real processes on loopback: an upstream, and a process per case: the bare proxy (same
 * dependency versions; a second copy as an A/A control) or a gateway (built dist/, started
 * with `portcullis start`). Each case runs right after its baseline (A B A C A D …, round
 * after round), so drift on this noisy machine hits both alike, and each figure is reported as
 * the median over rounds of its ratio to the baseline run next to it.
 *
 * Then the same cases side by side: the case and its baseline loaded at the same time, half
 * the connections each, so whatever slows the machine down slows both. Their CPU time per
 * request is the steadiest comparison this machine allows; their requests/s depend on how the
 * kernel shares the two cores between them.
 *
 * Environment: BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_WARMUP (1, unmeasured seconds of load
 * before each run), BENCH_CONNECTIONS (50), BENCH_SIDE_ROUNDS (5; 0 skips the side-by-side
 * runs), BENCH_ONLY (comma-separated case names), BENCH_NODE_FLAGS (node flags for every proxy
 * process, gateways included; default: the gateway's own, see below), BENCH_NO_BUILD=1, BENCH_NO_WRITE=1.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashPassword } from '../src/auth/passwords.js'
import { generatePem } from '../src/cli/keys-generate.js'
import { DEFAULT_NODE_FLAGS } from '../src/cli/node-flags.js'
import { loadGenerator, runLoad, type LoadResult } from './load.js'
import { machineFacts, writeSection } from './report.js'
import { cpuTimeMs, gatewayConfig, mintTokens, startProcess, startRedisServer, type Alg, type GatewayExtras } from './setup.js'

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 1)
const ONLY = process.env['BENCH_ONLY']?.split(',')
const SIDE_ROUNDS = Number(process.env['BENCH_SIDE_ROUNDS'] ?? 5)
/**
 * Node flags. A gateway sets its own (src/cli/node-flags.ts: `portcullis start` re-executes
 * itself with them), so it is started with plain `node`, as an operator would. The baselines (the
 * bare proxy, plain Fastify) get the same flags on their command line: an idle V8 shrinks its
 * young generation back to 1 MB and regrows it only over many seconds of load, scavenging
 * about 14 times as often meanwhile (--trace-gc: 37 in the first second back, against 7 a
 * second in steady state); each case's process idles while the others run, the bare proxy
 * measured next to every case never does, and the same floor on both sides measures both in
 * their steady state. BENCH_NODE_FLAGS replaces the flags of every process, gateways included
 * (on their command line and as PORTCULLIS_NODE_FLAGS, so they add nothing of their own). A
 * Node that cannot re-execute a process (before 22.15) gets the gateway's flags on its command
 * line too.
 */
const GIVEN_FLAGS = process.env['BENCH_NODE_FLAGS']
const NODE_FLAGS = (GIVEN_FLAGS ?? DEFAULT_NODE_FLAGS.join(' ')).split(' ').filter(Boolean)
const canReexecute = typeof (process as { execve?: unknown }).execve === 'function'
/** A gateway's node flags and environment: its own defaults unless BENCH_NODE_FLAGS says otherwise. */
const GATEWAY_FLAGS = GIVEN_FLAGS !== undefined || !canReexecute ? NODE_FLAGS : []
const GATEWAY_ENV: Record<string, string> = GIVEN_FLAGS !== undefined ? { PORTCULLIS_NODE_FLAGS: GIVEN_FLAGS } : {}

interface CaseSpec {
  name: string
  description: string
  path: string
  /** Starts the process serving this case (null: it cannot run on this machine). */
  serve(): Promise<{ url: string; pid: number } | null>
  headers?(): Promise<Record<string, string>>
  tokens?(): Promise<string[]>
  /** The case its ratios are taken against (default: bare). */
  baseline?: string
  /** Left out of the side-by-side runs (worker processes would take a bigger share of the cores). */
  sequentialOnly?: boolean
}

interface Case extends Omit<CaseSpec, 'headers' | 'tokens'> {
  url: string
  /** The process serving it (with its workers): its CPU time per request is reported. */
  pid: number
  headers?: Record<string, string>
  tokens?: string[]
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })

  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
  const bareProxy = () => startProcess('node', [...NODE_FLAGS, join(root, 'bench/bare-proxy.mjs'), upstream.url], children)
  const keys = new Map<Alg, string>(
    (['ES256', 'EdDSA', 'RS256', 'HS256'] as const).map((alg) => [alg, alg === 'HS256' ? 'bench-secret-'.padEnd(48, 'x') : generatePem(alg)]),
  )
  let configs = 0
  const gateway = (alg: Alg, extras: GatewayExtras = {}) => {
    const file = join(dir, `gateway-${configs++}.yaml`)
    writeFileSync(file, gatewayConfig(alg, keys.get(alg)!, dir, upstream.url, extras))
    return startProcess('node', [...GATEWAY_FLAGS, join(root, 'dist/cli.js'), 'start', '--config', file], children, GATEWAY_ENV)
  }
  const bearer = async (alg: Alg) => ({ authorization: `Bearer ${(await mintTokens(alg, keys.get(alg)!, 1))[0]}` })
  // 1 vs 2 worker processes need a shared store: Redis, when redis-server is installed.
  let redisUrl: string | null | undefined
  const redis = async () => {
    // null (no redis-server) is an answer too: ask once.
    if (redisUrl === undefined) redisUrl = await startRedisServer(children)
    return redisUrl
  }

  // Every case has a process of its own, baselines included, serving that one workload: a
  // process's figures can depend on what it served before. One that also served 128 KiB
  // answers or a stream of never-seen tokens read up to ~10% more CPU per small request
  // afterwards (most likely the Set's chain described in docs/benchmarks.md, fixed since);
  // kept as a control, since the same treatment for both sides keeps each comparison like
  // with like.
  let strictToken = ''
  const specs: CaseSpec[] = [
    { name: 'bare', description: 'bare @fastify/http-proxy (baseline)', path: '/api/x', serve: bareProxy },
    {
      name: 'bare-again',
      description: 'a second bare proxy process (A/A control: the same program, so any ratio other than 1.00× is noise)',
      path: '/api/x',
      serve: bareProxy,
    },
    { name: 'public', description: 'gateway, `auth: none` route', path: '/public/x', serve: () => gateway('ES256') },
    {
      name: 'es256',
      description: 'gateway, protected, ES256, cached revocation',
      path: '/api/x',
      serve: () => gateway('ES256'),
      headers: () => bearer('ES256'),
    },
    {
      name: 'es256-oidc',
      description: 'gateway, protected, ES256, with an `oidc` identity source configured',
      path: '/api/x',
      // The issuer answers nothing (port 9, discard): discovery fails in the background, as with
      // a provider that is away, and the proxied path must not notice either way.
      serve: () => gateway('ES256', { oidcIssuer: 'http://127.0.0.1:9' }),
      headers: () => bearer('ES256'),
    },
    {
      name: 'es256-assert',
      description: 'gateway, protected, ES256, with an identity assertion sent upstream',
      path: '/api/x',
      serve: () => gateway('ES256', { assertion: true }),
      headers: () => bearer('ES256'),
    },
    {
      name: 'public-nolog',
      description: 'gateway, `auth: none` route, no access log',
      path: '/public/x',
      serve: () => gateway('ES256', { accessLog: false }),
    },
    {
      name: 'es256-nolog',
      description: 'gateway, protected, ES256, no access log',
      path: '/api/x',
      serve: () => gateway('ES256', { accessLog: false }),
      headers: () => bearer('ES256'),
    },
    ...(['EdDSA', 'RS256', 'HS256'] as const).map((alg) => ({
      name: alg.toLowerCase(),
      description: `gateway, protected, ${alg}`,
      path: '/api/x',
      serve: () => gateway(alg),
      headers: () => bearer(alg),
    })),
    ...[1, 2].map((workers) => ({
      name: `es256-redis-w${workers}`,
      description: `gateway, protected, ES256, Redis store, ${workers} worker${workers > 1 ? 's' : ''}`,
      path: '/api/x',
      serve: async () => {
        const url = await redis()
        return url === null ? null : gateway('ES256', { workers, redisUrl: url })
      },
      headers: () => bearer('ES256'),
      sequentialOnly: true,
    })),
    {
      name: 'es256-redis-strict',
      description: 'gateway, protected, ES256, Redis store, route with `revocation: strict` (one store read per request)',
      path: '/api/x',
      // Strict reads the session on every request: it needs a real one, made by a real login.
      serve: async () => {
        const url = await redis()
        if (url === null) return null
        const served = await gateway('ES256', {
          redisUrl: url,
          revocation: 'strict',
          user: { username: 'bench', passwordHash: await hashPassword('bench-pw') },
        })
        const login = await fetch(`${served.url}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
          body: JSON.stringify({ username: 'bench', password: 'bench-pw' }),
        })
        strictToken = ((await login.json()) as { accessToken: string }).accessToken
        return served
      },
      headers: async () => ({ authorization: `Bearer ${strictToken}` }),
      baseline: 'es256-redis-w1',
      sequentialOnly: true,
    },
    {
      name: 'fastify-verify',
      description: 'plain Fastify answering `/auth/verify` itself with an empty 200 (baseline of the next row)',
      path: '/auth/verify',
      serve: () => startProcess('node', [...NODE_FLAGS, join(root, 'bench/plain-fastify.mjs')], children),
      headers: async () => ({ ...(await bearer('ES256')), 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' }),
      baseline: 'fastify-verify',
    },
    {
      name: 'forward-auth',
      description: 'gateway, forward-auth (`/auth/verify` asked about `GET /api/x`), ES256 token already verified, identity in the answer',
      path: '/auth/verify',
      serve: () => gateway('ES256'),
      headers: async () => ({ ...(await bearer('ES256')), 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' }),
      baseline: 'fastify-verify',
    },
    {
      name: 'forward-auth-nolog',
      description: 'gateway, forward-auth as above, no access log',
      path: '/auth/verify',
      serve: () => gateway('ES256', { accessLog: false }),
      headers: async () => ({ ...(await bearer('ES256')), 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' }),
      baseline: 'fastify-verify',
    },
    {
      name: 'healthz-nolog',
      description: "gateway, its own `/healthz` (its cheapest answer: what every request costs it before any route's work), no access log",
      path: '/healthz',
      serve: () => gateway('ES256', { accessLog: false }),
      headers: async () => ({ ...(await bearer('ES256')), 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' }),
      baseline: 'fastify-verify',
    },
    {
      name: 'bare-128k',
      description: 'bare @fastify/http-proxy, 128 KiB response (baseline of the next row)',
      path: '/api/big',
      serve: bareProxy,
      baseline: 'bare-128k',
    },
    {
      name: 'es256-128k',
      description: 'gateway, protected, ES256, 128 KiB response (streamed)',
      path: '/api/big',
      serve: () => gateway('ES256'),
      headers: () => bearer('ES256'),
      baseline: 'bare-128k',
    },
    {
      name: 'es256-cold',
      description: 'gateway, protected, ES256, a never-seen token on every request',
      path: '/api/x',
      serve: () => gateway('ES256'),
      tokens: () => mintTokens('ES256', keys.get('ES256')!, 40_000),
    },
    {
      name: 'es256-untraced',
      description: 'gateway, protected, ES256, OpenTelemetry off (baseline of the next row)',
      path: '/api/x',
      serve: () => gateway('ES256'),
      headers: () => bearer('ES256'),
      baseline: 'es256-untraced',
    },
    {
      name: 'es256-traced',
      description: 'gateway, protected, ES256, OpenTelemetry on: every request a new sampled trace, exported over OTLP/HTTP to a local sink',
      path: '/api/x',
      serve: async () => {
        const sink = await startProcess('node', [join(root, 'bench/otlp-sink.mjs')], children)
        const file = join(dir, 'gateway-traced.yaml')
        writeFileSync(file, gatewayConfig('ES256', keys.get('ES256')!, dir, upstream.url))
        const start = [...GATEWAY_FLAGS, join(root, 'dist/cli.js'), 'start', '--config', file]
        return startProcess('node', start, children, { ...GATEWAY_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url })
      },
      headers: () => bearer('ES256'),
      baseline: 'es256-untraced',
    },
  ]
  const wanted = (c: CaseSpec) => !ONLY || c.name === 'bare' || ONLY.includes(c.name)
  // A chosen case brings its own baseline along.
  const chosen = specs.filter((c) => wanted(c) || specs.some((o) => wanted(o) && o.baseline === c.name))
  const cases: Case[] = []
  for (const spec of chosen) {
    const { headers, tokens, ...rest } = spec
    const served = await spec.serve()
    // A Redis case without redis-server on this machine is left out.
    if (served === null) continue
    cases.push({
      ...rest,
      url: served.url + spec.path,
      pid: served.pid,
      ...(headers ? { headers: await headers() } : {}),
      ...(tokens ? { tokens: await tokens() } : {}),
    })
  }

  // Requests/s on a shared 2-core machine swing with whatever else runs, from one minute to the
  // next: each case is measured right after its own baseline, and its ratios are taken against
  // that neighbour. CPU time per request of the proxy process (workers included) is reported too.
  type Sample = LoadResult & { cpuUs: number }
  /** One run of load on `c`, with the CPU time its process (and workers) spent per request. */
  const loadWithCpu = async (c: Case, connections: number, seconds: number): Promise<Sample> => {
    const before = cpuTimeMs(c.pid)
    const r = await runLoad({ url: c.url, connections, seconds, headers: c.headers, tokens: c.tokens })
    const after = cpuTimeMs(c.pid)
    return { ...r, cpuUs: before === null || after === null ? Number.NaN : ((after - before) * 1000) / (r.rps * seconds) }
  }
  const measure = async (c: Case, round: number): Promise<Sample> => {
    // A process idle for a minute has let V8 drop compiled code; the first second of load
    // recompiles it. The bare proxy, measured every other run, would never pay that.
    if (WARMUP > 0) await runLoad({ url: c.url, connections: CONNECTIONS, seconds: WARMUP, headers: c.headers, tokens: c.tokens })
    const r = await loadWithCpu(c, CONNECTIONS, SECONDS)
    console.log(
      `round ${round} ${c.name.padEnd(11)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms  ${r.cpuUs.toFixed(0)} µs CPU/req  non-2xx ${r.non2xx}  errors ${r.errors}`,
    )
    return r
  }
  const isBaseline = (c: Case) => c.name === 'bare' || c.baseline === c.name
  const samples = new Map<string, Array<{ own: Sample; base: Sample }>>(cases.map((c) => [c.name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      if (isBaseline(c)) continue
      const base = await measure(cases.find((b) => b.name === (c.baseline ?? 'bare'))!, round)
      samples.get(c.baseline ?? 'bare')!.push({ own: base, base })
      samples.get(c.name)!.push({ own: await measure(c, round), base })
    }
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  /** A median ratio with the range of the middle half of the rounds (nearest rank), e.g. `0.98× (0.91–1.04)`. */
  const ratioCell = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
    const m = `${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}×`
    return sorted.length < 3 || sorted[0] === sorted.at(-1) ? m : `${m} (${at(0.25).toFixed(2)}–${at(0.75).toFixed(2)})`
  }
  // A baseline only some other case of this run names is measured (BENCH_ONLY without it: none).
  const rows = cases
    .filter((c) => samples.get(c.name)!.length > 0)
    .map((c) => {
      const ss = samples.get(c.name)!
      return {
        name: c.name,
        description: c.description,
        rps: median(ss.map((s) => s.own.rps)),
        p50: median(ss.map((s) => s.own.p50ms)),
        p99: median(ss.map((s) => s.own.p99ms)),
        ratio: ratioCell(ss.map((s) => s.own.rps / s.base.rps)),
        p99ratio: ratioCell(ss.map((s) => s.own.p99ms / s.base.p99ms)),
        cpu: median(ss.map((s) => s.own.cpuUs)),
        cpuRatio: ratioCell(ss.map((s) => s.own.cpuUs / s.base.cpuUs)),
        failures: ss.reduce((n, s) => n + s.own.non2xx + s.own.errors, 0),
      }
    })
  const table = [
    '| case | req/s | p50 ms | p99 ms | req/s vs bare | p99 vs bare | CPU µs/req | CPU vs bare | non-2xx + errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.description} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.ratio} | ${r.p99ratio} | ${r.cpu.toFixed(0)} | ${r.cpuRatio} | ${r.failures} |`,
    ),
  ].join('\n')
  console.log('\n' + table)

  // Side by side: the case and its baseline under load at the same time.
  type Pair = { own: Sample; base: Sample }
  const side = new Map<string, Pair[]>()
  const half = Math.max(1, Math.round(CONNECTIONS / 2))
  for (let round = 1; round <= SIDE_ROUNDS; round++) {
    for (const c of cases) {
      if (isBaseline(c) || c.sequentialOnly) continue
      const base = cases.find((b) => b.name === (c.baseline ?? 'bare'))!
      // Every round: the case's process has been idle while the others ran, its baseline has not.
      if (WARMUP > 0) await Promise.all([loadWithCpu(base, half, WARMUP), loadWithCpu(c, half, WARMUP)])
      const [b, own] = await Promise.all([loadWithCpu(base, half, SECONDS), loadWithCpu(c, half, SECONDS)])
      console.log(
        `side ${round} ${c.name.padEnd(11)} ${own.rps.toFixed(0).padStart(6)} req/s (${base.name} ${b.rps.toFixed(0)})  p99 ${own.p99ms.toFixed(2)} ms (${b.p99ms.toFixed(2)})  ${own.cpuUs.toFixed(0)} µs CPU/req (${b.cpuUs.toFixed(0)})  non-2xx ${own.non2xx}  errors ${own.errors}`,
      )
      side.set(c.name, [...(side.get(c.name) ?? []), { own, base: b }])
    }
  }
  const sideRows = [...side].map(([name, ps]) => ({
    description: cases.find((c) => c.name === name)!.description,
    ratio: ratioCell(ps.map((p) => p.own.rps / p.base.rps)),
    p99ratio: ratioCell(ps.map((p) => p.own.p99ms / p.base.p99ms)),
    cpuRatio: ratioCell(ps.map((p) => p.own.cpuUs / p.base.cpuUs)),
    failures: ps.reduce((n, p) => n + p.own.non2xx + p.own.errors, 0),
  }))
  const sideTable = [
    '| case | CPU µs/req vs its baseline | req/s vs its baseline | p99 vs its baseline | non-2xx + errors |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...sideRows.map((r) => `| ${r.description} | ${r.cpuRatio} | ${r.ratio} | ${r.p99ratio} | ${r.failures} |`),
  ].join('\n')
  if (sideRows.length > 0) console.log('\n' + sideTable)
  if (!process.env['BENCH_NO_WRITE']) {
    writeSection(
      join(root, 'docs/benchmarks.md'),
      'proxy',
      [
        '## Proxied requests: gateway vs bare proxy',
        '',
        machineFacts(),
        `Load: ${loadGenerator()}, ${CONNECTIONS} connections, ${SECONDS} s per case, ${ROUNDS} rounds; in each round every case runs right after a run of its baseline, and its ratios are taken against that run; medians over rounds, with the range of the middle half of the rounds in brackets (a baseline row: the median of all its runs). CPU µs/req: user + system CPU time of the proxy process (and its workers) during the case, from /proc, over the requests served; lower is better. Every case runs on a process of its own (baselines too); ${GIVEN_FLAGS === undefined ? `gateways run with the V8 flags they set themselves (\`${DEFAULT_NODE_FLAGS.join(' ')}\`${canReexecute ? '' : ', given on their command line: this Node cannot re-execute them'}), baselines are started with the same` : `every process is started with \`node ${NODE_FLAGS.join(' ')}\` (BENCH_NODE_FLAGS)`}; ${WARMUP} s of unmeasured load before every run.`,
        `Command: \`${[ROUNDS !== 5 && `BENCH_ROUNDS=${ROUNDS}`, SECONDS !== 5 && `BENCH_SECONDS=${SECONDS}`, SIDE_ROUNDS !== 5 && `BENCH_SIDE_ROUNDS=${SIDE_ROUNDS}`, 'npm run bench'].filter(Boolean).join(' ')}\`.`,
        '',
        table,
        ...(sideRows.length === 0
          ? []
          : [
              '',
              `**Side by side.** Each case and its baseline loaded at the same time, ${half} connections each, ${SECONDS} s, ${SIDE_ROUNDS} rounds, medians of the ratios within each round (middle half of the rounds in brackets). Whatever slows this shared machine down slows both alike, so the CPU time per request is the steadiest comparison here; requests/s also depend on how the kernel shares the two cores between the two processes.`,
              '',
              sideTable,
            ]),
      ].join('\n'),
    )
  }
  for (const c of children) c.kill()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
