/**
 * A config file as the gateway takes it: loaded, checked, and its key files read, so that
 * `check-config` says "ok" only for a file `start` (and a reload) would accept.
 */
import { staticUserProblems } from '../auth/identity/static.js'
import { KeyProblem, loadKeyring } from '../auth/keys.js'
import { loadConfigFile, type LoadResult } from './load.js'
import type { Locate } from './locate.js'
import { ConfigError, formatPath, formatProblem, sortProblems, type ConfigPath, type ConfigProblem } from './problems.js'
import type { GatewayConfig } from './schema.js'

type Env = Record<string, string | undefined>

/**
 * Problems with the key files (unreadable, wrong type, RSA under 2048 bits), at the setting
 * that names them. The keys are read here only to check them; the caller builds its keyring.
 */
async function keyProblems(config: GatewayConfig, locate: Locate): Promise<ConfigProblem[]> {
  if (!config.auth.keys) return []
  try {
    await loadKeyring(config.auth.keys, config.auth.keys.algorithm)
    return []
  } catch (err) {
    const errors: unknown[] = err instanceof AggregateError ? err.errors : [err]
    return errors.map((e) => {
      const path = e instanceof KeyProblem ? e.path : ['auth', 'keys']
      const { line, column } = locate(path) ?? { line: 0, column: 0 }
      return { path: formatPath(path), line, column, message: e instanceof Error ? e.message : String(e) }
    })
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

async function loadChecked(path: string, env: Env, refuseEmpty = false): Promise<LoadResult> {
  const result = await loadConfigFile(path, env)
  if (!result.ok) return result
  if (refuseEmpty && result.locate([]) === null) return { ok: false, problems: [EMPTY] }
  const problems = sortProblems([...staticUserConfigProblems(result.config, result.locate), ...(await keyProblems(result.config, result.locate))])
  return problems.length > 0 ? { ok: false, problems } : result
}

/** `portcullis check-config`: every problem as `FILE:LINE:COLUMN path: message`; none means ok. */
export async function checkConfigFile(path: string, env: Env = process.env): Promise<string[]> {
  const result = await loadChecked(path, env)
  return result.ok ? [] : result.problems.map((p) => formatProblem(p, path))
}

/**
 * The config for `start` and reloads; throws a `ConfigError` (its `formatted` lists every
 * problem) when the file is not usable. Warnings go to `onWarning`, formatted the same way.
 * `refuseEmpty` (reloads) also refuses a file with nothing in it.
 */
export async function loadGatewayConfig(
  path: string,
  env: Env = process.env,
  onWarning: (line: string) => void = () => {},
  opts: { refuseEmpty?: boolean } = {},
): Promise<GatewayConfig> {
  const result = await loadChecked(path, env, opts.refuseEmpty)
  if (!result.ok) throw new ConfigError(result.problems, path)
  for (const warning of result.warnings) onWarning(formatProblem(warning, path))
  return result.config
}
