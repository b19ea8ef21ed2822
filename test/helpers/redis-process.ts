/**
 * Low-level plumbing for the Redis test harness: free ports, spawning `redis-server`, a tiny
 * RESP client, and killing every child we started when the test process ends, whatever way.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Anything with tap's `teardown`; keeps the harness independent of tap's class types. */
export interface TeardownHost {
  teardown(fn: () => unknown): void
}

const live = new Set<ChildProcess>()
const dirs = new Set<string>()
let hooked = false

/** Kills our children on exit and on SIGINT/SIGTERM, then lets the signal do its job. */
function hookProcessExit(): void {
  if (hooked) return
  hooked = true
  const killAll = () => {
    for (const child of live) child.kill('SIGKILL')
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll()
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** A temporary directory removed on teardown, or at exit if teardown never comes. */
export function tempDir(t: TeardownHost, name: string): string {
  hookProcessExit()
  const dir = mkdtempSync(join(tmpdir(), `portcullis-${name}-`))
  dirs.add(dir)
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true })
    dirs.delete(dir)
  })
  return dir
}

/** A port the OS just reported free on 127.0.0.1. Never 6379: that is the machine's own Redis. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    if (port !== 0 && port !== 6379 && port < 55536) return port
  }
}

export interface Spawned {
  child: ChildProcess
  /** The last lines the server printed, for failure messages. */
  output(): string
  exited: Promise<void>
}

export function spawnRedis(args: string[], cwd: string): Spawned {
  hookProcessExit()
  const child = spawn('redis-server', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let log = ''
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child)
      resolve()
    })
  })
  return { child, output: () => log, exited }
}

export async function kill(proc: Spawned, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return
  proc.child.kill(signal)
  await proc.exited
}

/**
 * Sends one command and returns the raw reply text. Enough for PING, SHUTDOWN, INFO-like
 * bulk replies; resolves with what arrived if the server closes the connection.
 */
export function resp(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let data = ''
    const done = (err?: Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(data)
    }
    const timer = setTimeout(() => done(new Error(`no reply from port ${port}`)), timeoutMs)
    socket.once('error', done)
    socket.once('close', () => done())
    socket.on('data', (chunk) => {
      data += chunk.toString()
      if (complete(data)) done()
    })
    socket.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
  })
}

function complete(reply: string): boolean {
  const eol = reply.indexOf('\r\n')
  if (eol < 0) return false
  if (reply[0] !== '$') return reply[0] !== '*' || reply.endsWith('\r\n')
  const length = Number(reply.slice(1, eol))
  return length < 0 || Buffer.byteLength(reply) >= eol + 2 + length + 2
}

/** Polls until `check` holds; real waiting is fine here: it is a process starting up. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export const answersPing = (port: number) => async () => (await resp(port, ['PING'], 300)).startsWith('+PONG')
