import t from 'tap'
import { configOf, file, problemsOf } from './fixtures/load.js'

t.test('a store.keyPrefix with a brace is refused: it would move the Redis Cluster hash tags', async (t) => {
  for (const prefix of ['"app{1}:"', '"{app}:"', '"a}"']) {
    t.same(
      problemsOf(file('store:', '  type: redis-cluster', '  nodes: ["redis://10.0.0.1:7000"]', `  keyPrefix: ${prefix}`)),
      ['4:14 store.keyPrefix: must not contain "{" or "}": they would change the Redis Cluster hash tags the store relies on'],
      prefix,
    )
  }
  t.same(
    problemsOf(file('store: { keyPrefix: "x{" }')),
    ['1:21 store.keyPrefix: must not contain "{" or "}": they would change the Redis Cluster hash tags the store relies on'],
    'for any store type: the same file may later point at a cluster',
  )
  t.equal(configOf(file('store: { type: redis, keyPrefix: "app:prod:" }')).store.keyPrefix, 'app:prod:')
  t.equal(configOf(file('store: { type: redis, keyPrefix: "" }')).store.keyPrefix, '', 'an empty prefix is fine')
})
