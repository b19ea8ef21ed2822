/**
 * The error table of docs/reference/errors.md, read from src/errors.ts: every code with its
 * status, the `title` of its body and, for 401s, the `WWW-Authenticate` it carries.
 */
import { ERROR_CODES, problemOf, statusOf, wwwAuthenticate } from '../../src/errors.js'
import { cell, code, table } from './blocks.js'

export function errorsMarkdown(): string {
  const byStatus = [...ERROR_CODES].sort((a, b) => statusOf(a) - statusOf(b))
  const rows = byStatus.map((c) => [
    String(statusOf(c)),
    `[${code(c)}](#${c})`,
    cell(problemOf(c).title),
    statusOf(c) === 401 ? code(wwwAuthenticate(c)) : '',
  ])
  return table(['status', 'code', 'title', 'WWW-Authenticate (401 only)'], rows)
}
