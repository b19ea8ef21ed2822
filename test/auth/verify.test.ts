import t from 'tap'
import { generateKeyPair, SignJWT, exportJWK } from 'jose'
import { createSecretKey, sign } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadKeyring, type Keyring } from '../../src/auth/keys.js'
import { generatePem } from '../../src/cli/keys-generate.js'
import { createVerifier, MAX_TOKEN_LENGTH } from '../../src/auth/verify.js'
import { GatewayError } from '../../src/errors.js'
import { b64, makeToken, unsignedToken } from '../helpers/tokens.js'

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0)
const options = (keyring: Keyring) => ({
  keyring,
  issuer: 'portcullis',
  audience: 'portcullis',
  clockTolerance: 30_000,
  maxLifetime: 600_000,
  now: () => NOW,
})

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'accepted'
  } catch (err) {
    if (err instanceof GatewayError) return err.code
    throw err
  }
}

t.test('a token minted with the configured key verifies and yields its claims', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const verify = createVerifier(options(keyring))
  const claims = await verify(await makeToken(keyring, { roles: ['user', 'admin'] }, NOW))
  t.equal(claims.sub, 'u-alice')
  t.same(claims.roles, ['user', 'admin'])
})

t.test('the adversarial token table: every bad token is refused with its code', async (t) => {
  const pem = generatePem('ES256')
  const dir = mkdtempSync(join(tmpdir(), 'verify-'))
  writeFileSync(join(dir, 'k1.pem'), pem)
  const keyring = await loadKeyring({ algorithm: 'ES256', signing: [{ kid: 'k1', privateKeyFile: join(dir, 'k1.pem') }] })
  // Signs anything at all with our real key, so only the check under test can refuse it.
  const signRaw = (header: object, body: object) => {
    const input = `${b64(header)}.${b64(body)}`
    return `${input}.${sign('sha256', Buffer.from(input), { key: pem, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }
  const verify = createVerifier({ ...options(keyring), cacheSize: 0 })
  const other = await generateKeyPair('ES256', { extractable: true })
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const publicPem = (await import('node:crypto')).createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString()
  const good = await makeToken(keyring, {}, NOW)
  const [h, p, s] = good.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())

  const table: Array<[string, string | Promise<string>, string]> = [
    ['alg none', unsignedToken(payload, { alg: 'none', kid: keyring.signer.kid }), 'invalid_token'],
    ['alg none with a copied signature', `${b64({ alg: 'none', kid: keyring.signer.kid })}.${p}.${s}`, 'invalid_token'],
    // HS256 keyed with the public key's bytes: the classic algorithm-confusion attack.
    [
      'HS256 signed with the public key',
      makeToken(keyring, { alg: 'HS256', key: createSecretKey(Buffer.from(publicPem)) as never }, NOW),
      'invalid_token',
    ],
    ['RS256 when ES256 is pinned', makeToken(keyring, { alg: 'RS256', key: rsa.privateKey }, NOW), 'invalid_token'],
    ['a wrong key under a known kid', makeToken(keyring, { key: other.privateKey }, NOW), 'invalid_token'],
    ['an unknown kid', makeToken(keyring, { kid: 'nope' }, NOW), 'invalid_token'],
    ['no kid', makeToken(keyring, { kid: null }, NOW), 'invalid_token'],
    [
      'an embedded jwk of the attacker',
      new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid: keyring.signer.kid, jwk: await exportJWK(other.publicKey) })
        .sign(other.privateKey),
      'invalid_token',
    ],
    ['a jku pointing elsewhere', makeToken(keyring, { key: other.privateKey, header: { jku: 'https://evil.example/jwks' } }, NOW), 'invalid_token'],
    ['an x5u pointing elsewhere', makeToken(keyring, { key: other.privateKey, header: { x5u: 'https://evil.example/cert' } }, NOW), 'invalid_token'],
    ['an unknown crit extension', signRaw({ alg: 'ES256', kid: 'k1', crit: ['exp-ext'], 'exp-ext': 1 }, payload), 'invalid_token'],
    ['the control: the same raw signing without crit is accepted', signRaw({ alg: 'ES256', kid: 'k1' }, payload), 'accepted'],
    ['expired', makeToken(keyring, { iat: -400, exp: -60 }, NOW), 'token_expired'],
    ['not yet valid', makeToken(keyring, { nbf: 120 }, NOW), 'invalid_token'],
    ['a wrong issuer', makeToken(keyring, { iss: 'someone-else' }, NOW), 'invalid_token'],
    ['a wrong audience', makeToken(keyring, { aud: 'another-api' }, NOW), 'invalid_token'],
    ['no exp', makeToken(keyring, { exp: null }, NOW), 'invalid_token'],
    ['no sid', makeToken(keyring, { extra: { sid: undefined } }, NOW), 'invalid_token'],
    ['roles that are not an array', makeToken(keyring, { extra: { roles: 'admin' } }, NOW), 'invalid_token'],
    ['a lifetime longer than the access token TTL', makeToken(keyring, { exp: 86_400 }, NOW), 'invalid_token'],
    ['issued in the future, within its lifetime bound', makeToken(keyring, { iat: 3000, exp: 3060 }, NOW), 'invalid_token'],
    ['a subject that is not printable ASCII', makeToken(keyring, { sub: '用户' }, NOW), 'invalid_token'],
    ['a role that smuggles a comma', makeToken(keyring, { roles: ['user,admin'] }, NOW), 'invalid_token'],
    ['a tampered payload', `${h}.${b64({ ...payload, roles: ['admin'] })}.${s}`, 'invalid_token'],
    ['a truncated signature', `${h}.${p}.${s.slice(0, 10)}`, 'invalid_token'],
    ['garbage', 'not-a-token', 'invalid_token'],
    ['two parts', `${h}.${p}`, 'invalid_token'],
    ['four parts', `${good}.x`, 'invalid_token'],
    ['empty parts', '..', 'invalid_token'],
    ['non-base64 characters', `${h}.${p}.${s}!`, 'invalid_token'],
    ['a header that is not JSON', `${b64('{{{')}.${p}.${s}`, 'invalid_token'],
    ['a payload that is not JSON', `${h}.${b64('[1,2')}.${s}`, 'invalid_token'],
    ['oversized', `${h}.${'A'.repeat(MAX_TOKEN_LENGTH)}.${s}`, 'invalid_token'],
    ['unicode', 'é.é.é', 'invalid_token'],
  ]
  for (const [name, token, expected] of table) {
    t.equal(await codeOf(verify(await token)), expected, name)
  }
})

t.test('clock tolerance lets a just-expired token through and no further', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const verify = createVerifier({ ...options(keyring), cacheSize: 0 })
  t.equal(await codeOf(verify(await makeToken(keyring, { iat: -310, exp: -10 }, NOW))), 'accepted')
  t.equal(await codeOf(verify(await makeToken(keyring, { iat: -340, exp: -40 }, NOW))), 'token_expired')
})

t.test('a cached token still expires when the clock moves on', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  let now = NOW
  const verify = createVerifier({ ...options(keyring), now: () => now })
  const token = await makeToken(keyring, { exp: 60 }, NOW)
  t.equal(await codeOf(verify(token)), 'accepted')
  t.equal(await codeOf(verify(token)), 'accepted', 'served from the cache')
  now += 120_000
  t.equal(await codeOf(verify(token)), 'token_expired')
})

t.test('a forged token is never served from the cache', async (t) => {
  const keyring = await loadKeyring(undefined, 'ES256')
  const verify = createVerifier(options(keyring))
  const good = await makeToken(keyring, {}, NOW)
  await verify(good)
  const [h, p, s] = good.split('.') as [string, string, string]
  const forged = `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), roles: ['admin'] })}.${s}`
  // It ends like the cached token (the cache is keyed by that end): the whole token must match too.
  t.equal(verify.cached(forged), undefined, 'not a synchronous hit')
  t.equal(await codeOf(verify(forged)), 'invalid_token')
  t.equal(verify.cached(good)?.sub, 'u-alice', 'the genuine token is still cached')
})

for (const alg of ['EdDSA', 'RS256', 'HS256'] as const) {
  t.test(`${alg} tokens verify with their own keys`, async (t) => {
    const keyring = await loadKeyring(undefined, alg)
    const verify = createVerifier(options(keyring))
    t.equal((await verify(await makeToken(keyring, {}, NOW))).sub, 'u-alice')
  })
}
