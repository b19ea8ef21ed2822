/** Small statistics shared by the session, flood and memory benchmarks. */
export const median = (xs: number[]): number => quantile(xs, 0.5)

/** The q-quantile by the nearest-rank method (q in 0..1). */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export const fixed = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a')
export const whole = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : 'n/a')
export const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
