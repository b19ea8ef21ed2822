/**
 * From a setting's path to its place in the file, and back, over the YAML syntax tree.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Pair } from 'yaml'
import type { ConfigPath, ConfigProblem, Finding } from './problems.js'
import { formatPath } from './problems.js'

export interface Position {
  line: number
  column: number
}

/**
 * Where a setting is written: the position of its value, or, when the setting is not in the
 * file (a default, a missing key), of the nearest enclosing setting that is. `null` only when
 * the file has no content at all. Later steps (key files, semantic checks elsewhere) use it
 * to report their own problems with a position.
 */
export type Locate = (path: ConfigPath) => Position | null

interface Ranged {
  range?: readonly [number, number, number] | null
}

/** Keys in a config are scalars; anything else (a complex key) matches no path. */
const keyText = (key: unknown) => (isScalar(key) ? String(key.value) : null)

/** The deepest node along `path`, with the key node that led to it when the path is complete. */
function walk(doc: Document, path: ConfigPath) {
  let node: unknown = doc.contents
  let nearest = node as Ranged | null
  let key: Ranged | null = null
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc)
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg))
      if (!pair) return { node: nearest, key: null, complete: false }
      key = pair.key as Ranged
      // `name:` with nothing after it has a null value node; its key is the best place.
      node = pair.value
      nearest = (pair.value as Ranged | null) ?? key
    } else if (isSeq(node) && node.items[Number(seg)] !== undefined) {
      key = null
      node = node.items[Number(seg)]
      nearest = node as Ranged
    } else {
      return { node: nearest, key: null, complete: false }
    }
  }
  return { node: nearest, key, complete: true }
}

export function makeLocator(doc: Document, lineCounter: LineCounter) {
  const position = (node: Ranged | null): Position | null => {
    const offset = node?.range?.[0]
    if (offset === undefined) return null
    const { line, col } = lineCounter.linePos(offset)
    return { line, column: col }
  }
  const locate: Locate = (path) => position(walk(doc, path).node)
  /** The value written at `path` when it is a scalar there (after `${VAR}` expansion); else undefined. */
  const valueAt = (path: ConfigPath): unknown => {
    const found = walk(doc, path)
    // `name:` with nothing after it: walk gives its key, whose text is not the value.
    return found.complete && found.node !== found.key && isScalar(found.node) ? found.node.value : undefined
  }

  /** A finding made concrete; a file without content puts everything at 1:1. */
  const place = (f: Finding): ConfigProblem => {
    let pos: Position | null
    if (f.at === 'parent') pos = locate(f.path.slice(0, -1))
    else if (f.at === 'key') {
      const found = walk(doc, f.path)
      pos = position(found.complete ? found.key : found.node)
    } else pos = locate(f.path)
    const { line, column } = pos ?? { line: 1, column: 1 }
    return { path: formatPath(f.path), line, column, message: f.message }
  }
  return { locate, place, valueAt }
}

const contains = (node: unknown, offset: number) => {
  const range = (node as Ranged | null)?.range
  return !!range && range[0] <= offset && offset < Math.max(range[1], range[0] + 1)
}

/** The setting whose key, value or tag holds `offset` (where the YAML parser found a problem). */
export function pathAtOffset(doc: Document, offset: number): ConfigPath {
  const path: (string | number)[] = []
  let node: unknown = doc.contents
  for (;;) {
    if (isMap(node)) {
      // From the key to the end of the value, which takes in a tag or anchor between them.
      const start = (p: Pair) => (p.key as Ranged | null)?.range?.[0] ?? Infinity
      const end = (p: Pair) => (p.value as Ranged | null)?.range?.[2] ?? start(p) + 1
      const pair = node.items.find((p) => start(p) <= offset && offset < end(p))
      const key = pair ? keyText(pair.key) : null
      if (!pair || key === null) return path
      path.push(key)
      if (!contains(pair.value, offset)) return path
      node = pair.value
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset))
      if (index < 0) return path
      path.push(index)
      node = node.items[index]
    } else {
      return path
    }
  }
}

/** The path of a node met while visiting the tree (`ancestry` as `yaml`'s `visit` gives it). */
export function pathOfNode(ancestry: readonly unknown[], node: unknown): ConfigPath {
  const chain = [...ancestry, node]
  const path: (string | number)[] = []
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i]
    if (isPair(parent)) path.push(keyText(parent.key) ?? '?')
    else if (isSeq(parent)) path.push(parent.items.indexOf(chain[i + 1] as never))
  }
  return path
}
