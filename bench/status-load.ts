/**
 * A load run that also counts answers by status (2xx, 401, 429, other): for floods of bad
 * tokens, where "how many were refused, and how" is the figure.
 */
import { runRaw, type LoadResult, type LoadSpec } from './load.js'

export interface StatusCounts {
  s2xx: number
  s401: number
  s429: number
  sother: number
}

export type StatusResult = Omit<LoadResult, 'non2xx'> & StatusCounts & { seconds: number }

export async function runStatusLoad(spec: LoadSpec): Promise<StatusResult> {
  const r = await runRaw(spec, { countStatus: true })
  if (!r.statusCounts) throw new Error('the load generator did not count statuses')
  return { rps: r.rps, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors, seconds: r.seconds, ...r.statusCounts }
}
