/**
 * What drives the protected route's tail latency (docs/benchmarks.md "Tail latency"):
 * `node --import @tapjs/typescript/import bench/tail.ts` (after `npm run build`).
 *
 * Gateways of the same build, ES256 protected route, each its own `portcullis start` process
 * with bench/gc-probe.mjs loaded, differing in one thing each: the V8 flags the gateway sets
 * itself or none (PORTCULLIS_NODE_FLAGS=""), the access log on or off. Each pair is loaded side
 * by side (the case and its baseline at the same time, half the connections each, so whatever
 * else runs on this shared machine slows both), first with BENCH_TOKENS (40,000) distinct
 * tokens cycling, more than the verified-token cache holds, then with one token (the hot case,
 * right after the burst of new ones). Per run: p99, p99.9, CPU per request, and from inside the
 * process the garbage-collection pauses, the event loop's delay, page faults and RSS.
 *
 * Environment: BENCH_ROUNDS (6), BENCH_SECONDS (5), BENCH_CONNECTIONS (50), BENCH_TOKENS (40000).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePem } from '../src/cli/keys-generate.js'
import { machineFacts } from './report.js'
import { cpuTimeMs, gatewayConfig, mintTokens, startProcess } from './setup.js'
import { fixed, median } from './stats.js'

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 6)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const TOKENS = Number(process.env['BENCH_TOKENS'] ?? 40_000)
const root = new URL('..', import.meta.url).pathname

interface Variant {
  name: string
  accessLog: boolean
  /** $PORTCULLIS_NODE_FLAGS; undefined: the gateway's own defaults. */
  nodeFlags?: string
}
/**
 * Every pair has processes of its own, so both sides of a comparison sit idle alike while the
 * other pairs run (an idle V8 shrinks its young generation: that is one of the things measured).
 */
const VARIANTS: Variant[] = [
  { name: 'no V8 flags', accessLog: true, nodeFlags: '' },
  { name: 'no V8 flags (A/A)', accessLog: true, nodeFlags: '' },
  { name: 'no V8 flags', accessLog: true, nodeFlags: '' },
  { name: 'V8 flags set by the gateway', accessLog: true },
  { name: 'V8 flags set by the gateway', accessLog: true },
  { name: 'V8 flags, no access log', accessLog: false },
]
/** [case, baseline] by index into VARIANTS. */
const PAIRS: Array<[number, number]> = [
  [1, 0],
  [3, 2],
  [5, 4],
]

interface Probe {
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>
  loopDelayMs: { p99: number; max: number }
  minorFaults: number
  rssMiB: number
  newSpaceMiB: number
}
interface Run {
  rps: number
  p99: number
  p999: number
  cpuUs: number
  faultsPerReq: number
  rssMiB: number
  newSpaceMiB: number
  scavengesPer1k: number
  gcMsPer1k: number
  maxPauseMs: number
  loopP99: number
  loopMax: number
  failures: number
}

function wrk(url: string, connections: number, seconds: number, tokensFile: string, headers: Record<string, string>) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', join(root, 'bench/wrk-report.lua')]
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
  args.push(url)
  return new Promise<Record<string, number>>((resolve, reject) =>
    execFile('wrk', args, { env: { ...process.env, TOKENS_FILE: tokensFile } }, (err, stdout) => {
      if (err) return reject(err)
      const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'))
      return line ? resolve(JSON.parse(line) as Record<string, number>) : reject(new Error(stdout))
    }),
  )
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-tail-'))
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
  const key = generatePem('ES256')
  const tokens = await mintTokens('ES256', key, TOKENS)
  const tokensFile = join(dir, 'tokens.txt')
  writeFileSync(tokensFile, tokens.join('\n') + '\n')
  const hot = { authorization: `Bearer ${tokens[0]}` }

  const procs: Array<Variant & { url: string; pid: number; probe: string }> = []
  for (const [i, v] of VARIANTS.entries()) {
    const config = join(dir, `gw-${i}.yaml`)
    writeFileSync(config, gatewayConfig('ES256', key, dir, upstream.url, { accessLog: v.accessLog }))
    const probe = join(dir, `probe-${i}.jsonl`)
    writeFileSync(probe, '')
    const env: Record<string, string> = { GC_PROBE_FILE: probe, ...(v.nodeFlags === undefined ? {} : { PORTCULLIS_NODE_FLAGS: v.nodeFlags }) }
    const args = ['--import', join(root, 'bench/gc-probe.mjs'), join(root, 'dist/cli.js'), 'start', '--config', config]
    const served = await startProcess('node', args, children, env)
    const cmdline = readFileSync(`/proc/${served.pid}/cmdline`, 'utf8').split('\0').join(' ')
    console.log(`${v.name}: ${cmdline.trim()}`)
    procs.push({ ...v, ...served, probe })
  }
  const lastProbe = (file: string): Probe => JSON.parse(readFileSync(file, 'utf8').trim().split('\n').at(-1)!) as Probe
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

  const one = async (p: (typeof procs)[number], seconds: number, mode: 'population' | 'hot'): Promise<Run> => {
    process.kill(p.pid, 'SIGWINCH')
    const cpu0 = cpuTimeMs(p.pid)!
    const w = await wrk(p.url + '/api/x', CONNECTIONS / 2, seconds, mode === 'population' ? tokensFile : '', mode === 'hot' ? hot : {})
    const cpu1 = cpuTimeMs(p.pid)!
    process.kill(p.pid, 'SIGWINCH')
    await pause(100)
    const s = lastProbe(p.probe)
    const reqs = w['requests']!
    const gc = Object.values(s.gc)
    return {
      rps: reqs / (w['duration_us']! / 1e6),
      p99: w['p99_us']! / 1000,
      p999: w['p999_us']! / 1000,
      cpuUs: ((cpu1 - cpu0) * 1000) / reqs,
      faultsPerReq: s.minorFaults / reqs,
      rssMiB: s.rssMiB,
      newSpaceMiB: s.newSpaceMiB,
      scavengesPer1k: ((s.gc['scavenge']?.count ?? 0) * 1000) / reqs,
      gcMsPer1k: (gc.reduce((n, k) => n + k.totalMs, 0) * 1000) / reqs,
      maxPauseMs: Math.max(0, ...gc.map((k) => k.maxMs)),
      loopP99: s.loopDelayMs.p99,
      loopMax: s.loopDelayMs.max,
      failures: w['non2xx']! + w['errors']!,
    }
  }

  const results = new Map<string, Array<{ own: Run; base: Run }>>()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of ['population', 'hot'] as const) {
      for (const [c, b] of PAIRS) {
        const [own, base] = [procs[c]!, procs[b]!]
        await Promise.all([one(own, 1, mode), one(base, 1, mode)]) // warm-up, unmeasured
        const [o, bs] = await Promise.all([one(own, SECONDS, mode), one(base, SECONDS, mode)])
        const key = `${mode}|${c}|${b}`
        results.set(key, [...(results.get(key) ?? []), { own: o, base: bs }])
        const line = (r: Run) =>
          `${r.rps.toFixed(0)} req/s p99 ${fixed(r.p99, 1)} p99.9 ${fixed(r.p999, 1)} ms ${r.cpuUs.toFixed(0)} µs/req scav/1k ${fixed(r.scavengesPer1k, 1)} gc ms/1k ${fixed(r.gcMsPer1k, 1)} max pause ${fixed(r.maxPauseMs, 1)} loop p99 ${fixed(r.loopP99, 1)} faults/req ${fixed(r.faultsPerReq)} rss ${r.rssMiB.toFixed(0)} new ${r.newSpaceMiB}`
        console.log(`r${round} ${mode} ${own.name}: ${line(o)}\n   vs ${base.name}: ${line(bs)}`)
      }
    }
  }

  const cell = (xs: number[]) => `${fixed(median(xs))}×`
  const rows: string[] = []
  for (const [key, runs] of results) {
    const [mode, c, b] = key.split('|')
    const own = (f: (r: Run) => number) => median(runs.map((x) => f(x.own)))
    const base = (f: (r: Run) => number) => median(runs.map((x) => f(x.base)))
    const ratio = (f: (r: Run) => number) => cell(runs.map((x) => f(x.own) / f(x.base)))
    /** The case's median and its baseline's, as `case / baseline`. */
    const pair = (f: (r: Run) => number, digits?: number) => `${fixed(own(f), digits)} / ${fixed(base(f), digits)}`
    const failures = runs.reduce((n, x) => n + x.own.failures + x.base.failures, 0)
    rows.push(
      `| ${mode} | ${procs[Number(c)]!.name} | ${procs[Number(b)]!.name} | ${ratio((r) => r.p99)} | ${ratio((r) => r.p999)} | ${ratio((r) => r.cpuUs)} | ${ratio((r) => r.rps)} ` +
        `| ${pair((r) => r.p99, 1)} | ${pair((r) => r.scavengesPer1k, 1)} | ${pair((r) => r.gcMsPer1k, 1)} | ${pair((r) => r.loopP99, 1)} ` +
        `| ${pair((r) => r.faultsPerReq)} | ${own((r) => r.rssMiB).toFixed(0)} / ${base((r) => r.rssMiB).toFixed(0)} | ${failures} |`,
    )
  }
  console.log(
    [
      '',
      machineFacts(),
      `wrk 1 thread, ${CONNECTIONS / 2} connections to each of the pair at once, ${SECONDS} s, ${ROUNDS} rounds; population: ${TOKENS} distinct tokens cycling; hot: one token, right after. Medians over rounds; "a / b": the case / its baseline.`,
      '',
      '| load | case | baseline | p99 | p99.9 | CPU µs/req | req/s | p99 ms | scavenges per 1k req | GC pause ms per 1k req | loop delay p99 ms | page faults per req | RSS MiB | failures |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
    ].join('\n'),
  )
  for (const c of children) c.kill()
}

await main()
