import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type KeyProblem, loadKeyring } from '../../src/auth/keys.js'
import { createVerifier } from '../../src/auth/verify.js'
import { generatePem, writeKey } from '../../src/cli/keys-generate.js'
import { makeToken } from '../helpers/tokens.js'

const dir = mkdtempSync(join(tmpdir(), 'keys-'))
const file = (name: string, pem: string) => {
  const path = join(dir, name)
  writeFileSync(path, pem)
  return path
}
const verifierFor = (keyring: Awaited<ReturnType<typeof loadKeyring>>) =>
  createVerifier({ keyring, issuer: 'portcullis', audience: 'portcullis', clockTolerance: 0, maxLifetime: 600_000 })

async function problemsOf(p: Promise<unknown>): Promise<string[]> {
  try {
    await p
    return []
  } catch (err) {
    return ((err as AggregateError).errors as KeyProblem[]).map((e) => `${e.path.join('.')}: ${e.message}`)
  }
}

for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
  t.test(`a key written by keys generate (${alg}) signs tokens that verify, and its JWKS entry is public only`, async (t) => {
    const path = await writeKey(alg, `k-${alg}`, dir)
    const keyring = await loadKeyring({ algorithm: alg, signing: [{ kid: `k-${alg}`, privateKeyFile: path }] })
    t.equal((await verifierFor(keyring)(await makeToken(keyring))).sub, 'u-alice')
    const [jwk] = keyring.jwks.keys
    t.match(jwk, { kid: `k-${alg}`, alg, use: 'sig' })
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) t.notOk(secret in jwk!, `no "${secret}"`)
  })
}

t.test('keys generate never overwrites an existing key', async (t) => {
  await writeKey('ES256', 'once', dir)
  await t.rejects(writeKey('ES256', 'once', dir), { code: 'EEXIST' })
})

t.test('with several keys the first signs and every one verifies, including a retired public-only key', async (t) => {
  const oldPem = generatePem('ES256')
  const old = await loadKeyring({ algorithm: 'ES256', signing: [{ kid: 'old', privateKeyFile: file('old.pem', oldPem) }] })
  const { publicKey } = await import('node:crypto').then((c) => ({
    publicKey: c.createPublicKey(oldPem).export({ type: 'spki', format: 'pem' }).toString(),
  }))
  const ring = await loadKeyring({
    algorithm: 'ES256',
    signing: [
      { kid: 'new', privateKeyFile: file('new.pem', generatePem('ES256')) },
      { kid: 'old', publicKeyFile: file('old.pub.pem', publicKey) },
    ],
  })
  t.equal(ring.signer.kid, 'new')
  t.same(
    ring.jwks.keys.map((k) => k.kid),
    ['new', 'old'],
  )
  const verify = verifierFor(ring)
  t.equal((await verify(await makeToken(old))).sub, 'u-alice', 'a token of the retired key still verifies')
  t.equal((await verify(await makeToken(ring))).sub, 'u-alice')
})

t.test('HS256 uses secrets, publishes nothing, and refuses short ones', async (t) => {
  const ring = await loadKeyring({ algorithm: 'HS256', signing: [{ kid: 'h1', secret: 'x'.repeat(32) }] })
  t.same(ring.jwks.keys, [])
  t.equal((await verifierFor(ring)(await makeToken(ring))).sub, 'u-alice')
  t.match(await problemsOf(loadKeyring({ algorithm: 'HS256', signing: [{ kid: 'h1', secret: 'x'.repeat(31) }] })), [
    /auth\.keys\.signing\.0\.secret: .*at least 32 bytes/,
  ])
})

t.test('keys that do not fit the algorithm or are too weak are refused at load, each at its setting', async (t) => {
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString()
  const cases: Array<[string, Parameters<typeof loadKeyring>[0], RegExp]> = [
    ['RSA under 2048 bits', { algorithm: 'RS256', signing: [{ kid: 'a', privateKeyFile: file('r1024.pem', rsa1024) }] }, /at least 2048 bits/],
    ['a P-384 key for ES256', { algorithm: 'ES256', signing: [{ kid: 'a', privateKeyFile: file('p384.pem', p384) }] }, /P-256/],
    ['an EC key for EdDSA', { algorithm: 'EdDSA', signing: [{ kid: 'a', privateKeyFile: file('ec.pem', generatePem('ES256')) }] }, /Ed25519/],
    ['a SEC1 (not PKCS#8) PEM', { algorithm: 'ES256', signing: [{ kid: 'a', privateKeyFile: file('sec1.pem', sec1) }] }, /PKCS#8/],
    ['garbage', { algorithm: 'ES256', signing: [{ kid: 'a', privateKeyFile: file('junk.pem', 'hello') }] }, /PKCS#8/],
    ['a missing file', { algorithm: 'ES256', signing: [{ kid: 'a', privateKeyFile: join(dir, 'nope.pem') }] }, /cannot read .*ENOENT/],
    ['a secret with ES256', { algorithm: 'ES256', signing: [{ kid: 'a', secret: 'x'.repeat(40) }] }, /only valid with algorithm HS256/],
    ['a public key first', { algorithm: 'ES256', signing: [{ kid: 'a', publicKeyFile: file('pub.pem', 'x') }] }, /SPKI|private part/],
  ]
  for (const [name, config, message] of cases) {
    const problems = await problemsOf(loadKeyring(config))
    t.equal(problems.length, 1, name)
    t.match(problems[0], message, name)
    t.match(problems[0], /^auth\.keys\.signing\.0/, `${name}: reported at its setting`)
  }
})
