/**
 * `npm run bench:cpu`: CPU time per request, bare @fastify/http-proxy against the gateway, by
 * package — the difference is what the gateway's own work costs, and where.
 *
 * Each process runs alone under `node --cpu-prof` while wrk (or autocannon) drives it; non-idle
 * main-thread time from the profile is divided by the requests served. Environment:
 * BENCH_SECONDS (8), BENCH_PATH (/api/x: protected; /public/x: no auth; /api/big: a streamed 128 KiB answer), BENCH_ACCESS_LOG (false).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runRaw } from './load.js'
import { es256Gateway, freePort } from './setup.js'

interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>
  samples: number[]
  timeDeltas: number[]
}

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8)
const PATH = process.env['BENCH_PATH'] ?? '/api/x'
const root = new URL('..', import.meta.url).pathname

/** Runs `args` under the profiler until loaded for SECONDS, and returns µs per request by package. */
async function profile(
  args: string[],
  path: string,
  headers: Record<string, string>,
): Promise<{ rps: number; total: number; byPackage: Map<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cpu-'))
  const port = await freePort()
  // SIGINT must end the process normally, or V8 writes no profile.
  const exitOnSigint = join(dir, 'exit.mjs')
  writeFileSync(exitOnSigint, "process.on('SIGINT', () => process.exit(0))\n")
  const child = spawn('node', ['--import', exitOnSigint, '--cpu-prof', `--cpu-prof-dir=${dir}`, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port) },
  })
  const url = `http://127.0.0.1:${port}`
  for (
    let i = 0;
    i < 100 &&
    !(await fetch(url + '/readyz').then(
      (r) => r.status < 500,
      () => false,
    ));
    i++
  )
    await new Promise((r) => setTimeout(r, 100))
  const load = await runRaw({ url: url + path, connections: 50, seconds: SECONDS, headers })
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGINT')
  await exited
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('no profile written')
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]))
  const byPackage = new Map<string, number>()
  let total = 0
  p.samples.forEach((id, i) => {
    const { functionName, url: src } = byId.get(id)!
    if (functionName === '(idle)') return
    const us = p.timeDeltas[i] ?? 0
    total += us
    const where = src.replace(`file://${root}`, '').replace(/^.*node_modules\//, '')
    const owner =
      src === ''
        ? `(${functionName || 'native'})`
        : src.startsWith('node:')
          ? 'node core'
          : where.startsWith('dist/')
            ? where
            : where
                .split('/')
                .slice(0, where.startsWith('@') ? 2 : 1)
                .join('/')
    byPackage.set(owner, (byPackage.get(owner) ?? 0) + us)
  })
  const perRequest = new Map([...byPackage].map(([k, us]) => [k, us / load.requests]))
  return { rps: load.rps, total: total / load.requests, byPackage: perRequest }
}

async function main(): Promise<void> {
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const { upstream, config, headers } = await es256Gateway(mkdtempSync(join(tmpdir(), 'portcullis-cpu-')), children, {
    accessLog: process.env['BENCH_ACCESS_LOG'] === 'true',
  })

  // The bare proxy serves /api only: the same path where it can, so /api/big compares like with like.
  const bare = await profile([join(root, 'bench/bare-proxy.mjs'), upstream], PATH.startsWith('/api/') ? PATH : '/api/x', headers)
  const gw = await profile([join(root, 'dist/cli.js'), 'start', '--config', config], PATH, headers)
  for (const c of children) c.kill()

  console.log(`bare proxy: ${bare.rps.toFixed(0)} req/s, ${bare.total.toFixed(1)} µs CPU per request`)
  console.log(`gateway ${PATH}: ${gw.rps.toFixed(0)} req/s, ${gw.total.toFixed(1)} µs CPU per request\n`)
  const names = new Set([...bare.byPackage.keys(), ...gw.byPackage.keys()])
  const rows = [...names]
    .map((n) => ({ n, b: bare.byPackage.get(n) ?? 0, g: gw.byPackage.get(n) ?? 0 }))
    .sort((x, y) => y.g - y.b - (x.g - x.b))
    .slice(0, 20)
  console.log('| µs per request: gateway − bare | bare | gateway | where |\n| ---: | ---: | ---: | --- |')
  for (const { n, b, g } of rows) console.log(`| ${(g - b).toFixed(2)} | ${b.toFixed(2)} | ${g.toFixed(2)} | \`${n}\` |`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
