/**
 * A problem found in a config file, and how it is shown to an operator:
 * `gateway.yaml:12:5 routes[1].upstream: must be an http:// or https:// URL`.
 */

/** One segment per level: a key of a mapping or an index of a sequence. */
export type ConfigPath = readonly (string | number)[]

export interface ConfigProblem {
  /** The setting, e.g. `routes[1].upstream`; `''` for the whole file. */
  path: string
  /** 1-based; `0` when the problem has no place in the file (it could not be read). */
  line: number
  column: number
  message: string
  /** What the file gave, for the operator: `got 70000 from ${PORT}` (secrets redacted; echo.ts). */
  value?: string
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `['routes', 1, 'upstream']` → `routes[1].upstream`; odd keys are quoted: `claims["a.b"]`. */
export function formatPath(path: ConfigPath): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** `file:line:column path: message (got value)`, leaving out whichever parts are unknown. */
export function formatProblem(p: ConfigProblem, file: string): string {
  const where = p.line > 0 ? `${file}:${p.line}:${p.column}` : file
  const message = p.value === undefined ? p.message : `${p.message} (${p.value})`
  return p.path === '' ? `${where} ${message}` : `${where} ${p.path}: ${message}`
}

/** File order reads best; the sort is stable, so problems at one place keep their order. */
export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column)
}

/** Thrown by callers that cannot go on without a valid config (`start`, tests). */
export class ConfigError extends Error {
  readonly code = 'config_invalid'
  readonly problems: readonly ConfigProblem[]
  /** Each problem as `formatProblem` shows it, for logs and the CLI. */
  readonly formatted: readonly string[]

  constructor(problems: readonly ConfigProblem[], file = 'gateway.yaml') {
    const formatted = problems.map((p) => formatProblem(p, file))
    super(`invalid config:\n${formatted.map((line) => `  ${line}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
    this.formatted = formatted
  }
}

/**
 * A problem before it is given a position. `at` says which node it points at: the value
 * (default), the key itself (an unknown key), or the enclosing object (a missing key, which
 * has no node of its own).
 */
export interface Finding {
  path: ConfigPath
  message: string
  at?: 'value' | 'key' | 'parent'
}

/** Whether `a` and `b` are the same setting or one contains the other. */
export function overlaps(a: ConfigPath, b: ConfigPath): boolean {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (String(a[i]) !== String(b[i])) return false
  return true
}
