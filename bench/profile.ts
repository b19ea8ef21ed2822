/**
 * `npm run bench:profile`: where a proxied request's CPU time goes.
 *
 * Starts the upstream and one ES256 gateway under `node --cpu-prof`, drives the protected route
 * (and the public one) with load, stops the gateway so V8 writes its profile, and prints the
 * functions and packages with the most self time. BENCH_SECONDS (10), BENCH_PATH (/api/x).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLoad } from './load.js'
import { es256Gateway, freePort } from './setup.js'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10)
const PATH = process.env['BENCH_PATH'] ?? '/api/x'

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-profile-'))
  const children: Array<{ kill(signal?: NodeJS.Signals): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const { config, headers } = await es256Gateway(dir, children)

  const port = await freePort()
  const gw = spawn('node', ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(root, 'dist/cli.js'), 'start', '--config', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port) },
  })
  const url = `http://127.0.0.1:${port}`
  for (
    let i = 0;
    i < 100 &&
    !(await fetch(url + '/readyz').then(
      (r) => r.ok,
      () => false,
    ));
    i++
  )
    await new Promise((r) => setTimeout(r, 100))
  const result = await runLoad({ url: url + PATH, connections: 50, seconds: SECONDS, headers })
  console.log(`${PATH}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99ms.toFixed(2)} ms`)
  const exited = new Promise((r) => gw.once('exit', r))
  gw.kill('SIGINT')
  await exited

  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('no profile written')
  console.log(summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, root))
  for (const c of children) c.kill()
}

/** Self time by function and by package, as a share of all samples. */
function summarise(profile: Profile, root: string): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fn = new Map<string, number>()
  const pkg = new Map<string, number>()
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const where = url.replace(`file://${root}`, '').replace(/^.*node_modules\//, '')
    const owner =
      url === ''
        ? `(${functionName || 'native'})`
        : url.startsWith('node:')
          ? 'node core'
          : where.startsWith('dist/')
            ? 'portcullis'
            : where
                .split('/')
                .slice(0, where.startsWith('@') ? 2 : 1)
                .join('/')
    fn.set(
      `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`,
      (fn.get(`${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`) ?? 0) + us,
    )
    pkg.set(owner, (pkg.get(owner) ?? 0) + us)
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `| ${((100 * us) / total).toFixed(1)}% | \`${k}\` |`)
      .join('\n')
  return ['| self time | package |', '| ---: | --- |', top(pkg, 12), '', '| self time | function |', '| ---: | --- |', top(fn, 20)].join('\n')
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
