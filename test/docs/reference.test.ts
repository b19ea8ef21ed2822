import { readFileSync } from 'node:fs'
import t from 'tap'
import { fileSchema, type SchemaNode } from '../../src/config/json-schema.js'
import { ERROR_CODES } from '../../src/errors.js'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { readBlock } from '../../scripts/reference/blocks.js'
import { BLOCKS, regenerate } from '../../scripts/reference/index.js'

const page = (name: string) => readFileSync(new URL(`../../docs/reference/${name}`, import.meta.url), 'utf8')

for (const block of BLOCKS) {
  t.test(`the ${block.name} block of docs/reference/${block.page} is what ${block.source} generates`, async (t) => {
    const committed = page(block.page)
    t.equal(committed, await regenerate(committed, block), 'regenerate with: npm run docs:reference')
  })
}

/** Every setting path, walked here independently of the generator, with its schema node. */
function settingPaths(node: SchemaNode, path = '', out = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const at = path === '' ? key : `${path}.${key}`
    out.set(at, child)
    settingPaths(child, at, out)
  }
  const items = node.items
  if (items) for (const variant of [items, ...(items.anyOf ?? [])]) settingPaths(variant, `${path}[]`, out)
  return out
}

t.test('every setting of the schema has a row, with a description, in the settings reference', async (t) => {
  const rows = readBlock(page('configuration.md'), 'settings') ?? ''
  const paths = settingPaths(fileSchema)
  t.ok(paths.size > 80, `the walk found the settings (${paths.size})`)
  for (const [path, node] of paths) {
    // A top-level section is a heading over the table of its settings.
    const entry = (node.properties || node.items) && !path.includes('.') ? `\n### \`${path}\`\n` : `\n| \`${path}\` |`
    t.match(rows, entry, `${path} has an entry`)
    t.ok((node as { description?: string }).description, `${path} has a description in src/config/schema.ts`)
  }
})

t.test('every error code is explained in the errors reference', async (t) => {
  const text = page('errors.md')
  for (const code of ERROR_CODES) t.match(text, `\n### \`${code}\`\n`, `${code} has a section`)
})

t.test('every metric the gateway registers is in the metrics reference', async (t) => {
  const rows = readBlock(page('metrics.md'), 'metrics') ?? ''
  const names = (await new GatewayMetrics().registry.getMetricsAsJSON()).map((m) => m.name)
  t.ok(names.length > 15)
  for (const name of names) t.match(rows, `| \`${name}\` |`, `${name} has a row`)
})
