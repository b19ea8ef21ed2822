/**
 * The JSON Schema as files see it: what Ajv validates and what `config/gateway.schema.json`
 * publishes for editors.
 *
 * TypeBox marks every property without `Type.Optional` as required, which is right for the
 * loaded config (defaults fill them) but wrong for a file: an editor applies no defaults and
 * would flag `server:` without `host`. So a property that has a default is not required here.
 */
import { ConfigSchema } from './schema.js'

/** The parts of JSON Schema the loader reads when it walks the schema next to the data. */
export interface SchemaNode {
  type?: string
  properties?: Record<string, SchemaNode>
  required?: string[]
  items?: SchemaNode
  anyOf?: SchemaNode[]
  const?: unknown
  enum?: unknown[]
  default?: unknown
  pattern?: string
  minimum?: number
  maximum?: number
  minLength?: number
  'x-duration'?: boolean
  'x-expected'?: string
}

function relax(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(relax)
  if (node === null || typeof node !== 'object') return
  const schema = node as SchemaNode & Record<string, unknown>
  if (schema.properties && schema.required) {
    const props = schema.properties
    schema.required = schema.required.filter((key) => props[key]?.default === undefined)
    if (schema.required.length === 0) delete schema.required
  }
  Object.values(schema).forEach(relax)
}

function build(): SchemaNode {
  // A JSON round trip also drops TypeBox's symbol-keyed metadata.
  const copy = JSON.parse(JSON.stringify(ConfigSchema)) as SchemaNode
  relax(copy)
  return copy
}

/** The schema Ajv compiles. Treat as read-only. */
export const fileSchema: SchemaNode = build()

/**
 * The text of `config/gateway.schema.json`: two-space JSON with a final newline, so it diffs
 * cleanly and a test can compare it byte for byte.
 */
export function schemaText(): string {
  const published = { $schema: 'http://json-schema.org/draft-07/schema#', ...fileSchema }
  return `${JSON.stringify(published, null, 2)}\n`
}
