/**
 * The generated parts of docs/reference/: each lives between two markers in a page, so the
 * prose around it stays hand-written and the block can be regenerated (and compared by a
 * test) on its own.
 */

const start = (name: string) => `<!-- generated:${name}:start -->`
const end = (name: string) => `<!-- generated:${name}:end -->`

/** The text between the markers named `name`, or null when the page has no such block. */
export function readBlock(page: string, name: string): string | null {
  const from = page.indexOf(start(name))
  const to = page.indexOf(end(name))
  if (from === -1 || to === -1 || to < from) return null
  return page.slice(from + start(name).length, to)
}

/** `page` with the block `name` replaced by `body`; throws when the markers are missing. */
export function replaceBlock(page: string, name: string, body: string): string {
  if (readBlock(page, name) === null) throw new Error(`no ${start(name)} ... ${end(name)} markers`)
  const from = page.indexOf(start(name)) + start(name).length
  return page.slice(0, from) + body + page.slice(page.indexOf(end(name)))
}

/** What a block holds: a note naming its source, then the generated text. */
export function blockBody(source: string, text: string): string {
  return `\n<!-- Generated from ${source} by \`npm run docs:reference\`; edit the source, not this block. -->\n\n${text.trimEnd()}\n\n`
}

/** A Markdown table cell: no line breaks, `|` escaped, `<` kept from reading as HTML. */
export function cell(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
}

export const code = (text: string) => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``)

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}
