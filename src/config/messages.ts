/**
 * One Ajv error → one finding an operator can act on: the setting's path and a sentence.
 */
import type { ErrorObject } from 'ajv'
import { describe } from './branches.js'
import type { SchemaNode } from './json-schema.js'
import type { ConfigPath, Finding } from './problems.js'
import { closest } from './suggest.js'

/** What a value is, for "must be X, not Y". Never the value itself: echo.ts shows that, secrets redacted. */
function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return 'a string'
  return typeof value === 'boolean' ? 'true or false' : 'a number'
}

const TYPE_WORDS: Record<string, string> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
}

const nonEmpty = (limit: number, otherwise: string) => (limit === 1 ? 'must not be empty' : otherwise)

/** `path` is the Ajv instancePath as segments; `params` differ per keyword. */
export function messageFor(e: ErrorObject, path: ConfigPath): Finding {
  const p = e.params as Record<string, unknown>
  const parent = (e.parentSchema ?? {}) as SchemaNode
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty)
      const guess = closest(key, Object.keys(parent.properties ?? {}))
      let hint = guess === undefined ? '' : `; did you mean "${guess}"?`
      if (key.includes('${')) hint = ' (${...} is not expanded in keys)'
      return { path: [...path, key], at: 'key', message: `unknown key "${key}"${hint}` }
    }
    case 'required':
      return { path: [...path, String(p.missingProperty)], at: 'parent', message: 'is required' }
    case 'type':
      return { path, message: `must be ${TYPE_WORDS[String(p.type)] ?? p.type}, not ${kindOf(e.data)}` }
    case 'pattern':
      if (parent['x-expected'] === undefined) return { path, message: `must match the pattern ${p.pattern}` }
      return { path, message: `must be ${parent['x-expected']}` }
    case 'enum':
    case 'const':
      return { path, message: `must be ${describe(parent)}` }
    case 'minimum':
      return { path, message: `must be at least ${p.limit}` }
    case 'maximum':
      return { path, message: `must be at most ${p.limit}` }
    case 'minLength':
      return { path, message: nonEmpty(Number(p.limit), `must be at least ${p.limit} characters long`) }
    case 'maxLength':
      return { path, message: `must be at most ${p.limit} characters long` }
    case 'minItems':
      return { path, message: nonEmpty(Number(p.limit), `must have at least ${p.limit} entries`) }
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` }
  }
}
