/**
 * The value a problem is about, as `check-config` echoes it: `(got 70000 from ${PORT})`.
 * An operator whose file reads `port: ${PORT}` cannot see 70000 anywhere else.
 *
 * Problems are printed, logged and kept in CI output, so a value that may be a credential is
 * never shown: a setting whose name says secret (`secret`, `passwordHash`, `clientSecret`,
 * `encryptionKey`, ...) shows `[redacted]`, and a URL keeps its scheme and host but not the
 * password in its user-info (`redis://:[redacted]@cache:6379`).
 */
import type { ConfigPath } from './problems.js'

/** One `${...}` that made a value: its variable, and the default when the default was used. */
export interface Reference {
  name: string
  /** The `:-` default, when the variable was unset or empty and this text was used instead. */
  fallback?: string
}

/** Setting names whose values are credentials (matched at the end, in any case). */
const SECRET_NAME = /(secret|password|passwordhash|passphrase|token|encryptionkey|apikey|privatekey|credentials?)$/i
const LONGEST = 60
const REDACTED = '[redacted]'

export function isSecretSetting(path: ConfigPath): boolean {
  return path.some((seg) => typeof seg === 'string' && SECRET_NAME.test(seg))
}

/** `scheme://user:password@host` → `scheme://user:[redacted]@host`; a user-info without `:` is all hidden. */
function hideUserInfo(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]*)@/, (_, scheme: string, info: string) => {
    const colon = info.indexOf(':')
    return `${scheme}${colon === -1 ? REDACTED : `${info.slice(0, colon)}:${REDACTED}`}@`
  })
}

/** A scalar as it reads in YAML, quoted when a string, cut short when long. */
function show(value: unknown): string | undefined {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value !== 'string') return undefined // a list or an object: the message says which
  const text = hideUserInfo(value)
  // JSON quoting: a control character or an escape sequence in the value cannot reach the terminal.
  return JSON.stringify(text.length > LONGEST ? `${text.slice(0, LONGEST)}…` : text)
}

function showReference(ref: Reference, secret: boolean): string {
  if (ref.fallback === undefined) return `\${${ref.name}}`
  return `the default of \${${ref.name}:-${secret ? REDACTED : ref.fallback}}`
}

/**
 * `got 70000 from ${PORT}`, `got "abc"`, `got [redacted] from ${JWT_SECRET}`; undefined when
 * there is nothing to show (the setting is a list or an object, or is not in the file).
 */
export function describeValue(path: ConfigPath, value: unknown, refs: readonly Reference[] = []): string | undefined {
  const secret = isSecretSetting(path)
  const shown = value === undefined ? undefined : secret ? REDACTED : show(value)
  if (shown === undefined) return undefined
  const from = refs.length === 0 ? '' : ` from ${refs.map((r) => showReference(r, secret)).join(' and ')}`
  return `got ${shown}${from}`
}
