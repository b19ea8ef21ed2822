/**
 * A config file as the gateway takes it: loaded, checked, and its key files read, so that
 * `check-config` says "ok" only for a file `start` (and a reload) would accept.
 */
import { staticUserProblems } from '../auth/identity/static.js'
import { KeyProblem, loadKeyring, type Keyring } from '../auth/keys.js'
import { CertificateError, readCertificate } from '../tls/certificate.js'
import { loadConfigFile, type LoadResult } from './load.js'
import type { Locate } from './locate.js'
import { ConfigError, formatPath, formatProblem, sortProblems, type ConfigPath, type ConfigProblem } from './problems.js'
import type { GatewayConfig } from './schema.js'

type Env = Record<string, string | undefined>

/**
 * The configured keys, imported once (unreadable, wrong type and RSA-under-2048 problems are
 * reported at the setting that names the file); null when none are configured.
 */
async function loadKeys(config: GatewayConfig, locate: Locate): Promise<{ keyring: Keyring | null; problems: ConfigProblem[] }> {
  if (!config.auth.keys) return { keyring: null, problems: [] }
  try {
    return { keyring: await loadKeyring(config.auth.keys, config.auth.keys.algorithm), problems: [] }
  } catch (err) {
    const errors: unknown[] = err instanceof AggregateError ? err.errors : [err]
    const problems = errors.map((e) => {
      const path = e instanceof KeyProblem ? e.path : ['auth', 'keys']
      const { line, column } = locate(path) ?? { line: 0, column: 0 }
      return { path: formatPath(path), line, column, message: e instanceof Error ? e.message : String(e) }
    })
    return { keyring: null, problems }
  }
}

/**
 * Static users the identity source would refuse to start with (a value that is not a hash,
 * a role with a comma), at their line: the same rules the source applies, checked up front.
 * Duplicate usernames are left to the schema checks, which already report them.
 */
function staticUserConfigProblems(config: GatewayConfig, locate: Locate): ConfigProblem[] {
  return config.auth.identity.flatMap((source, s) => {
    if (source.type !== 'static') return []
    return staticUserProblems(source.users)
      .filter((p) => !p.path.endsWith('.username'))
      .map((p) => {
        const path: ConfigPath = ['auth', 'identity', s, 'users', ...relativePath(p.path)]
        const { line, column } = locate(path) ?? locate(path.slice(0, 5)) ?? { line: 0, column: 0 }
        return { path: formatPath(path), line, column, message: p.message }
      })
  })
}

/** `[2].roles[0]` → `[2, 'roles', 0]` */
function relativePath(path: string): (string | number)[] {
  return [...path.matchAll(/\[(\d+)\]|([A-Za-z_$][\w$]*)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2]!))
}

/** A reload refuses a file with no content: it was far more likely caught mid-write than meant. */
const EMPTY: ConfigProblem = {
  path: '',
  line: 0,
  column: 0,
  message: 'is empty: a reload takes every setting from the file, so an empty one (perhaps caught while being written) is refused',
}

type Checked = { ok: false; problems: ConfigProblem[] } | (Extract<LoadResult, { ok: true }> & { keyring: Keyring | null })

async function loadChecked(path: string, env: Env, refuseEmpty = false): Promise<Checked> {
  const result = await loadConfigFile(path, env)
  if (!result.ok) return result
  if (refuseEmpty && result.locate([]) === null) return { ok: false, problems: [EMPTY] }
  const keys = await loadKeys(result.config, result.locate)
  const problems = sortProblems([...staticUserConfigProblems(result.config, result.locate), ...keys.problems])
  return problems.length > 0 ? { ok: false, problems } : { ...result, keyring: keys.keyring }
}

/**
 * `portcullis check-config`: every problem as `FILE:LINE:COLUMN path: message`; none means ok.
 * The warnings of a usable file go to `onWarning`, formatted the same way.
 */
export async function checkConfigFile(path: string, env: Env = process.env, onWarning: (line: string) => void = () => {}): Promise<string[]> {
  const result = await loadChecked(path, env)
  if (!result.ok) return result.problems.map((p) => formatProblem(p, path))
  const tls = await certificateProblem(result.config, result.locate)
  if (tls !== null) return [formatProblem(tls, path)]
  for (const warning of result.warnings) onWarning(formatProblem(warning, path))
  return []
}

/**
 * server.tls's pair, checked as `start` checks it (src/tls/certificate.ts). Not part of a
 * reload's checks: a reload that cannot read the pair keeps the one in service and still
 * applies the rest of the file (src/tls/certificates.ts).
 */
async function certificateProblem(config: GatewayConfig, locate: Locate): Promise<ConfigProblem | null> {
  const tls = config.server.tls
  if (!tls) return null
  try {
    await readCertificate(tls)
    return null
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err
    const path: ConfigPath = ['server', 'tls', err.file === tls.keyFile ? 'keyFile' : 'certFile']
    const { line, column } = locate(path) ?? { line: 0, column: 0 }
    return { path: formatPath(path), line, column, message: err.message }
  }
}

/**
 * The config for `start` and reloads, with its keys already imported (null when the file
 * configures none); throws a `ConfigError` (its `formatted` lists every problem) when the file
 * is not usable. Warnings go to `onWarning`, formatted the same way. `refuseEmpty` (reloads)
 * also refuses a file with nothing in it.
 */
export async function loadGateway(
  path: string,
  env: Env = process.env,
  onWarning: (line: string) => void = () => {},
  opts: { refuseEmpty?: boolean } = {},
): Promise<{ config: GatewayConfig; keyring: Keyring | null }> {
  const result = await loadChecked(path, env, opts.refuseEmpty)
  if (!result.ok) throw new ConfigError(result.problems, path)
  for (const warning of result.warnings) onWarning(formatProblem(warning, path))
  return { config: result.config, keyring: result.keyring }
}

/** The config alone (see loadGateway). */
export async function loadGatewayConfig(
  path: string,
  env: Env = process.env,
  onWarning: (line: string) => void = () => {},
  opts: { refuseEmpty?: boolean } = {},
): Promise<GatewayConfig> {
  return (await loadGateway(path, env, onWarning, opts)).config
}
