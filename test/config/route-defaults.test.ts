import t from 'tap'
import { parseConfig } from '../../src/config/load.js'

t.test('a route has a request limit only when it declares one', async (t) => {
  const result = parseConfig(
    `routes:
  - { name: a, prefix: /a, upstream: "http://127.0.0.1:1" }
  - { name: b, prefix: /b, upstream: "http://127.0.0.1:1", rateLimit: { max: 5 } }
`,
    { source: null, env: {} },
  )
  t.ok(result.ok)
  if (!result.ok) return
  t.equal(result.config.routes[0]!.rateLimit, undefined)
  t.same(result.config.routes[1]!.rateLimit, { max: 5, window: 60_000 })
  t.same(result.config.routes[0]!.timeout, 30_000, 'other route defaults still apply')
})
