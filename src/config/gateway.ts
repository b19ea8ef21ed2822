/**
 * A config file as the gateway takes it: loaded, checked, and its key files read, so that
 * `check-config` says "ok" only for a file `start` (and a reload) would accept.
 */
import { KeyProblem, loadKeyring } from '../auth/keys.js'
import { loadConfigFile, type LoadResult } from './load.js'
import type { Locate } from './locate.js'
import { ConfigError, formatPath, formatProblem, type ConfigProblem } from './problems.js'
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

async function loadChecked(path: string, env: Env): Promise<LoadResult> {
  const result = await loadConfigFile(path, env)
  if (!result.ok) return result
  const problems = await keyProblems(result.config, result.locate)
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
 */
export async function loadGatewayConfig(
  path: string,
  env: Env = process.env,
  onWarning: (line: string) => void = () => {},
): Promise<GatewayConfig> {
  const result = await loadChecked(path, env)
  if (!result.ok) throw new ConfigError(result.problems, path)
  for (const warning of result.warnings) onWarning(formatProblem(warning, path))
  return result.config
}
