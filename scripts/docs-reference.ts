/**
 * Regenerates the generated blocks of docs/reference/ (settings, errors, metrics, CLI help)
 * from the code, leaving the prose around them as it is:
 *
 *   npm run docs:reference
 *
 * test/docs/reference.test.ts fails while a committed page differs from what this writes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { BLOCKS, regenerate } from './reference/index.js'

for (const block of BLOCKS) {
  const file = fileURLToPath(new URL(`../docs/reference/${block.page}`, import.meta.url))
  const before = readFileSync(file, 'utf8')
  const after = await regenerate(before, block)
  if (after !== before) writeFileSync(file, after)
  console.log(`${after === before ? 'unchanged' : 'rewritten'}: docs/reference/${block.page} (${block.name})`)
}
