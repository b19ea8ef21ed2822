import t from 'tap'
import { decodeProtectedHeader } from 'jose'
import { loadKeyring } from '../../src/auth/keys.js'
import { isManaged, ManagedKeysError, startManagedKeyring, type ManagedKeyring } from '../../src/auth/managed-keys.js'
import { createMinter } from '../../src/auth/mint.js'
import { createVerifier } from '../../src/auth/verify.js'
import { rotateNow } from '../../src/cli/keys-rotate.js'
import { GatewayError } from '../../src/errors.js'
import { memoryKeyset, type KeysetStore } from '../../src/sessions/keyset.js'
import type { SessionRecord } from '../../src/sessions/types.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const T0 = Date.UTC(2026, 10, 27, 12)
const SECRET = 'a-secret-of-at-least-thirty-two-bytes!'
const managed = { rotateEvery: HOUR, publishAhead: 10 * MINUTE, encryptionKey: SECRET }
const TTL = 5 * MINUTE
const TOLERANCE = 30_000

function start(store: KeysetStore, clock: { now: number }, overrides: Partial<typeof managed> = {}, alg: 'ES256' | 'EdDSA' = 'ES256') {
  return startManagedKeyring(store, { algorithm: alg, managed: { ...managed, ...overrides }, retainFor: TTL + TOLERANCE, now: () => clock.now })
}

const session: SessionRecord = {
  id: 'AAAAAAsessionsessionsession0',
  subject: 'u-alice',
  roles: ['user'],
  claims: {},
  createdAt: T0,
  lastUsedAt: T0,
  idleExpiresAt: T0 + 30 * 86_400_000,
  absoluteExpiresAt: T0 + 30 * 86_400_000,
  userAgent: null,
  ip: null,
}

const tools = (keyring: ManagedKeyring, clock: { now: number }) => ({
  mint: createMinter({ keyring, issuer: 'portcullis', audience: 'portcullis', ttl: TTL }),
  verify: createVerifier({
    keyring,
    issuer: 'portcullis',
    audience: 'portcullis',
    clockTolerance: TOLERANCE,
    maxLifetime: TTL,
    now: () => clock.now,
  }),
})

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'accepted'
  } catch (err) {
    if (err instanceof GatewayError) return `${err.code}: ${err.message}`
    throw err
  }
}

t.test('auth.keys.managed loads as a keyring that holds no key until it is started on a store', async (t) => {
  const ring = await loadKeyring({ algorithm: 'ES256', managed })
  t.ok(isManaged(ring))
  t.throws(() => ring.signer, /none loaded yet/)
  t.same(ring.jwks.keys, [])
})

t.test('started on an empty store, it makes one key, signs with it and publishes only its public part', async (t) => {
  const clock = { now: T0 }
  const ring = await start(memoryKeyset(), clock)
  t.teardown(() => ring.stop())
  t.equal(ring.jwks.keys.length, 1)
  const [jwk] = ring.jwks.keys
  t.match(jwk, { kid: ring.signer.kid, alg: 'ES256', use: 'sig', kty: 'EC', crv: 'P-256' })
  t.notOk('d' in jwk!, 'no private part')
  t.match(ring.signer.kid, /^2026-11-27\.[A-Za-z0-9_-]{8}$/, 'the kid names the day it started signing')
  t.equal(ring.jwksMaxAge, 300, 'half of a 10-minute publishAhead is 300 s')
  t.equal((await start(memoryKeyset(), clock, { publishAhead: 40_000 })).jwksMaxAge, 20, 'never more than half of publishAhead')
})

t.test('with an injected clock, one process rotates through three keys and never refuses a token it signed', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  const ring = await start(store, clock)
  t.teardown(() => ring.stop())
  const { mint, verify } = tools(ring, clock)
  const live: { token: string; exp: number }[] = []
  const signers: string[] = []
  const publishedAt = new Map<string, number>()
  const refused: string[] = []
  let most = 0
  for (; clock.now <= T0 + 3 * HOUR + 20 * MINUTE; clock.now += MINUTE) {
    await ring.sync()
    for (const k of ring.jwks.keys) if (!publishedAt.has(k.kid!)) publishedAt.set(k.kid!, clock.now)
    most = Math.max(most, ring.jwks.keys.length)
    const { token, expiresIn } = await mint(session, clock.now)
    const kid = decodeProtectedHeader(token).kid!
    if (signers.at(-1) !== kid) signers.push(kid)
    live.push({ token, exp: clock.now + expiresIn * 1000 })
    for (const held of live.filter((l) => l.exp > clock.now)) {
      const answer = await refusal(verify(held.token))
      if (answer !== 'accepted') refused.push(answer)
    }
  }
  t.same(refused, [], 'every unexpired token verified, across every switch')
  t.equal(signers.length, 4, 'the first key and three rotations')
  for (const kid of signers.slice(1)) {
    const activated = T0 + signers.indexOf(kid) * HOUR
    t.equal(activated - publishedAt.get(kid)!, 10 * MINUTE, `${kid} was in the JWKS for publishAhead before it signed`)
  }
  t.equal(most, 2, 'at most two keys published at once')
  t.notOk(
    ring.jwks.keys.some((k) => k.kid === signers[2]),
    'a retired key left the JWKS once its tokens had expired',
  )
  const stored = JSON.parse((await store.read())!.value) as { keys: { kid: string }[] }
  t.same(
    stored.keys.map((k) => k.kid),
    ring.jwks.keys.map((k) => k.kid),
    'and the store',
  )
})

t.test('two keyrings starting at once on an empty store converge on one key', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  const rings = await Promise.all([start(store, clock), start(store, clock), start(store, clock)])
  t.teardown(() => {
    for (const r of rings) r.stop()
  })
  t.same(new Set(rings.map((r) => r.signer.kid)).size, 1, 'one signer')
  t.equal(JSON.parse((await store.read())!.value).keys.length, 1, 'one key in the store')
  t.equal((await store.read())!.version, 1, 'written once: the others found it there')
})

t.test('another encryptionKey is a start-up error naming the setting, and the store is left as it was', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  ;(await start(store, clock)).stop()
  const before = await store.read()
  const err = await start(store, clock, { encryptionKey: `${SECRET}-but-not-the-same` }).catch((e: unknown) => e)
  t.ok(err instanceof ManagedKeysError)
  t.match(err, {
    code: 'wrong_encryption_key',
    setting: 'auth.keys.managed.encryptionKey',
    message: /auth\.keys\.managed\.encryptionKey cannot open/,
  })
  t.same(await store.read(), before, 'no new key took the place of the unreadable one')
})

t.test('keys of another algorithm in the store are a start-up error naming auth.keys.algorithm', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  ;(await start(store, clock)).stop()
  const err = await start(store, clock, {}, 'EdDSA').catch((e: unknown) => e)
  t.match(err, { code: 'algorithm_mismatch', setting: 'auth.keys.algorithm', message: /are ES256 keys, and auth\.keys\.algorithm is EdDSA/ })
})

t.test('a keyset that is not one the gateway wrote is an error, never replaced by a new key', async (t) => {
  const store = memoryKeyset()
  await store.replace(0, '{"alg":"ES256","keys":[{"kid":"x","activatesAt":"soon"}]}')
  await t.rejects(start(store, { now: T0 }), /not in the form the gateway writes/)
  t.equal((await store.read())!.version, 1)
})

t.test('after keys rotate --now, a token by a retired key is refused even from the verified-token cache', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  const ring = await start(store, clock)
  t.teardown(() => ring.stop())
  const { mint, verify } = tools(ring, clock)
  const old = (await mint(session, clock.now)).token
  await verify(old)
  t.ok(verify.cached(old), 'cached')
  const { kid, retired } = await rotateNow(store, 'ES256', managed, clock.now)
  t.same(retired, [decodeProtectedHeader(old).kid])
  await ring.sync()
  t.equal(verify.cached(old), undefined, 'no longer served from the cache')
  t.equal(await refusal(verify(old)), 'invalid_token: unknown signing key')
  t.equal(ring.signer.kid, kid, 'the new key signs at once')
  t.same(
    ring.jwks.keys.map((k) => k.kid),
    [kid],
    'and is the only one published',
  )
  t.equal(await refusal(verify((await mint(session, clock.now)).token)), 'accepted')
})

t.test('a keyring learns of a change written by another without being asked (the store tells it)', async (t) => {
  const clock = { now: T0 }
  const store = memoryKeyset()
  const ring = await start(store, clock)
  t.teardown(() => ring.stop())
  const { kid } = await rotateNow(store, 'ES256', managed, clock.now)
  const deadline = Date.now() + 2000
  while (ring.signer.kid !== kid && Date.now() < deadline) await new Promise((r) => setImmediate(r))
  t.equal(ring.signer.kid, kid)
})

t.test('a reload retimes the schedule: a shorter rotateEvery publishes the next key sooner', async (t) => {
  const clock = { now: T0 }
  const ring = await start(memoryKeyset(), clock)
  t.teardown(() => ring.stop())
  clock.now = T0 + 30 * MINUTE
  await ring.sync()
  t.equal(ring.jwks.keys.length, 1, 'not yet due with rotateEvery 1h')
  ring.configure({ ...managed, rotateEvery: 35 * MINUTE })
  await ring.sync()
  t.equal(ring.jwks.keys.length, 2, 'due with 35m')
})
