import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv } from 'ajv'
import t from 'tap'
import { schemaText } from '../../src/config/json-schema.js'

const published = fileURLToPath(new URL('../../config/gateway.schema.json', import.meta.url))

t.test('the committed config/gateway.schema.json is the one the schema generates', async (t) => {
  // `npx tap --snapshot test/config/schema-file.test.ts` (or scripts/write-schema.ts) rewrites it.
  if (t.writeSnapshot) writeFileSync(published, schemaText())
  t.equal(readFileSync(published, 'utf8'), schemaText(), 'regenerate with: node --import @tapjs/typescript/import scripts/write-schema.ts')
})

t.test('the published schema is valid draft-07 and accepts a file that leaves out defaulted settings', async (t) => {
  // Editors apply no defaults, so the schema must not require what has one.
  const ajv = new Ajv({ strict: false })
  const validate = ajv.compile(JSON.parse(schemaText()))
  const minimal = { routes: [{ name: 'a', prefix: '/a', upstream: 'http://u' }], auth: { identity: [{ type: 'http', url: 'http://u' }] } }
  t.ok(validate(minimal), JSON.stringify(validate.errors))
  t.notOk(validate({ routes: [{ name: 'a', prefix: '/a' }] }), 'what has no default stays required')
})
