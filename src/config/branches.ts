/**
 * Unions (`anyOf`) in the schema, and which branch a value means.
 *
 * Ajv reports a failed union as one error per branch, which reads as a pile of contradictions
 * ("must have publicKeyFile", "must NOT have privateKeyFile", ...). An operator meant one
 * branch; we pick it from the value and report only that branch's errors, or, when the value
 * names no branch at all, one sentence saying what is expected.
 */
import type { SchemaNode } from './json-schema.js'

export type Choice = { branch: number } | { problem: { key?: string; at?: 'value' | 'key' | 'parent'; message: string } }

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

const list = (items: string[]) => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`)

/** Words for what a schema accepts, e.g. `an integer from 1 to 256`. */
export function describe(s: SchemaNode): string {
  if (s['x-duration']) return 'a duration such as "500ms", "30s", "10m", "12h", "14d" or a whole number of seconds'
  if (s.anyOf) return list(s.anyOf.map(describe))
  if (s.const !== undefined) return JSON.stringify(s.const)
  if (s.enum) return `one of ${s.enum.map(String).join(', ')}`
  switch (s.type) {
    case 'null':
      return 'null'
    case 'integer':
      if (s.minimum !== undefined && s.maximum !== undefined) return `an integer from ${s.minimum} to ${s.maximum}`
      return s.minimum !== undefined ? `an integer of at least ${s.minimum}` : 'an integer'
    case 'string':
      return s['x-expected'] ?? (s.minLength ? 'a non-empty string' : 'a string')
    case 'boolean':
      return 'true or false'
    case 'array':
      return 'a list'
    case 'object':
      return 'an object'
    default:
      return 'a value'
  }
}

/** A property that every branch fixes to a different constant, such as identity `type`. */
function discriminator(branches: SchemaNode[]): string | undefined {
  const first = branches[0]?.properties ?? {}
  return Object.keys(first).find((key) => branches.every((b) => b.properties?.[key]?.const !== undefined))
}

/** Required keys of a branch that not every branch requires (`privateKeyFile`, `secret`, ...). */
function distinctive(branches: SchemaNode[]): string[][] {
  const everywhere = (key: string) => branches.every((b) => b.required?.includes(key))
  return branches.map((b) => (b.required ?? []).filter((key) => !everywhere(key)))
}

export function chooseBranch(union: SchemaNode, value: unknown): Choice {
  const branches = union.anyOf ?? []
  if (!branches.every((b) => b.type === 'object')) return { problem: { message: `must be ${describe(union)}` } }
  if (!isObject(value)) return { problem: { message: 'must be an object' } }

  const tag = discriminator(branches)
  if (tag !== undefined) {
    const names = branches.map((b) => String(b.properties?.[tag]?.const))
    if (value[tag] === undefined) return { problem: { key: tag, at: 'parent', message: `is required (one of ${names.join(', ')})` } }
    const branch = names.indexOf(String(value[tag]))
    return branch >= 0 ? { branch } : { problem: { key: tag, message: `must be one of ${names.join(', ')}` } }
  }

  const keys = distinctive(branches)
  const offered = list([...new Set(keys.flat())])
  const present = keys.flatMap((ks) => ks.filter((k) => k in value))
  if (present.length === 0) return { problem: { message: `needs ${offered}` } }
  if (present.length > 1) {
    const [first, second] = present as [string, string]
    return { problem: { key: second, at: 'key', message: `cannot be combined with ${first}; give only one of ${offered}` } }
  }
  return { branch: keys.findIndex((ks) => ks.includes(present[0]!)) }
}
