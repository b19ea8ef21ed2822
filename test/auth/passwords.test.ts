import t from 'tap'
import { hash, parseOptions } from '@node-rs/argon2'
import {
  HASH_OPTIONS,
  MAX_PASSWORD_BYTES,
  dummyHash,
  hashParamsKey,
  hashPassword,
  isPasswordHash,
  passwordFits,
  verifyPassword,
} from '../../src/auth/passwords.js'

t.test('a hashed password verifies and another one does not', async (t) => {
  const hashed = await hashPassword('correct horse battery staple')
  t.equal(await verifyPassword(hashed, 'correct horse battery staple'), true)
  t.equal(await verifyPassword(hashed, 'correct horse battery stapl'), false)
  t.equal(await verifyPassword(hashed, ''), false)
})

t.test('hashes are argon2id PHC strings with the chosen parameters', async (t) => {
  const hashed = await hashPassword('pw')
  t.match(hashed, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
  const o = parseOptions(hashed)
  t.equal(o.memoryCost, HASH_OPTIONS.memoryCost)
  t.equal(o.timeCost, HASH_OPTIONS.timeCost)
  t.equal(o.parallelism, HASH_OPTIONS.parallelism)
  t.ok(o.memoryCost >= 19456, 'at least the OWASP minimum memory')
  t.ok(isPasswordHash(hashed))
})

t.test('two hashes of one password differ because each has its own salt', async (t) => {
  t.not(await hashPassword('same'), await hashPassword('same'))
})

t.test('a malformed hash verifies as false instead of throwing', async (t) => {
  const good = await hashPassword('pw')
  const malformed = [
    '',
    'pw',
    '$argon2id$v=19$m=19456,t=2,p=1$abc',
    '$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHQ$aGFzaA',
    '$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA',
    good.slice(0, -10),
    good.replace('argon2id', 'argon9'),
  ]
  for (const bad of malformed) {
    t.equal(await verifyPassword(bad, 'pw'), false, JSON.stringify(bad))
    t.equal(isPasswordHash(bad), false, `${JSON.stringify(bad)} is not a hash`)
  }
})

t.test('a password up to the limit is hashed and one byte more is refused', async (t) => {
  const longest = 'a'.repeat(MAX_PASSWORD_BYTES)
  const hashed = await hashPassword(longest)
  t.equal(await verifyPassword(hashed, longest), true)
  t.equal(await verifyPassword(hashed, longest + 'a'), false, 'verification refuses it too')
  await t.rejects(hashPassword(longest + 'a'), RangeError)
})

t.test('the limit counts UTF-8 bytes, not characters', async (t) => {
  const accents = 'é'.repeat(MAX_PASSWORD_BYTES / 2 + 1) // 2 bytes each
  t.equal(passwordFits(accents), false)
  t.equal(passwordFits('é'.repeat(MAX_PASSWORD_BYTES / 2)), true)
  await t.rejects(hashPassword(accents), RangeError)
})

t.test('an over-long password is refused before argon2 sees it', async (t) => {
  // A hash argon2 itself would accept for this password: only the length check can say no.
  const tooLong = 'z'.repeat(MAX_PASSWORD_BYTES + 1)
  const hashed = await hash(tooLong, HASH_OPTIONS)
  t.equal(await verifyPassword(hashed, tooLong), false)
})

t.test('an empty password is refused when hashing', async (t) => {
  await t.rejects(hashPassword(''), RangeError)
})

t.test('the dummy hash is made once and cached', async (t) => {
  t.equal(dummyHash(), dummyHash(), 'the same promise')
  const dummy = await dummyHash()
  t.equal(hashParamsKey(dummy), hashParamsKey(await hashPassword('pw')), 'default parameters')
  t.equal(await verifyPassword(dummy, ''), false)
})

t.test('the dummy hash copies the cost parameters of the hash it imitates', async (t) => {
  const cheap = await hash('pw', { memoryCost: 8192, timeCost: 1, parallelism: 1 })
  const dummy = await dummyHash(cheap)
  t.equal(hashParamsKey(dummy), hashParamsKey(cheap))
  t.not(dummy, cheap)
  t.equal(dummyHash(cheap), dummyHash(cheap))
  t.equal(await dummyHash('not a hash'), await dummyHash(), 'an unreadable hash falls back to the defaults')
})
