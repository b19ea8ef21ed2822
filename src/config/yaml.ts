/**
 * Reading the file: YAML 1.2 (so JSON too) into a syntax tree that remembers where every node
 * is, then into plain data.
 */
import { isAlias, LineCounter, parseDocument, visit, type Document, type YAMLError } from 'yaml'
import { pathAtOffset } from './locate.js'
import { formatPath, type ConfigProblem } from './problems.js'

/**
 * An alias may be expanded at most this many times in all. Aliases of aliases grow
 * exponentially (the "billion laughs" attack); a gateway config never needs many.
 */
const MAX_ALIAS_COUNT = 100

export interface Parsed {
  doc: Document
  lineCounter: LineCounter
}

/** Our words for the parser's messages that name its own API or say too little. */
const MESSAGES: Partial<Record<YAMLError['code'], string>> = {
  DUPLICATE_KEY: 'duplicate key (it is already set above)',
  MULTIPLE_DOCS: 'holds more than one YAML document (---); a config is a single document',
}

/** A plain `${...}` inside `[ ]` or `{ }` is broken up by the braces; the parser cannot say so. */
const FLOW_HINT = ' (inside [ ] or { }, a value with ${...} must be quoted)'

export function parseYaml(text: string): Parsed & { problems: ConfigProblem[] } {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    // The YAML 1.2 core schema: `yes`/`no`/`on` stay strings, no `<<` merge keys.
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: true,
  })
  const problem = (e: YAMLError): ConfigProblem => {
    const { line, col } = lineCounter.linePos(e.pos[0])
    const lineText = text.slice(lineCounter.lineStarts[line - 1], lineCounter.lineStarts[line])
    let message = MESSAGES[e.code] ?? e.message
    if (e.code !== 'DUPLICATE_KEY' && /[[{]/.test(lineText) && lineText.includes('${')) message += FLOW_HINT
    // After a syntax error the tree around the offset is a guess, so no setting is named.
    const path = e.code === 'DUPLICATE_KEY' || e.name === 'YAMLWarning' ? formatPath(pathAtOffset(doc, e.pos[0])) : ''
    return { path, line, column: col, message }
  }
  // A syntax error makes the parser report most of what follows it too, so only the first
  // is shown; duplicate keys do not derail it and are all shown. Warnings (an unknown `!tag`)
  // are problems: a config means exactly what it says.
  const errors = doc.errors.filter((e, i) => i === 0 || e.code === 'DUPLICATE_KEY')
  return { doc, lineCounter, problems: [...errors, ...doc.warnings].map(problem) }
}

/** A deep copy in which no object appears twice (`structuredClone` would keep the sharing). */
function unshare(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unshare)
  if (value === null || typeof value !== 'object') return value
  // fromEntries defines properties, so a `__proto__` key stays a plain (unknown) key.
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unshare(v)]))
}

/**
 * Plain data from the tree. An empty file is an empty object (every setting at its default).
 * The result is copied so that an alias becomes a copy, not a second reference to one object
 * that defaults and duration conversion would then modify twice.
 */
export function toData(parsed: Parsed): { data: unknown } | { problem: ConfigProblem } {
  try {
    const data: unknown = parsed.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
    return { data: data === null || data === undefined ? {} : unshare(data) }
  } catch (err) {
    // toJS throws a ReferenceError for an alias with no anchor before it, and for too many.
    if (!(err instanceof ReferenceError)) throw err
    const bomb = err.message.startsWith('Excessive alias count')
    let offset = 0
    visit(parsed.doc, {
      Alias(_key, node) {
        if (!bomb && isAlias(node) && node.resolve(parsed.doc) !== undefined) return
        offset = node.range?.[0] ?? 0
        return visit.BREAK
      },
    })
    const { line, col } = parsed.lineCounter.linePos(offset)
    const message = bomb ? `aliases expand to more than ${MAX_ALIAS_COUNT} copies; refused as a possible "billion laughs" attack` : err.message
    return { problem: { path: '', line, column: col, message } }
  }
}
