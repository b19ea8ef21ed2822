/**
 * Walking the data next to its schema, to do what Ajv cannot: fill defaults inside union
 * branches, and turn durations into milliseconds.
 */
import { chooseBranch, isObject } from './branches.js'
import { isDurationSyntax, parseDuration } from './duration.js'
import type { SchemaNode } from './json-schema.js'
import type { ConfigPath, Finding } from './problems.js'

type Holder = Record<string | number, unknown>
type Visit = (schema: SchemaNode, holder: Holder, key: string | number, path: ConfigPath, inBranch: boolean) => void

/**
 * Calls `visit` for every setting the schema declares where the data has an object or list to
 * hold it (present or not), then descends into it. Unions descend into the branch the value
 * means; values that fit no branch are left for the validator to report.
 */
function walk(schema: SchemaNode, value: unknown, visit: Visit, path: ConfigPath = [], inBranch = false): void {
  if (schema.anyOf) {
    const choice = chooseBranch(schema, value)
    if ('branch' in choice) walk(schema.anyOf[choice.branch]!, value, visit, path, true)
  } else if (Array.isArray(value) && schema.items) {
    const items = schema.items
    const holder = value as unknown as Holder
    value.forEach((_, i) => {
      visit(items, holder, i, [...path, i], inBranch)
      walk(items, value[i], visit, [...path, i], inBranch)
    })
  } else if (isObject(value) && schema.properties) {
    for (const [key, child] of Object.entries(schema.properties)) {
      visit(child, value, key, [...path, key], inBranch)
      if (key in value) walk(child, value[key], visit, [...path, key], inBranch)
    }
  }
}

/**
 * Ajv's `useDefaults` skips everything under `anyOf` (it cannot know which branch applies),
 * so the defaults of the branch a value means (an http identity's `timeout`, a static user's
 * `roles`) are filled here, before validation.
 */
export function fillBranchDefaults(schema: SchemaNode, data: unknown): void {
  walk(schema, data, (child, holder, key, _path, inBranch) => {
    if (inBranch && !Array.isArray(holder) && holder[key] === undefined && child.default !== undefined) {
      holder[key] = structuredClone(child.default)
    }
  })
}

/**
 * Durations become milliseconds in place. A value that is no duration stays for the validator
 * to report; one too long to count in milliseconds exactly is reported here.
 */
export function convertDurations(schema: SchemaNode, data: unknown): Finding[] {
  const findings: Finding[] = []
  walk(schema, data, (child, holder, key, path) => {
    if (!child['x-duration'] || holder[key] === undefined) return
    const ms = parseDuration(holder[key])
    if (ms !== null) holder[key] = ms
    else if (isDurationSyntax(holder[key])) findings.push({ path, message: 'is too long' })
  })
  return findings
}
