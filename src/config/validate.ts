/**
 * Validation against the schema with Ajv: every problem at once, in words, at the right setting.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { chooseBranch, isObject } from './branches.js'
import { fileSchema, type SchemaNode } from './json-schema.js'
import { messageFor } from './messages.js'
import type { ConfigPath, Finding } from './problems.js'
import { ANNOTATIONS } from './schema.js'

let compiled: ValidateFunction | undefined

/** Compiled once per process: the schema never changes at run time. */
function validator(): ValidateFunction {
  if (compiled) return compiled
  const ajv = new Ajv({
    allErrors: true, // report every problem at once
    useDefaults: true,
    verbose: true, // errors carry the schema and the data, which union handling needs
    strict: true,
    // Strict mode stays on to catch mistakes in the schema, except its note that defaults
    // under `anyOf` are ignored: walk.ts fills those.
    strictSchema: 'log',
    logger: {
      log() {},
      warn(...args: unknown[]) {
        const message = args.map(String).join(' ')
        if (!message.includes('default is ignored')) throw new Error(`config schema: ${message}`)
      },
      error(...args: unknown[]) {
        throw new Error(`config schema: ${args.map(String).join(' ')}`)
      },
    },
  })
  for (const keyword of ANNOTATIONS) ajv.addKeyword({ keyword })
  compiled = ajv.compile(fileSchema)
  return compiled
}

/** Ajv's JSON pointer as path segments, with list indexes as numbers (found from the data). */
function toPath(pointer: string, data: unknown): ConfigPath {
  const path: (string | number)[] = []
  let node = data
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    const index = Array.isArray(node) ? Number(seg) : NaN
    path.push(Number.isInteger(index) ? index : seg)
    node = Array.isArray(node) ? node[index] : isObject(node) ? node[seg] : undefined
  }
  return path
}

const isUnion = (e: ErrorObject) => e.keyword === 'anyOf' || e.keyword === 'oneOf'
const within = (pointer: string, base: string) => pointer === base || pointer.startsWith(`${base}/`)

/**
 * Validates `data` in place (filling defaults) and returns what is wrong with it.
 *
 * Union errors are resolved first, outermost first: the branch the value means keeps its
 * errors and the other branches' errors are hidden, or, when no branch is meant, all of them
 * give way to one sentence (see branches.ts).
 */
export function validate(data: unknown): Finding[] {
  const check = validator()
  if (check(data)) return []
  const errors = check.errors ?? []
  const hidden: { pointer: string; schemaPath: string }[] = []
  const isHidden = (e: ErrorObject) => hidden.some((h) => within(e.instancePath, h.pointer) && e.schemaPath.startsWith(h.schemaPath))
  const findings: Finding[] = []

  const unions = errors.filter(isUnion).sort((a, b) => a.schemaPath.length - b.schemaPath.length)
  for (const u of unions) {
    if (isHidden(u)) continue
    const union = u.parentSchema as SchemaNode
    const choice = chooseBranch(union, u.data)
    if ('branch' in choice) {
      union.anyOf?.forEach((_, i) => {
        if (i !== choice.branch) hidden.push({ pointer: u.instancePath, schemaPath: `${u.schemaPath}/${i}/` })
      })
    } else {
      hidden.push({ pointer: u.instancePath, schemaPath: `${u.schemaPath}/` })
      const { key, at, message } = choice.problem
      const path = toPath(u.instancePath, data)
      findings.push({ path: key === undefined ? path : [...path, key], at, message })
    }
  }
  for (const e of errors) {
    if (!isUnion(e) && !isHidden(e)) findings.push(messageFor(e, toPath(e.instancePath, data)))
  }
  return findings
}
