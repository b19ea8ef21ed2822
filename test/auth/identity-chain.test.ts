import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createIdentityChain } from '../../src/auth/identity/index.js'
import type { Identity, IdentitySource } from '../../src/auth/identity/types.js'
import { hashPassword } from '../../src/auth/passwords.js'
import { GatewayError } from '../../src/errors.js'

const who = (subject: string): Identity => ({ subject, roles: [], claims: {} })

/** A source with a fixed answer that records whether it was asked. */
function fake(answer: Identity | null | Error) {
  const source = {
    calls: 0,
    async authenticate() {
      source.calls++
      if (answer instanceof Error) throw answer
      return answer
    },
  }
  return source satisfies IdentitySource
}

const down = () => new GatewayError('identity_unavailable', 'down')
const unavailable = { code: 'identity_unavailable', statusCode: 503 }

t.test('the first source that knows the user wins and later ones are not asked', async (t) => {
  const [a, b, c] = [fake(null), fake(who('from-b')), fake(who('from-c'))]
  t.same(await createIdentityChain([a, b, c]).authenticate('u', 'p'), who('from-b'))
  t.same([a.calls, b.calls, c.calls], [1, 1, 0])
})

t.test('null from every source is null', async (t) => {
  const [a, b] = [fake(null), fake(null)]
  t.equal(await createIdentityChain([a, b]).authenticate('u', 'p'), null)
  t.same([a.calls, b.calls], [1, 1])
})

t.test('no sources at all accept no one', async (t) => {
  t.equal(await createIdentityChain([]).authenticate('u', 'p'), null)
})

t.test('a failed source does not stop a later one from accepting', async (t) => {
  t.same(await createIdentityChain([fake(down()), fake(who('later'))]).authenticate('u', 'p'), who('later'))
})

t.test('a failed source with no later acceptance is 503, never 401', async (t) => {
  await t.rejects(createIdentityChain([fake(down()), fake(null)]).authenticate('u', 'p'), unavailable)
  await t.rejects(createIdentityChain([fake(null), fake(down())]).authenticate('u', 'p'), unavailable)
})

t.test('the first failure is the one reported', async (t) => {
  const first = down()
  const err = await createIdentityChain([fake(first), fake(down())])
    .authenticate('u', 'p')
    .catch((e: unknown) => e)
  t.equal(err, first)
})

t.test('an unexpected error in a source is reported as identity_unavailable', async (t) => {
  const bug = new TypeError('oops')
  const err = await createIdentityChain([fake(bug)])
    .authenticate('u', 'p')
    .catch((e: unknown) => e)
  t.match(err, unavailable)
  t.equal((err as Error).cause, bug, 'with the original as its cause')
})

t.test('a chain built from config asks static users first, then the user service', async (t) => {
  const asked: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c))
    req.on('end', () => {
      const { username } = JSON.parse(body) as { username: string }
      asked.push(username)
      if (username === 'remote') res.writeHead(200).end(JSON.stringify({ subject: 'r-1', roles: ['user'] }))
      else res.writeHead(401).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify`

  const chain = createIdentityChain([
    { type: 'static', users: [{ username: 'alice', passwordHash: await hashPassword('pw'), roles: ['user'], claims: { sub: 'x' } }] },
    { type: 'http', url, timeout: 2000 },
  ])
  t.same(await chain.authenticate('alice', 'pw'), { subject: 'alice', roles: ['user'], claims: {} })
  t.same(await chain.authenticate('remote', 'pw'), { subject: 'r-1', roles: ['user'], claims: {} })
  t.equal(await chain.authenticate('alice', 'wrong'), null)
  t.equal(await chain.authenticate('nobody', 'pw'), null)
  t.same(asked, ['remote', 'alice', 'nobody'], 'the service is asked only when static users say no')
})

t.test('a chain whose user service is down answers 503 for users it cannot vouch for', async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))

  const chain = createIdentityChain([
    { type: 'static', users: [{ username: 'alice', passwordHash: await hashPassword('pw'), roles: [], claims: {} }] },
    { type: 'http', url: `http://127.0.0.1:${port}/verify`, timeout: 500 },
  ])
  t.same(await chain.authenticate('alice', 'pw'), { subject: 'alice', roles: [], claims: {} }, 'static users still sign in')
  await t.rejects(chain.authenticate('alice', 'wrong'), unavailable)
  await t.rejects(chain.authenticate('bob', 'pw'), unavailable)
})
