/**
 * Rules the schema cannot express (uniqueness, settings that depend on each other). Each
 * check runs only when the settings it reads passed the schema, so it can trust their types,
 * and its problems come out together with the schema's: every problem at once.
 */
import { authChecks } from './check-auth.js'
import { keyChecks } from './check-keys.js'
import { routeChecks } from './check-routes.js'
import { serverChecks } from './check-server.js'
import type { Check, Report } from './check.js'
import { overlaps, type ConfigPath, type Finding } from './problems.js'
import type { GatewayConfig } from './schema.js'

const ALL: Check[] = [...routeChecks, ...keyChecks, ...authChecks, ...serverChecks]

const isPrefix = (a: ConfigPath, b: ConfigPath) => a.length <= b.length && overlaps(a, b)

export function runChecks(config: GatewayConfig, known: readonly Finding[]) {
  const problems: Finding[] = []
  const warnings: Finding[] = []
  const report: Report = {
    problem: (path, message) => problems.push({ path, message }),
    warning: (path, message) => warnings.push({ path, message }),
    clean: (path) => !known.some((f) => overlaps(f.path, path)),
  }
  for (const check of ALL) {
    const blocked = check.needs.some((need) => known.some((f) => isPrefix(f.path, need)))
    if (!blocked) check.run(config, report)
  }
  return { problems, warnings }
}
