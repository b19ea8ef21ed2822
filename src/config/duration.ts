/**
 * Durations in gateway.yaml: `"500ms"`, `"30s"`, `"10m"`, `"12h"`, `"14d"` or an integer
 * number of seconds. The loader hands them out as milliseconds.
 */
import { DURATION_PATTERN } from './schema.js'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION = new RegExp(DURATION_PATTERN)

/** Whether `value` is written as a duration (it may still be too long to use). */
export const isDurationSyntax = (value: unknown): boolean =>
  (typeof value === 'string' && DURATION.test(value)) || (Number.isInteger(value) && (value as number) >= 0)

/**
 * Milliseconds, or `null` for anything that is not a duration. Values too large to be exact
 * as a JavaScript number are refused too (they could not be compared reliably).
 */
export function parseDuration(value: unknown): number | null {
  let ms: number
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) return null
    ms = value * 1000
  } else if (typeof value === 'string' && DURATION.test(value)) {
    const unit = /[a-z]+$/.exec(value)![0] as keyof typeof UNIT_MS
    ms = Number(value.slice(0, -unit.length)) * UNIT_MS[unit]
  } else {
    return null
  }
  return Number.isSafeInteger(ms) ? ms : null
}

/** The shortest exact spelling, for messages: 600000 → `10m`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`
  }
  return `${ms}ms`
}
