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
  /** The 99.9th percentile (wrk's histogram; autocannon's p99_9). */
  p999ms?: number
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
  return runRaw(spec).then((r) => ({
    rps: r.rps,
    p50ms: r.p50ms,
    p99ms: r.p99ms,
    p999ms: r.p999ms,
    errors: r.errors,
    non2xx: r.non2xx ?? r.requests - (r.statusCounts ? r.statusCounts.s2xx : r.requests),
  }))
}

const script = fileURLToPath(new URL('./wrk-report.lua', import.meta.url))
let runs = 0

/** What one run measured; wrk scripts may add fields (status counts) to their JSON summary. */
export interface RawResult {
  rps: number
  p50ms: number
  p99ms: number
  p999ms: number
  errors: number
  requests: number
  seconds: number
  non2xx?: number
  /** Answers by status class, when the wrk script counts them (always with autocannon). */
  statusCounts?: { s2xx: number; s401: number; s429: number; sother: number }
}

/** One load run with wrk (and wrk-report.lua) or autocannon; `countStatus` adds status counts. */
export function runRaw(spec: LoadSpec, opts: { countStatus?: boolean } = {}): Promise<RawResult> {
  return hasWrk ? runWrk(spec, opts.countStatus === true) : runAutocannon(spec)
}

function runWrk(spec: LoadSpec, countStatus: boolean): Promise<RawResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '5s', '-s', script]
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`)
  const env = { ...process.env, TOKENS_FILE: '', COUNT_STATUS: countStatus ? '1' : '' }
  if (spec.tokens) {
    // One file per run: two runs may be under way at once.
    const file = join(tmpdir(), `bench-tokens-${process.pid}-${runs++}.txt`)
    writeFileSync(file, spec.tokens.join('\n') + '\n')
    env.TOKENS_FILE = file
  }
  args.push(spec.url)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { env, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(err)
      const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'))
      if (!line) return reject(new Error(`no wrk summary in:\n${stdout}`))
      const r = JSON.parse(line) as Record<string, number>
      const seconds = r['duration_us']! / 1e6
      const counted = r['s2xx'] !== undefined
      resolve({
        rps: r['requests']! / seconds,
        p50ms: r['p50_us']! / 1000,
        p99ms: r['p99_us']! / 1000,
        p999ms: r['p999_us']! / 1000,
        errors: r['errors']!,
        requests: r['requests']!,
        seconds,
        ...(r['non2xx'] !== undefined ? { non2xx: r['non2xx'] } : {}),
        ...(counted ? { statusCounts: { s2xx: r['s2xx']!, s401: r['s401']!, s429: r['s429']!, sother: r['sother']! } } : {}),
      })
    })
  })
}

function runAutocannon(spec: LoadSpec): Promise<RawResult> {
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
        const counts = { s2xx: 0, s401: 0, s429: 0, sother: 0 }
        for (const [code, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
          const c = Number(code)
          if (c >= 200 && c < 300) counts.s2xx += count
          else if (c === 401) counts.s401 += count
          else if (c === 429) counts.s429 += count
          else counts.sother += count
        }
        resolve({
          rps: result.requests.average,
          p50ms: result.latency.p50,
          p99ms: result.latency.p99,
          p999ms: result.latency.p99_9,
          errors: result.errors + result.timeouts,
          requests: result.requests.total,
          seconds: result.duration,
          non2xx: result.non2xx,
          statusCounts: counts,
        })
      },
    )
  })
}
