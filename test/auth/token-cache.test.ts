/**
 * The verified-token cache: bounded by bytes (auth.tokenCache.maxMemory), least recently used
 * out first, its hits and misses counted and shown in /metrics.
 */
import t from 'tap'
import { loadKeyring } from '../../src/auth/keys.js'
import { createVerifier } from '../../src/auth/verify.js'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'
import { value } from '../ops/prometheus.js'

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0)
const options = { issuer: 'portcullis', audience: 'portcullis', clockTolerance: 30_000, maxLifetime: 600_000, now: () => NOW }

t.test('filled past its memory budget, the cache lets the least recently used tokens go first', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => makeToken(keyring, { sub: `user-${10 + i}` }, NOW)))
  // Each of these costs 480 + 1.75 bytes per character (src/auth/verify.ts entryBytes).
  const entry = 480 + ((tokens[0]!.length * 7) >> 2)
  t.ok(
    tokens.every((token) => token.length === tokens[0]!.length),
    'tokens of one length, so entries of one size',
  )
  const verify = createVerifier({ ...options, keyring, cacheSize: entry * 10 })

  for (const token of tokens.slice(0, 10)) await verify(token)
  t.same(verify.cacheStats.held(), { entries: 10, bytes: entry * 10 }, 'ten fill the budget exactly')
  t.ok(verify.cached(tokens[0]!), 'the first is still held, and now the most recently used')
  for (const token of tokens.slice(10, 15)) await verify(token)
  t.same(verify.cacheStats.held(), { entries: 10, bytes: entry * 10 }, 'never past the budget')
  t.ok(verify.cached(tokens[0]!), 'the one just used stays')
  for (const i of [1, 2, 3, 4, 5]) t.equal(verify.cached(tokens[i]!), undefined, `token ${i}, the least recently used, is gone`)
  for (const i of [6, 7, 8, 9, 10, 14]) t.ok(verify.cached(tokens[i]!), `token ${i} is held`)
})

t.test('a token larger than the whole budget is verified but not held; 0 turns the cache off', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const token = await makeToken(keyring, {}, NOW)
  const small = createVerifier({ ...options, keyring, cacheSize: 100 })
  t.equal((await small(token)).sub, 'u-alice')
  t.equal(small.cached(token), undefined)
  t.same(small.cacheStats.held(), { entries: 0, bytes: 0 })
  const off = createVerifier({ ...options, keyring, cacheSize: 0 })
  t.equal((await off(token)).sub, 'u-alice')
  t.equal(off.cached(token), undefined)
})

t.test('hits and misses are counted once per look-up that decides', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const stats = { hits: 0, misses: 0, held: () => ({ entries: 0, bytes: 0 }) }
  const verify = createVerifier({ ...options, keyring, cacheStats: stats })
  const a = await makeToken(keyring, { sub: 'a' }, NOW)
  const b = await makeToken(keyring, { sub: 'b' }, NOW)
  await verify(a) // miss
  await verify(a) // hit
  verify.cached(a) // hit
  t.equal(verify.cached(b), undefined, 'an empty synchronous look-up counts nothing: its caller verifies next')
  await verify(b) // miss
  await verify('not.a.token').catch(() => {}) // miss
  t.same({ hits: stats.hits, misses: stats.misses }, { hits: 2, misses: 3 })
  t.same(stats.held(), verify.cacheStats.held(), 'the stats handed in read this cache')
  t.equal(stats.held().entries, 2)
})

t.test('a held token past its exp counts once, as a hit in the verifier that refuses it', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  let now = NOW
  const verify = createVerifier({ ...options, keyring, now: () => now })
  const token = await makeToken(keyring, { exp: 60 }, NOW)
  await verify(token)
  now += 120_000
  t.equal(verify.cached(token), undefined)
  await t.rejects(verify(token), { code: 'token_expired' })
  t.same({ hits: verify.cacheStats.hits, misses: verify.cacheStats.misses }, { hits: 1, misses: 1 })
})

t.test('/metrics shows the cache: hits and misses of real requests, entries and bytes held', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
auth:
  tokenCache: { maxMemory: 1000000 }
routes:
  - { name: protected, prefix: /protected, upstream: "${up.url}" }
`,
  )
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })
  const a = await makeToken(gw.keyring, { sub: 'a' }, gw.clock.now)
  const b = await makeToken(gw.keyring, { sub: 'b' }, gw.clock.now)
  const before = (await send(gw.url, '/metrics')).body
  t.equal(value(before, 'portcullis_token_cache_requests_total', { result: 'hit' }), 0, 'exported at 0 from the start')
  t.equal(value(before, 'portcullis_token_cache_requests_total', { result: 'miss' }), 0)
  for (const token of [a, a, a, b, b]) t.equal((await send(gw.url, '/protected/x', bearer(token))).status, 200)
  const text = (await send(gw.url, '/metrics')).body
  t.equal(value(text, 'portcullis_token_cache_requests_total', { result: 'hit' }), 3)
  t.equal(value(text, 'portcullis_token_cache_requests_total', { result: 'miss' }), 2)
  t.equal(value(text, 'portcullis_token_cache_entries'), 2)
  t.equal(value(text, 'portcullis_token_cache_bytes'), 2 * 480 + ((a.length * 7) >> 2) + ((b.length * 7) >> 2))
  const again = (await send(gw.url, '/metrics')).body
  t.equal(value(again, 'portcullis_token_cache_requests_total', { result: 'hit' }), 3, 'a scrape adds nothing')
})
