/**
 * One load run against a URL: wrk when installed (a C load generator leaves more of these two
 * cores to the processes measured), else autocannon. Same shape of result either way.
 */
import autocannon from 'autocannon'
import { execFile, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface LoadSpec {
  url: string
  connections: number
  seconds: number
  headers?: Record<string, string>
  /** A different bearer token for every request, cycling through the list. */
  tokens?: string[]
  method?: string
}

export interface LoadResult {
  rps: number
  p50ms: number
  p99ms: number
  non2xx: number
  errors: number
}

export const hasWrk = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (err) {
    // wrk prints its version and exits 1; ENOENT means it is not installed.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
})()

export function loadGenerator(): string {
  return hasWrk ? 'wrk 4 (1 thread)' : 'autocannon'
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return hasWrk ? runWrk(spec) : runAutocannon(spec)
}

const script = fileURLToPath(new URL('./wrk-report.lua', import.meta.url))

function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '5s', '-s', script]
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`)
  const env = { ...process.env, TOKENS_FILE: '' }
  if (spec.tokens) {
    const file = join(tmpdir(), `bench-tokens-${process.pid}.txt`)
    writeFileSync(file, spec.tokens.join('\n') + '\n')
    env.TOKENS_FILE = file
  }
  args.push(spec.url)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { env, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(err)
      const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'))
      if (!line) return reject(new Error(`no wrk summary in:\n${stdout}`))
      const r = JSON.parse(line) as { requests: number; duration_us: number; p50_us: number; p99_us: number; non2xx: number; errors: number }
      resolve({ rps: r.requests / (r.duration_us / 1e6), p50ms: r.p50_us / 1000, p99ms: r.p99_us / 1000, non2xx: r.non2xx, errors: r.errors })
    })
  })
}

function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  let i = 0
  const tokens = spec.tokens
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.seconds,
        method: (spec.method ?? 'GET') as 'GET',
        headers: spec.headers ?? {},
        ...(tokens
          ? {
              requests: [
                {
                  setupRequest: (req: Record<string, unknown>) => ({
                    ...req,
                    headers: { ...(req['headers'] as object), authorization: `Bearer ${tokens[i++ % tokens.length]}` },
                  }),
                },
              ],
            }
          : {}),
      } as autocannon.Options,
      (err, result) => {
        if (err) return reject(err)
        resolve({
          rps: result.requests.average,
          p50ms: result.latency.p50,
          p99ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
        })
      },
    )
  })
}
