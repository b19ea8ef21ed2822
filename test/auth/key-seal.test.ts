import t from 'tap'
import { randomBytes } from 'node:crypto'
import { seal, sealingKey, unseal } from '../../src/auth/key-seal.js'

const secret = 'correct horse battery staple, and then some more'
const plaintext = randomBytes(138)

t.test('a sealed key opens with the same encryptionKey and kid, to the same bytes', async (t) => {
  const sealed = seal(sealingKey(secret), 'k1', plaintext)
  t.same(unseal(sealingKey(secret), 'k1', sealed), plaintext)
  t.notOk(sealed.includes(plaintext.toString('base64url').slice(0, 16)), 'the stored form does not hold the key in the clear')
})

t.test('the sealing key is derived, not the encryptionKey itself, and is 256 bits', async (t) => {
  const key = sealingKey(secret)
  t.equal(key.length, 32)
  t.not(key.toString('utf8'), secret.slice(0, 32))
  t.same(sealingKey(secret), key, 'the same secret derives the same key on every instance')
})

t.test('a wrong encryptionKey does not open it: null, never garbage', async (t) => {
  const sealed = seal(sealingKey(secret), 'k1', plaintext)
  t.equal(unseal(sealingKey(`${secret}!`), 'k1', sealed), null)
})

t.test('a sealed key moved under another kid does not open (the kid is authenticated)', async (t) => {
  const sealed = seal(sealingKey(secret), 'k1', plaintext)
  t.equal(unseal(sealingKey(secret), 'k2', sealed), null)
})

t.test('any changed byte, a cut-short or an empty value does not open', async (t) => {
  const key = sealingKey(secret)
  const raw = Buffer.from(seal(key, 'k1', plaintext), 'base64url')
  for (const at of [0, 11, 12, 60, raw.length - 1]) {
    const altered = Buffer.from(raw)
    altered[at]! ^= 1
    t.equal(unseal(key, 'k1', altered.toString('base64url')), null, `byte ${at} flipped`)
  }
  t.equal(unseal(key, 'k1', raw.subarray(0, raw.length - 1).toString('base64url')), null, 'tag cut short')
  t.equal(unseal(key, 'k1', ''), null)
})

t.test('every seal draws a new IV: the same key sealed twice is stored differently', async (t) => {
  const key = sealingKey(secret)
  const a = seal(key, 'k1', plaintext)
  const b = seal(key, 'k1', plaintext)
  t.not(a, b)
  t.not(a.slice(0, 16), b.slice(0, 16), 'the 96-bit IVs differ')
})
