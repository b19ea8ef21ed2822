/**
 * `npm run bench:gc`: how much of each request outlives the young generation, bare
 * @fastify/http-proxy against the gateway.
 *
 * Each process runs alone with `--trace-gc-nvp` (the gateway adds the V8 flags it sets itself,
 * src/cli/node-flags.ts, as in production; PORTCULLIS_NODE_FLAGS="" leaves them out) while
 * wrk (or autocannon) drives it without a pause for BENCH_WINDOWS windows of BENCH_SECONDS
 * each (6 × 15 s). Per window: requests/s, p99, then per scavenge the bytes
 * promoted to the old generation and the pause, and the number of full collections. A
 * request's objects should die young; a registry that keeps them past two scavenges shows up
 * as promoted bytes, longer scavenges and frequent full collections (docs/benchmarks.md).
 * The gateway runs from the built dist/ (`npm run build` first), or from BENCH_DIST, to compare
 * two commits' builds.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLoad } from './load.js'
import { es256Gateway, startProcess } from './setup.js'

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 15)
const WINDOWS = Number(process.env['BENCH_WINDOWS'] ?? 6)
const root = new URL('..', import.meta.url).pathname
const dist = process.env['BENCH_DIST'] ?? join(root, 'dist')

interface Window {
  rps: number
  p99ms: number
  scavenges: number
  promotedKiB: number
  pauseMs: number
  full: number
}

/** `name=value` pairs of one `--trace-gc-nvp` line, with the milliseconds since the process started. */
function gcEvents(file: string): Array<{ at: number; fields: Map<string, string> }> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const at = /\s(\d+) ms: pause=/.exec(line)
      if (!at) return []
      const fields = new Map(
        line
          .slice(at.index)
          .split(' ')
          .flatMap((p) => (p.includes('=') ? [p.split('=', 2) as [string, string]] : [])),
      )
      return [{ at: Number(at[1]), fields }]
    })
}

async function measure(name: string, args: string[], path: string, headers: Record<string, string>): Promise<Window[]> {
  const trace = join(mkdtempSync(join(tmpdir(), 'portcullis-gc-')), 'gc.txt')
  const children: Array<{ kill(): void }> = []
  // Trace times count from the start of the process's V8 isolate, a few ms after the spawn. The
  // trace goes to stdout, and so do the access log's lines, which the parser skips.
  const spawnedAt = Date.now()
  const { url } = await startProcess('node', ['--trace-gc-nvp', ...args], children, {}, trace)
  try {
    const windows: Array<{ from: number; to: number; rps: number; p99ms: number }> = []
    for (let w = 0; w < WINDOWS; w++) {
      const from = Date.now()
      const r = await runLoad({ url: url + path, connections: 50, seconds: SECONDS, headers })
      windows.push({ from, to: Date.now(), rps: r.rps, p99ms: r.p99ms })
      console.log(`${name} window ${w + 1}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms.toFixed(2)} ms`)
    }
    const events = gcEvents(trace)
    return windows.map((b) => {
      const inside = events.filter((e) => spawnedAt + e.at >= b.from && spawnedAt + e.at < b.to)
      const scavenges = inside.filter((e) => e.fields.get('gc') === 's')
      const mean = (key: string) =>
        scavenges.length === 0 ? 0 : scavenges.reduce((n, e) => n + Number(e.fields.get(key) ?? 0), 0) / scavenges.length
      return {
        rps: b.rps,
        p99ms: b.p99ms,
        scavenges: scavenges.length,
        promotedKiB: mean('promoted') / 1024,
        pauseMs: mean('pause'),
        full: inside.length - scavenges.length,
      }
    })
  } finally {
    for (const c of children) c.kill()
  }
}

async function main(): Promise<void> {
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const { upstream, config, headers } = await es256Gateway(mkdtempSync(join(tmpdir(), 'portcullis-gc-')), children)

  const bare = await measure('bare proxy', [join(root, 'bench/bare-proxy.mjs'), upstream], '/api/x', headers)
  const gateway = await measure('gateway', [join(dist, 'cli.js'), 'start', '--config', config], '/api/x', headers)
  for (const c of children) c.kill()

  const rows = (name: string, ws: Window[]) =>
    ws.map(
      (w, i) =>
        `| ${name} | ${i + 1} | ${w.rps.toFixed(0)} | ${w.p99ms.toFixed(2)} | ${w.scavenges} | ${w.promotedKiB.toFixed(0)} | ${w.pauseMs.toFixed(2)} | ${w.full} |`,
    )
  console.log(
    [
      `\n${SECONDS} s windows, 50 connections, protected ES256 route with the access log (gateway: ${dist})\n`,
      '| process | window | req/s | p99 ms | scavenges | promoted KiB per scavenge | ms per scavenge | full collections |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows('bare proxy', bare),
      ...rows('gateway', gateway),
    ].join('\n'),
  )
}

await main()
