/**
 * `${VAR}` and `${VAR:-default}` in string values, on the syntax tree so that each value
 * keeps its position and we still know whether it was written quoted.
 *
 * - `${NAME:-text}` uses `text` when NAME is unset or empty (as in the shell). The default is
 *   taken literally up to the first `}`; there is no nesting, and an expanded value is never
 *   expanded again (an environment value cannot inject a reference).
 * - `$${` is a literal `${` (the only escape; any other `$` is left alone, so a password such
 *   as `pa$$word` needs none).
 * - A plain (unquoted) value that held a reference is read again as a YAML scalar, so
 *   `port: ${PORT:-8080}` is the integer 8080 and `secure: ${SECURE:-false}` a boolean.
 *   A quoted or block value stays a string. An empty plain result reads as null, as `key:` does.
 * - Keys are never expanded: the set of settings must not depend on the environment.
 */
import { visit, type Document } from 'yaml'
import type { Reference } from './echo.js'
import { pathOfNode } from './locate.js'
import { formatPath, type Finding } from './problems.js'

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}|\$\{/g

type Env = Record<string, string | undefined>

/**
 * Replaces references in `text`; names of unset variables and malformed references go to `bad`,
 * and each reference that gave the value to `used` (so a problem can say where a value came from).
 */
export function expandString(text: string, env: Env, bad: string[], used: Reference[] = []): string {
  return text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${'
    if (name === undefined) {
      bad.push('has a malformed ${...}: write ${NAME} or ${NAME:-default}, or $${ for a literal ${')
      return match
    }
    const value = env[name]
    if (fallback !== undefined && (value === undefined || value === '')) {
      used.push({ name, fallback: fallback.slice(2) })
      return fallback.slice(2)
    }
    used.push({ name })
    if (value === undefined) bad.push(`needs the environment variable ${name}, which is not set`)
    return value ?? match
  })
}

/** The YAML 1.2 core schema's reading of a plain scalar (spec chapter 10.3.2). */
const CORE_SCALARS: [RegExp, (text: string) => unknown][] = [
  [/^(?:~|null|Null|NULL)?$/, () => null],
  [/^(?:true|True|TRUE)$/, () => true],
  [/^(?:false|False|FALSE)$/, () => false],
  [/^[-+]?[0-9]+$/, Number],
  [/^0o[0-7]+$/, (t) => parseInt(t.slice(2), 8)],
  [/^0x[0-9a-fA-F]+$/, (t) => parseInt(t.slice(2), 16)],
  [/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/, Number],
  [/^[-+]?\.(?:inf|Inf|INF)$/, (t) => (t.startsWith('-') ? -Infinity : Infinity)],
  [/^\.(?:nan|NaN|NAN)$/, () => NaN],
]

export function readPlainScalar(text: string): unknown {
  for (const [test, read] of CORE_SCALARS) if (test.test(text)) return read(text)
  return text
}

/**
 * Expands every string value in place; one finding per value that cannot be expanded. The
 * references behind each expanded value go to `origins`, by the setting's formatted path.
 */
export function expandEnv(doc: Document, env: Env, origins?: Map<string, Reference[]>): Finding[] {
  const findings: Finding[] = []
  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
      const bad: string[] = []
      const used: Reference[] = []
      const expanded = expandString(node.value, env, bad, used)
      if (used.length > 0) origins?.set(formatPath(pathOfNode(ancestry, node)), used)
      for (const message of bad) findings.push({ path: pathOfNode(ancestry, node), message })
      if (bad.length === 0) node.value = node.type === 'PLAIN' ? readPlainScalar(expanded) : expanded
    },
  })
  return findings
}
