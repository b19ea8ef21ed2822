/**
 * Loading `gateway.yaml`: YAML with positions → `${VAR}` expansion → schema defaults and
 * validation → durations in milliseconds → semantic checks → key paths → a frozen generation.
 * Nothing here throws for a bad file: every problem comes back at once, with its position.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { runChecks } from './checks.js'
import { describeValue, type Reference } from './echo.js'
import { expandEnv } from './expand.js'
import { deepFreeze, resolveKeyFiles } from './finish.js'
import { fileSchema } from './json-schema.js'
import { makeLocator, type Locate } from './locate.js'
import { formatPath, sortProblems, type ConfigProblem, type Finding } from './problems.js'
import type { GatewayConfig } from './schema.js'
import { validate } from './validate.js'
import { convertDurations, fillBranchDefaults } from './walk.js'
import { parseYaml, toData } from './yaml.js'

export { ConfigError, formatProblem, type ConfigProblem } from './problems.js'
export type { Locate, Position } from './locate.js'

export type LoadResult = { ok: true; config: GatewayConfig; locate: Locate; warnings: ConfigProblem[] } | { ok: false; problems: ConfigProblem[] }

export interface ParseOptions {
  /** The file the text came from: key paths resolve against its directory. */
  source: string | null
  env: Record<string, string | undefined>
}

/** Parses and checks a config held in memory (check-config, reload and tests share it). */
export function parseConfig(text: string, opts: ParseOptions): LoadResult {
  const parsed = parseYaml(text)
  if (parsed.problems.length > 0) return { ok: false, problems: sortProblems(parsed.problems) }
  const { locate, place, valueAt } = makeLocator(parsed.doc, parsed.lineCounter)

  const origins = new Map<string, Reference[]>()
  const expansion = expandEnv(parsed.doc, opts.env, origins)
  // A problem about a value shows it (secrets redacted) and the ${VAR} it came from; a missing
  // variable's finding already names it, and a key or a missing setting has no value to show.
  const show = (f: Finding): ConfigProblem => {
    const problem = place(f)
    if ((f.at ?? 'value') !== 'value' || expansion.includes(f)) return problem
    const value = describeValue(f.path, valueAt(f.path), origins.get(problem.path))
    return value === undefined ? problem : { ...problem, value }
  }
  const converted = toData(parsed)
  if ('problem' in converted) return { ok: false, problems: [converted.problem] }
  const data = converted.data

  fillBranchDefaults(fileSchema, data)
  // A value whose variable is missing was left unexpanded: its schema error would only echo that.
  const invalid = validate(data).filter((f) => !expansion.some((e) => formatPath(e.path) === formatPath(f.path)))
  const found: Finding[] = [...expansion, ...invalid]
  found.push(...convertDurations(fileSchema, data))

  const config = data as GatewayConfig
  const checked = runChecks(config, found)
  const problems = [...found, ...checked.problems]
  if (problems.length > 0) return { ok: false, problems: sortProblems(problems.map(show)) }

  const source = opts.source === null ? null : resolve(opts.source)
  resolveKeyFiles(config, source)
  Object.assign(config, { source })
  return { ok: true, config: deepFreeze(config), locate, warnings: sortProblems(checked.warnings.map(show)) }
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'does not exist',
  EACCES: 'cannot be read (permission denied)',
  EISDIR: 'is a directory, not a file',
}

/** Reads and parses a config file; a file that cannot be read is a problem too, not a throw. */
export async function loadConfigFile(path: string, env: Record<string, string | undefined> = process.env): Promise<LoadResult> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    const message = READ_ERRORS[code] ?? `cannot be read: ${(err as Error).message}`
    return { ok: false, problems: [{ path: '', line: 0, column: 0, message }] }
  }
  return parseConfig(text, { source: path, env })
}
