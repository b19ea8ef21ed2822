/**
 * The settings tables of docs/reference/configuration.md, read from the JSON Schema that
 * validates files (src/config/json-schema.ts, itself derived from the TypeBox schema): one
 * row per setting, with its type, default, allowed values, whether a reload applies it, and
 * the schema's description.
 */
import { fileSchema, type SchemaNode } from '../../src/config/json-schema.js'
import type { GatewayConfig } from '../../src/config/schema.js'
import { restartOnlyChanges } from '../../src/ops/restart-only.js'
import { cell, code, table } from './blocks.js'

type Node = SchemaNode & { description?: string; maxLength?: number; minItems?: number; additionalProperties?: unknown }

export interface Setting {
  path: string
  node: Node
  required: boolean
  /** The variants of a list entry this setting belongs to (`type: http`), when not all of them. */
  only: string[]
}

/** Every setting a file may hold, parents before children, in schema order. */
export function settings(schema: Node = fileSchema): Setting[] {
  const found = new Map<string, Setting & { seenIn: Set<string> }>()
  const variantCount = new Map<string, number>()

  const visit = (node: Node, path: string, variant: string | null) => {
    for (const [key, child] of Object.entries(node.properties ?? {}) as [string, Node][]) {
      const at = path === '' ? key : `${path}.${key}`
      const known = found.get(at)
      if (known) {
        known.seenIn.add(variant ?? '')
        // The same setting in several variants (`type` in each identity source): one row.
        if (child.const !== undefined && !known.node.enum?.includes(child.const)) {
          known.node = { ...known.node, enum: [...(known.node.enum ?? [known.node.const]), child.const] }
          delete known.node.const
        }
      } else {
        found.set(at, { path: at, node: child, required: node.required?.includes(key) ?? false, only: [], seenIn: new Set([variant ?? '']) })
      }
      descend(child, at)
    }
  }
  const descend = (node: Node, at: string) => {
    if (node.properties) visit(node, at, null)
    const items = node.items
    if (!items) return
    if (items.properties) visit(items, `${at}[]`, null)
    const variants = (items.anyOf ?? []).filter((v) => v.properties)
    variantCount.set(`${at}[]`, variants.length)
    for (const variant of variants) visit(variant, `${at}[]`, variantLabel(variant))
  }
  visit(schema, '', null)

  return [...found.values()].map(({ seenIn, ...setting }) => {
    const parent = setting.path.slice(0, setting.path.lastIndexOf('.'))
    const labels = [...seenIn].filter((l) => l !== '')
    const partial = labels.length > 0 && labels.length < (variantCount.get(parent) ?? 0)
    return { ...setting, only: partial ? labels : [] }
  })
}

/** A variant's name: its discriminating constant (`type: http`), else its distinct keys. */
function variantLabel(variant: Node): string {
  for (const [key, prop] of Object.entries(variant.properties ?? {})) {
    if (prop.const !== undefined) return `${key}: ${String(prop.const)}`
  }
  return Object.keys(variant.properties ?? {}).join(', ')
}

export function typeOf(node: Node): string {
  if (node['x-duration']) return 'duration'
  if (node.anyOf) return [...new Set(node.anyOf.map((n) => (n.const !== undefined ? code(String(n.const)) : typeOf(n))))].join(' or ')
  if (node.type === 'array') {
    const items = node.items as Node | undefined
    if (!items) return 'list'
    if (items.properties || items.anyOf?.some((v) => v.properties)) return 'list of objects'
    return `list of ${typeOf(items)}s`
  }
  if (node.type === 'object') return node.properties ? 'object' : 'map'
  return node.type ?? 'any'
}

/** What a value must satisfy, beyond its type. */
export function allowed(node: Node): string {
  if (node['x-duration']) return ''
  if (node.enum) return node.enum.map((v) => code(String(v))).join(', ')
  if (node.const !== undefined) return code(String(node.const))
  if (node.anyOf) {
    if (node.anyOf.some((v) => v.properties))
      return `one of: ${node.anyOf.map((v) => `{${Object.keys(v.properties ?? {}).join(', ')}}`).join(' or ')}`
    return node.anyOf
      .map((n) => allowed(n) || typeOf(n))
      .filter(Boolean)
      .join(' or ')
  }
  const parts: string[] = []
  const { minimum, maximum, minLength, maxLength, minItems } = node
  if (minimum !== undefined && maximum !== undefined) parts.push(`${minimum}–${maximum}`)
  else if (minimum !== undefined) parts.push(`≥ ${minimum}`)
  else if (maximum !== undefined) parts.push(`≤ ${maximum}`)
  if (maxLength !== undefined) parts.push(minLength === undefined ? `at most ${maxLength} characters` : `${minLength}–${maxLength} characters`)
  else if (minLength !== undefined && minLength > 0) parts.push('not empty')
  if (node['x-expected']) parts.push(node['x-expected'])
  else if (node.pattern) parts.push(`matches ${code(node.pattern)}`)
  if (minItems !== undefined) parts.push(`at least ${minItems} ${minItems === 1 ? 'entry' : 'entries'}`)
  const items = node.items as Node | undefined
  if (items && !items.properties && !items.anyOf) {
    const each = allowed(items)
    if (each) parts.push(`each ${each}`)
  }
  return parts.join('; ')
}

function defaultOf(s: Setting): string {
  const value = s.node.default
  if (value === undefined) return s.required ? '**required**' : '—'
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0) return '—'
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && s.node.properties) return '—'
  return code(typeof value === 'string' ? value : JSON.stringify(value))
}

const EMPTY_SECTIONS = { server: {}, auth: {}, store: {}, revocation: {} }

/** Whether a reload applies the setting, or only a restart (src/ops/restart-only.ts). */
export function appliesOn(path: string): 'reload' | 'restart' {
  const [section, key] = path.replace(/\[\]/g, '').split('.')
  const running = { ...EMPTY_SECTIONS, [section!]: key === undefined ? 0 : { [key]: 0 } }
  const next = { ...EMPTY_SECTIONS, [section!]: key === undefined ? 1 : { [key]: 1 } }
  return restartOnlyChanges(running as never as GatewayConfig, next as never as GatewayConfig).length > 0 ? 'restart' : 'reload'
}

function describe(s: Setting): string {
  const only = s.only.length > 0 ? `*Only in entries with ${s.only.map((l) => code(l)).join(' or ')}.* ` : ''
  return only + (s.node.description ?? '')
}

const section = (path: string) => path.split(/[.[]/)[0]!

/** The Markdown of every section's table, in schema order; top-level scalars come first. */
export function settingsMarkdown(schema: Node = fileSchema): string {
  const all = settings(schema)
  const tops = all.filter((s) => !/[.[]/.test(s.path))
  const childrenOf = (top: Setting) => all.filter((s) => s !== top && section(s.path) === top.path)
  const out: string[] = []
  const render = (heading: string, intro: string, rows: Setting[]) => {
    const head = ['setting', 'type', 'default', 'allowed', 'applies on', 'description']
    const body = rows.map((s) => [
      code(s.path),
      cell(typeOf(s.node)),
      cell(defaultOf(s)),
      cell(allowed(s.node)),
      appliesOn(s.path),
      cell(describe(s)),
    ])
    out.push(`### ${heading}`, '', ...(intro ? [cell(intro), ''] : []), table(head, body), '')
  }
  const loose = tops.filter((top) => childrenOf(top).length === 0)
  if (loose.length > 0) render('Top level', '', loose)
  for (const top of tops.filter((t) => !loose.includes(t))) render(code(top.path), top.node.description ?? '', childrenOf(top))
  return out.join('\n')
}
