/**
 * The real `portcullis` CLI as operators run it: compiled JavaScript started by plain node.
 *
 * Starting the TypeScript sources through tap's loader takes ~5 s per process here, a
 * compiled CLI ~0.5 s; so the sources are compiled once (`tsc -p tsconfig.build.json`, the
 * command `npm install` and the Dockerfile run) into a temporary directory named after a
 * digest of everything that goes into the build, and every test file reuses it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')

function digestOf(paths: string[]): string {
  const hash = createHash('sha256')
  const files: string[] = []
  const collect = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) collect(full)
      else files.push(full)
    }
  }
  for (const p of paths) {
    if (p.endsWith('.json')) files.push(p)
    else collect(p)
  }
  for (const file of files.sort()) hash.update(file).update('\0').update(readFileSync(file)).update('\0')
  return hash.digest('hex').slice(0, 16)
}

let built: string | null = null

/**
 * The directory holding the compiled CLI (`cli.js`, `ops/healthcheck.js`, ...). Type errors
 * do not stop the build (tsc still emits; `npm run typecheck` is where they fail), so a test
 * of the CLI is not hostage to an unrelated file being edited.
 */
export function buildCli(): string {
  if (built) return built
  const key = digestOf([join(ROOT, 'src'), join(ROOT, 'tsconfig.json'), join(ROOT, 'tsconfig.build.json'), join(ROOT, 'package.json')])
  const home = join(tmpdir(), `portcullis-build-${key}`)
  if (!existsSync(join(home, 'dist', 'cli.js'))) {
    const work = `${home}.${process.pid}`
    rmSync(work, { recursive: true, force: true })
    mkdirSync(work)
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const out = spawnSync(
      process.execPath,
      [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(work, 'dist'), '--declaration', 'false', '--sourceMap', 'false'],
      {
        encoding: 'utf8',
      },
    )
    if (!existsSync(join(work, 'dist', 'cli.js'))) throw new Error(`the build failed:\n${out.stdout}${out.stderr}`)
    // ESM like the package (whose name and version it reports), its dependencies, and the
    // browser files it serves from client/.
    const { name, version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string }
    writeFileSync(join(work, 'package.json'), JSON.stringify({ name, version, type: 'module' }))
    symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'))
    symlinkSync(join(ROOT, 'client'), join(work, 'client'))
    try {
      renameSync(work, home)
    } catch {
      rmSync(work, { recursive: true, force: true }) // another test file built it first
    }
    pruneOldBuilds()
  }
  built = join(home, 'dist')
  return built
}

/** Builds of sources that have changed since pile up: drop those unused for an hour. */
function pruneOldBuilds(): void {
  const hourAgo = Date.now() - 3_600_000
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('portcullis-build-')) continue
    const dir = join(tmpdir(), name)
    try {
      if (statSync(dir).mtimeMs < hourAgo) rmSync(dir, { recursive: true, force: true })
    } catch {
      // gone already: another test file pruned it
    }
  }
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs `portcullis ...args` to completion (at most 20 s). */
export function runCli(args: string[], opts: { stdin?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const child = spawnCli(args, opts)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin)
  else child.stdin!.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

export function spawnCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; ownGroup?: boolean } = {}): ChildProcess {
  return spawn(process.execPath, [join(buildCli(), 'cli.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    // Only what the test gives: no PORTCULLIS_CONFIG or PORT from the developer's shell.
    env: { PATH: process.env['PATH'] ?? '', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // A process group of its own, to be signalled as a whole (as Ctrl-C or systemd do).
    detached: opts.ownGroup === true,
  })
}

export interface GatewayProcess {
  child: ChildProcess
  /** Where it listens, from its "portcullis listening" log line. */
  url: string
  /** Milliseconds from spawn to that line. */
  startMs: number
  logs(): Record<string, unknown>[]
  /** The first log line (past or to come) matching `test`; rejects after `timeoutMs`. */
  logged(test: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stderr(): string
}

/**
 * `portcullis start --config FILE` as a real process (or `portcullis ...args`, to find the
 * config another way); killed at teardown if still running.
 */
export async function startProcess(
  t: { teardown(fn: () => unknown): void },
  configPath: string,
  opts: { env?: Record<string, string>; cwd?: string; args?: string[]; ownGroup?: boolean; startTimeoutMs?: number } = {},
): Promise<GatewayProcess> {
  const started = performance.now()
  const child = spawnCli(opts.args ?? ['start', '--config', configPath], opts)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  })
  const lines: Record<string, unknown>[] = []
  const waiters = new Set<{ test: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>()
  let buffer = ''
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
      const text = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        line = { msg: text, notJson: true }
      }
      lines.push(line)
      for (const w of waiters) {
        if (!w.test(line)) continue
        waiters.delete(w)
        w.resolve(line)
      }
    }
  })
  const logged = (test: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = {
        test,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(timer)
          resolve(l)
        },
      }
      const timer = setTimeout(() => {
        waiters.delete(w)
        reject(new Error(`expected log line never came; stderr: ${stderr}`))
      }, timeoutMs)
      waiters.add(w)
    })
  }
  const ready = await Promise.race([
    // Several workers load the code each: on a busy 2-core machine that took 8-12 s here. Even
    // one process took over 10 s with the suite's two jobs and two busy loops beside it, so the
    // default is generous: a start that fails exits, which the race below sees at once.
    logged((l) => l['msg'] === 'portcullis listening', opts.startTimeoutMs ?? 30_000),
    exited.then(({ code }) => {
      throw new Error(`portcullis start exited with ${code}: ${stderr}`)
    }),
  ])
  return {
    child,
    url: String(ready['url']),
    startMs: performance.now() - started,
    logs: () => lines,
    logged,
    exited,
    stderr: () => stderr,
  }
}
