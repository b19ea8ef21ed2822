/**
 * Writes config/gateway.schema.json (the editor-facing JSON Schema) from src/config/schema.ts.
 *
 *   node --import @tapjs/typescript/import scripts/write-schema.ts
 *
 * (tap's TypeScript loader, already installed: Node 20 cannot run .ts by itself.)
 * test/config/schema-file.test.ts fails while the committed file differs from what this writes;
 * `npx tap --snapshot test/config/schema-file.test.ts` rewrites it too.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { schemaText } from '../src/config/json-schema.js'

const target = fileURLToPath(new URL('../config/gateway.schema.json', import.meta.url))
writeFileSync(target, schemaText())
console.log(target)
