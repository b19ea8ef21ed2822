import t from 'tap'
import { hash } from '@node-rs/argon2'
import { createStaticSource, type StaticUserConfig } from '../../src/auth/identity/static.js'
import { hashParamsKey, hashPassword, verifyPassword } from '../../src/auth/passwords.js'

const aliceHash = await hashPassword('alice-pw')
const bobHash = await hashPassword('bob-pw')
const users: StaticUserConfig[] = [
  { username: 'alice', passwordHash: aliceHash, subject: 'u-alice', roles: ['user', 'admin'], claims: { tenant: 't1' } },
  { username: 'bob', passwordHash: bobHash, roles: [], claims: {} },
]

/** A verify that records each hash it was asked about, then does the real work. */
function countingVerify() {
  const hashes: string[] = []
  const verify = async (hashed: string, password: string) => {
    hashes.push(hashed)
    return verifyPassword(hashed, password)
  }
  return { hashes, verify }
}

t.test('the right password gives the configured identity', async (t) => {
  const source = createStaticSource(users)
  t.same(await source.authenticate('alice', 'alice-pw'), {
    subject: 'u-alice',
    roles: ['user', 'admin'],
    claims: { tenant: 't1' },
  })
})

t.test('the subject defaults to the username, roles and claims to empty', async (t) => {
  const minimal = [{ username: 'carol', passwordHash: bobHash }] as unknown as StaticUserConfig[]
  const source = createStaticSource(minimal)
  t.same(await source.authenticate('carol', 'bob-pw'), { subject: 'carol', roles: [], claims: {} })
})

t.test('a wrong password gives null', async (t) => {
  const source = createStaticSource(users)
  t.equal(await source.authenticate('alice', 'bob-pw'), null)
  t.equal(await source.authenticate('alice', ''), null)
  t.equal(await source.authenticate('alice', 'alice-pw'.repeat(200)), null, 'an over-long one too')
})

t.test('an unknown user gives null', async (t) => {
  const source = createStaticSource(users)
  t.equal(await source.authenticate('mallory', 'alice-pw'), null)
  t.equal(await source.authenticate('Alice', 'alice-pw'), null, 'usernames are matched exactly')
  t.equal(await source.authenticate('__proto__', 'x'), null)
})

t.test('an unknown user costs one verification, like a wrong password', async (t) => {
  const wrong = countingVerify()
  await createStaticSource(users, { verify: wrong.verify }).authenticate('alice', 'nope')
  const unknown = countingVerify()
  await createStaticSource(users, { verify: unknown.verify }).authenticate('mallory', 'nope')

  t.equal(wrong.hashes.length, 1)
  t.equal(unknown.hashes.length, 1, 'the unknown user is verified too')
  const [dummy] = unknown.hashes
  t.notOk(dummy === aliceHash || dummy === bobHash, 'against a dummy hash, not a real user')
  t.equal(hashParamsKey(dummy!), hashParamsKey(aliceHash), 'with the same cost parameters')
})

t.test('the dummy hash matches the cost of the users hashes when those differ from the defaults', async (t) => {
  const cheap = await hash('pw', { memoryCost: 8192, timeCost: 1, parallelism: 1 })
  const counting = countingVerify()
  const source = createStaticSource([{ username: 'dave', passwordHash: cheap, roles: [], claims: {} }], counting)
  t.equal(await source.authenticate('erin', 'pw'), null)
  t.equal(hashParamsKey(counting.hashes[0]!), hashParamsKey(cheap))
})

t.test('reserved claims in a static user are dropped', async (t) => {
  const source = createStaticSource([
    {
      username: 'eve',
      passwordHash: bobHash,
      roles: ['user'],
      claims: { sub: 'root', iss: 'x', aud: 'x', sid: 'x', iat: 1, exp: 9e9, nbf: 0, jti: 'x', roles: ['admin'], team: 'red' },
    },
  ])
  t.same(await source.authenticate('eve', 'bob-pw'), { subject: 'eve', roles: ['user'], claims: { team: 'red' } })
})

t.test('changing a returned identity does not change the next one', async (t) => {
  const source = createStaticSource(users)
  const first = await source.authenticate('alice', 'alice-pw')
  first!.roles.push('root')
  first!.claims.tenant = 'other'
  t.same(await source.authenticate('alice', 'alice-pw'), {
    subject: 'u-alice',
    roles: ['user', 'admin'],
    claims: { tenant: 't1' },
  })
})

t.test('an unusable users list is refused with the path of each problem', async (t) => {
  const bad: StaticUserConfig[] = [
    { username: 'a', passwordHash: 'plaintext', roles: [], claims: {} },
    { username: 'a', passwordHash: aliceHash, roles: ['user,admin'], claims: {} },
    { username: 'b', passwordHash: aliceHash, subject: 'x\ny', roles: [], claims: {} },
  ]
  t.throws(() => createStaticSource(bad), {
    message: /users\[0\]\.passwordHash.*users\[1\]\.username: duplicate.*users\[1\]\.roles\[0\].*users\[2\]\.subject/,
  })
})
