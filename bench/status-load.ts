/**
 * A load run that also counts answers by status (2xx, 401, 429, other): for floods of bad
 * tokens, where "how many were refused, and how" is the figure. wrk with wrk-status.lua (a
 * separate script: its per-response callback costs wrk time the main benchmark should not
 * pay), else autocannon; the same shape of result either way.
 */
import { fileURLToPath } from 'node:url'
import { runRaw, type LoadResult, type LoadSpec } from './load.js'

export interface StatusCounts {
  s2xx: number
  s401: number
  s429: number
  sother: number
}

export type StatusResult = Omit<LoadResult, 'non2xx'> & StatusCounts & { seconds: number }

const script = fileURLToPath(new URL('./wrk-status.lua', import.meta.url))

export async function runStatusLoad(spec: LoadSpec): Promise<StatusResult> {
  const r = await runRaw(spec, script)
  if (!r.statusCounts) throw new Error('the load generator did not count statuses')
  return { rps: r.rps, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors, seconds: r.seconds, ...r.statusCounts }
}
