/**
 * The real process wiring (src/main.ts startGateway) in this process: a config file in a
 * temporary directory, logs captured, and a way to rewrite the file the way operators do.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { startGateway, type RunningGateway } from '../../src/main.js'

export interface Running {
  gw: RunningGateway
  dir: string
  file: string
  /** Every log line so far, parsed. */
  logs(): Record<string, unknown>[]
  /** Resolves with the first log line (already written or still to come) matching `test`. */
  logged(test: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Only with `configMap: true`: publishes a new version the way the kubelet does. */
  configMapUpdate(text: string): Promise<void>
}

interface Tap {
  teardown(fn: () => unknown): void
  testdir(fixture?: Record<string, string>): string
}

/** The listen settings every test config starts with: loopback, any free port. */
export const LISTEN = 'server: { host: 127.0.0.1, port: 0, shutdownTimeout: 2s }\n'

export interface RunningOptions {
  env?: Record<string, string>
  /** Lay the directory out as a Kubernetes ConfigMap volume. */
  configMap?: boolean
  /** Make the config file a symlink to this (existing) file. */
  symlinkTo?: string
}

export async function startRunning(t: Tap, yaml: string, opts: RunningOptions = {}): Promise<Running> {
  const dir = t.testdir()
  const file = join(dir, 'gateway.yaml')
  const configMap = opts.configMap ? await configMapDir(dir, 'gateway.yaml', yaml) : null
  if (opts.symlinkTo) await symlink(opts.symlinkTo, file)
  else if (!configMap) await writeFile(file, yaml)
  const lines: Record<string, unknown>[] = []
  const waiters = new Set<{ test: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>()
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as Record<string, unknown>
        lines.push(line)
        for (const w of waiters) {
          if (!w.test(line)) continue
          waiters.delete(w)
          w.resolve(line)
        }
      }
      cb()
    },
  })
  const gw = await startGateway({ configPath: file, env: opts.env ?? {}, logDestination: sink })
  t.teardown(() => gw.close())
  return {
    gw,
    dir,
    file,
    logs: () => lines,
    configMapUpdate: (text) => {
      if (!configMap) throw new Error('startRunning was not given configMap: true')
      return configMap.update(text)
    },
    logged(test, timeoutMs = 5000) {
      const seen = lines.find(test)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const w = {
          test,
          resolve: (l: Record<string, unknown>) => {
            clearTimeout(timer)
            resolve(l)
          },
        }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error('expected log line never came'))
        }, timeoutMs)
        waiters.add(w)
      })
    },
  }
}

/** An editor's atomic save: write a temporary file beside it, then rename it over the old one. */
export async function replaceByRename(file: string, text: string): Promise<void> {
  // One name per call: two replacements under way at once must not share a temporary file.
  const tmp = `${file}.tmp-${process.pid}-${randomUUID()}`
  await writeFile(tmp, text)
  await rename(tmp, file)
}

/**
 * A Kubernetes ConfigMap volume: `gateway.yaml -> ..data/gateway.yaml`, `..data -> ..<ts>`;
 * an update writes a new `..<ts>` directory and swaps the `..data` symlink by rename.
 */
export async function configMapDir(dir: string, name: string, text: string): Promise<{ update(text: string): Promise<void> }> {
  let n = 0
  const version = async (body: string) => {
    const real = `..2026_01_01_00_00_0${n++}`
    await mkdir(join(dir, real))
    await writeFile(join(dir, real, name), body)
    return real
  }
  await symlink(await version(text), join(dir, '..data'))
  await symlink(join('..data', name), join(dir, name))
  return {
    async update(body) {
      const real = await version(body)
      await symlink(real, join(dir, '..data_tmp'))
      await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    },
  }
}
