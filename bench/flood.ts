/**
 * `npm run bench:flood`: a flood of forged ES256 tokens against the protected route while good
 * traffic (one valid, cached token) runs on other connections at the same time.
 *
 * Every forged token is distinct (a random signature under the gateway's `kid`, more of them
 * than the verifier remembers): it passes the structural checks, can never be cached, and so
 * costs a full signature check, the worst case. Checks run one at a time (src/auth/check-gate.ts),
 * and an address past its budget of failed checks (rateLimits.invalidTokens.perClient) waits
 * behind every other address, but is never refused for it. Two gateways: the default budget
 * (20 per 10 s) and the budget effectively off; with BENCH_BASELINE_DIST=<a dist/ folder> a
 * third, that build (e.g. release 1, whose spent budget answered 429 without any check).
 *
 * Per round and gateway, interleaved: good traffic alone, then good traffic + flood (two load
 * generator processes in parallel). Figures are medians over rounds; the good p99 during the
 * flood is set against the good-only p99 of the same round.
 * Environment: BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_GOOD_CONNECTIONS (20),
 * BENCH_FLOOD_CONNECTIONS (20), BENCH_FORGED_TOKENS (50,000), BENCH_BASELINE_DIST, BENCH_BASELINE_NAME, BENCH_NO_BUILD=1,
 * BENCH_NO_WRITE=1.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePem } from '../src/cli/keys-generate.js'
import { withSettings } from './gateway-yaml.js'
import { loadGenerator } from './load.js'
import { machineFacts, writeSection } from './report.js'
import { gatewayConfig, mintTokens, startProcess } from './setup.js'
import { fixed, median, whole } from './stats.js'
import { runStatusLoad, type StatusResult } from './status-load.js'

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10)
const GOOD = Number(process.env['BENCH_GOOD_CONNECTIONS'] ?? 20)
const FLOOD = Number(process.env['BENCH_FLOOD_CONNECTIONS'] ?? 20)
const FORGED = Number(process.env['BENCH_FORGED_TOKENS'] ?? 50_000)
const BASELINE = process.env['BENCH_BASELINE_DIST']
const BASELINE_NAME = process.env['BENCH_BASELINE_NAME'] ?? 'baseline build'

interface Round {
  alone: StatusResult & { cpuMs: number }
  good: StatusResult
  flood: StatusResult
  /** Gateway CPU time (all its threads) over the good + flood run. */
  floodCpuMs: number
}

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100)

/** CPU time a process has used so far, every thread included (the thread pool's too). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/** The gateway CPU `run` costs. */
async function measured<T>(pid: number, run: () => Promise<T>): Promise<[T, number]> {
  const before = cpuMs(pid)
  const result = await run()
  return [result, cpuMs(pid) - before]
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-flood-'))
  const children: ChildProcess[] = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })

  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
  const key = generatePem('ES256')
  const dist = join(root, 'dist')
  const budgets = [
    { name: 'default budget (20 failures / 10 s per address)', top: '', dist },
    // The schema has no "off": a budget nobody can spend is the same thing.
    { name: 'budget off (max 2,147,483,647)', top: 'rateLimits:\n  invalidTokens:\n    perClient: { max: 2147483647, window: 10s }\n', dist },
    ...(BASELINE ? [{ name: `${BASELINE_NAME}, default budget`, top: '', dist: BASELINE }] : []),
  ]
  const gateways: Array<{ name: string; url: string; pid: number }> = []
  for (const [i, b] of budgets.entries()) {
    const file = join(dir, `gw-${i}.yaml`)
    writeFileSync(file, withSettings(gatewayConfig('ES256', key, dir, upstream.url), { top: b.top }))
    const { url } = await startProcess('node', [join(b.dist, 'cli.js'), 'start', '--config', file], children)
    gateways.push({ name: b.name, url, pid: children.at(-1)!.pid! })
  }

  const [good] = await mintTokens('ES256', key, 1)
  // Signed with a key the gateway does not hold, under its kid: well-formed, never valid; each
  // then given a random signature of its own, so that no forgery is ever seen twice.
  const signed = await mintTokens('ES256', generatePem('ES256'), 1000)
  const forged = Array.from({ length: FORGED }, (_, i) => signed[i % signed.length]!.replace(/[^.]+$/, () => randomBytes(64).toString('base64url')))
  for (const gw of gateways) {
    const res = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${good}` } })
    if (res.status !== 200) throw new Error(`the good token was answered ${res.status}`)
  }

  const goodLoad = (url: string) =>
    runStatusLoad({ url: `${url}/api/x`, connections: GOOD, seconds: SECONDS, headers: { authorization: `Bearer ${good}` } })
  const floodLoad = (url: string) => runStatusLoad({ url: `${url}/api/x`, connections: FLOOD, seconds: SECONDS, tokens: forged })
  const results = gateways.map(() => [] as Round[])
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [i, gw] of gateways.entries()) {
      const [alone, cpu] = await measured(gw.pid, () => goodLoad(gw.url))
      const [[during, flood], floodCpuMs] = await measured(gw.pid, () => Promise.all([goodLoad(gw.url), floodLoad(gw.url)]))
      results[i]!.push({ alone: { ...alone, cpuMs: cpu }, good: during, flood, floodCpuMs })
      console.log(
        `round ${round} ${gw.name}: good alone ${whole(alone.rps)}/s p99 ${fixed(alone.p99ms)} ms | ` +
          `during flood ${whole(during.rps)}/s p99 ${fixed(during.p99ms)} ms | ` +
          `flood ${whole(flood.rps)}/s (401 ${flood.s401}, 429 ${flood.s429}, other ${flood.sother}, 2xx ${flood.s2xx}, errors ${flood.errors})`,
      )
    }
  }

  const perSec = (r: StatusResult, n: number) => n / r.seconds
  const rows = gateways.map((gw, i) => {
    const rs = results[i]!
    const m = (f: (r: Round) => number) => median(rs.map(f))
    const goodFailures = rs.reduce(
      (n, r) => n + r.alone.s401 + r.alone.s429 + r.alone.sother + r.alone.errors + r.good.s401 + r.good.s429 + r.good.sother + r.good.errors,
      0,
    )
    return [
      gw.name,
      whole(m((r) => r.flood.rps)),
      whole(m((r) => perSec(r.flood, r.flood.s401))),
      whole(m((r) => perSec(r.flood, r.flood.s429))),
      whole(m((r) => r.alone.rps)),
      whole(m((r) => r.good.rps)),
      `${fixed(m((r) => r.good.rps / r.alone.rps))}×`,
      fixed(m((r) => r.alone.p99ms)),
      fixed(m((r) => r.good.p99ms)),
      `${fixed(m((r) => r.good.p99ms / r.alone.p99ms))}×`,
      String(goodFailures),
    ]
  })
  const table = [
    '| gateway | forged req/s answered | of which 401/s | of which 429/s | good req/s alone | good req/s during flood | ratio | good p99 ms alone | good p99 ms during flood | ratio | good requests not 2xx |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')
  // What each answer costs the gateway. The flood run's CPU is split by charging its good
  // requests what they cost alone in the same round; the rest is the forged requests'.
  const count = (r: StatusResult) => r.rps * r.seconds
  const costs = gateways.map((gw, i) => {
    const rs = results[i]!
    const m = (f: (r: Round) => number) => median(rs.map(f))
    const perGood = (r: Round) => r.alone.cpuMs / count(r.alone)
    return `| ${gw.name} | ${fixed(m((r) => r.alone.cpuMs / 1000 / r.alone.seconds))} | ${fixed(m((r) => r.floodCpuMs / 1000 / r.flood.seconds))} | ${whole(m((r) => perGood(r) * 1000))} | ${whole(m((r) => ((r.floodCpuMs - perGood(r) * count(r.good)) / count(r.flood)) * 1000))} |`
  })
  const costTable = [
    '| gateway | cores busy, good alone | cores busy, good + flood | CPU µs per good request | CPU µs per forged request (estimated) |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...costs,
  ].join('\n')
  console.log('\n' + table + '\n\n' + costTable)
  const body = [
    '## Forged-token flood',
    '',
    `${machineFacts()} 1-minute load average at the end: ${loadavg()[0]!.toFixed(1)} (the machine is shared with other work: figures are noisy).`,
    `Command: \`${BASELINE ? `BENCH_BASELINE_DIST=… BENCH_BASELINE_NAME="${BASELINE_NAME}" ` : ''}npm run bench:flood\` (bench/flood.ts).`,
    `Setup: one ES256 gateway process per row (1 worker, memory store, access log on, stdout to /dev/null) in front of bench/upstream.mjs. Good traffic: ${GOOD} connections with one valid token (cached after its first request). Flood: ${FLOOD} other connections cycling through ${whole(FORGED)} distinct forged tokens (well-formed, under the gateway's \`kid\`, each with a random signature: more than the verifier remembers, so every one reaches a signature check unless a budget refuses it). Load: ${loadGenerator()} per generator, two generator processes at once during the flood, ${SECONDS} s per run; ${ROUNDS} rounds of (good alone, good + flood) per gateway, interleaved; medians over rounds, ratios taken within each round.`,
    "All load comes from 127.0.0.1, so the flood spends the default budget for every client on that address. This build refuses nobody for it: the address's signature checks run one at a time, behind any other address's (there are none here), and a valid token from that address still passes. The baseline build (release 1), once the budget was spent, answered 429 to every token it had not cached, forged or valid, without any cryptography.",
    '',
    table,
    '',
    "Both generators are closed loops: each connection sends its next request as soon as the last is answered, so a flood answered faster sends more requests, and good traffic keeps roughly its share of connections rather than of work. Release 1 answered the spent budget's flood fastest (429, no check) and so took the most of the event loop for it; with the budget off, four checks run at once on the thread pool and take the cores; past the budget, the flood gets one check under way at a time (a round trip to the thread pool each), and good traffic keeps the event loop. What each answer costs the gateway, read from its CPU time (/proc, every thread, the thread pool where WebCrypto verifies included), the flood run's share estimated by charging its good requests what they cost alone:",
    '',
    costTable,
  ].join('\n')
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/benchmarks.md'), 'flood', body)
  for (const c of children) c.kill()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
