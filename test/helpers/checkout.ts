/**
 * A copy of this checkout outside the repository, for tests of how the package installs
 * (npm finds a project by walking up from its directory, so a copy inside the repository
 * would resolve back into its node_modules), and npm run the way a user runs it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { ROOT } from './cli.js'

export const run = promisify(execFile)

/** The environment minus what `npm test` itself exports about this package. */
export const npmEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('npm_package_') && !k.startsWith('npm_lifecycle_') && k !== 'INIT_CWD'),
)

/** Flags that keep npm fast and quiet: the registry is asked only for what its cache lacks. */
export const QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']

export function tempDir(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `portcullis-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Every file git would commit from the working tree (tracked or new), without dist/ or node_modules/. */
export async function copyCheckout(t: Test): Promise<string> {
  const checkout = tempDir(t, 'checkout')
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 1 << 24 })
  for (const file of stdout.split('\0')) {
    if (file === '') continue
    try {
      cpSync(join(ROOT, file), join(checkout, file))
    } catch {
      // listed by git but deleted in the working tree
    }
  }
  return checkout
}

export interface Started {
  child: ChildProcess
  /** The gateway's own pid and address, from its "portcullis listening" line. */
  pid: number
  base: string
  exited: Promise<number | null>
  stdout(): string
}

/**
 * Runs `command` (npx or npm, which start the gateway behind a shell) until the gateway
 * logs that it listens.
 */
export async function startThrough(t: Test, command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Started> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? npmEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let stdout = ''
  let stderr = ''
  let pid = 0
  t.teardown(() => {
    child.kill('SIGKILL')
    // npm does not pass a signal on to the command behind its shell: end the gateway itself.
    if (pid === 0) return
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // exited already
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const listening = await new Promise<{ pid: number; url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never listened; stderr: ${stderr}`)), 60_000)
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
      for (const line of stdout.split('\n')) {
        if (!line.includes('"portcullis listening"')) continue
        clearTimeout(timer)
        resolve(JSON.parse(line) as { pid: number; url: string })
      }
    })
    void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)))
  })
  pid = listening.pid
  return { child, pid, base: `http://127.0.0.1:${new URL(listening.url).port}`, exited, stdout: () => stdout }
}
