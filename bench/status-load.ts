/**
 * A load run that also counts answers by status (2xx, 401, 429, other): for floods of bad
 * tokens, where "how many were refused, and how" is the figure. wrk (with wrk-status.lua)
 * when installed, else autocannon; the same shape of result either way.
 */
import autocannon from 'autocannon'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hasWrk, type LoadResult, type LoadSpec } from './load.js'

export interface StatusCounts {
  s2xx: number
  s401: number
  s429: number
  sother: number
}

export type StatusResult = Omit<LoadResult, 'non2xx'> & StatusCounts & { seconds: number }

const script = fileURLToPath(new URL('./wrk-status.lua', import.meta.url))
let runs = 0

export function runStatusLoad(spec: LoadSpec): Promise<StatusResult> {
  return hasWrk ? runWrk(spec) : runAutocannon(spec)
}

function runWrk(spec: LoadSpec): Promise<StatusResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '5s', '-s', script]
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`)
  const env = { ...process.env, TOKENS_FILE: '' }
  if (spec.tokens) {
    // One file per run: two of these may run at once.
    const file = join(tmpdir(), `bench-status-tokens-${process.pid}-${runs++}.txt`)
    writeFileSync(file, spec.tokens.join('\n') + '\n')
    env.TOKENS_FILE = file
  }
  args.push(spec.url)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { env, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(err)
      const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'))
      if (!line) return reject(new Error(`no wrk summary in:\n${stdout}`))
      const r = JSON.parse(line) as StatusCounts & { requests: number; duration_us: number; p50_us: number; p99_us: number; errors: number }
      const seconds = r.duration_us / 1e6
      resolve({ rps: r.requests / seconds, p50ms: r.p50_us / 1000, p99ms: r.p99_us / 1000, errors: r.errors, seconds, s2xx: r.s2xx, s401: r.s401, s429: r.s429, sother: r.sother })
    })
  })
}

function runAutocannon(spec: LoadSpec): Promise<StatusResult> {
  let i = 0
  const tokens = spec.tokens
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.seconds,
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
        const counts: StatusCounts = { s2xx: 0, s401: 0, s429: 0, sother: 0 }
        for (const [code, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
          const c = Number(code)
          if (c >= 200 && c < 300) counts.s2xx += count
          else if (c === 401) counts.s401 += count
          else if (c === 429) counts.s429 += count
          else counts.sother += count
        }
        resolve({ rps: result.requests.average, p50ms: result.latency.p50, p99ms: result.latency.p99, errors: result.errors + result.timeouts, seconds: result.duration, ...counts })
      },
    )
  })
}
