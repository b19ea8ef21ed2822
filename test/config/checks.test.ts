import t from 'tap'
import { isUnder, normalizePrefix } from '../../src/config/check-routes.js'
import { configOf, file, load, problemsOf } from './fixtures/load.js'

const route = (name: string, prefix: string, extra = '') => `  - { name: ${name}, prefix: ${prefix}, upstream: "http://u"${extra} }`
const keys = (algorithm: string, ...entries: string[]) =>
  file('auth:', '  keys:', `    algorithm: ${algorithm}`, '    signing:', ...entries.map((e) => `      - ${e}`))
const SECRET = 's'.repeat(32)

t.test('route names must be unique', async (t) => {
  t.same(problemsOf(file('routes:', route('a', '/a'), route('b', '/b'), route('a', '/c'))), [
    '4:13 routes[2].name: "a" is already the name of routes[0]',
  ])
})

t.test('route prefixes must be unique, a trailing slash making no difference', async (t) => {
  t.same(problemsOf(file('routes:', route('a', '/api/'), route('b', '/api'))), ['3:24 routes[1].prefix: routes[0] already has this prefix'])
  t.ok(configOf(file('routes:', route('a', '/api'), route('b', '/api/v2'), route('c', '/apix'))))
})

t.test('route prefixes that differ only by case load with a warning, as they match case-sensitively', async (t) => {
  t.match(load(file('routes:', route('svc', '/svc/admin'), route('b', '/api'), route('c', '/SVC/Admin/'))), {
    ok: true,
    warnings: [{ path: 'routes[2].prefix', line: 4, column: 24, message: /differs from routes\[0\]\.prefix \(\/svc\/admin\) only by case/ }],
  })
  t.match(load(file('routes:', route('a', '/api'), route('b', '/api/v2'))), { ok: true, warnings: [] }, 'different prefixes are no warning')
})

t.test('a route prefix may not be or lie under auth.basePath', async (t) => {
  t.same(problemsOf(file('auth: { basePath: /login }', 'routes:', route('a', '/login/'), route('b', '/login/x'))), [
    '3:24 routes[0].prefix: lies under auth.basePath (/login), where the gateway serves its auth endpoints',
    '4:24 routes[1].prefix: lies under auth.basePath (/login), where the gateway serves its auth endpoints',
  ])
  t.ok(configOf(file('routes:', route('a', '/authority'), route('root', '/'))), 'a neighbour or a parent is fine')
})

t.test("a route prefix may not take over the gateway's own endpoints", async (t) => {
  const prefixes = ['/healthz', '/readyz/', '/metrics/x', '/.well-known/jwks.json']
  const text = file('routes:', ...prefixes.map((p, i) => route(`r${i}`, p)))
  t.same(problemsOf(text), [
    "2:25 routes[0].prefix: collides with the gateway's own endpoint /healthz",
    "3:25 routes[1].prefix: collides with the gateway's own endpoint /readyz",
    "4:25 routes[2].prefix: collides with the gateway's own endpoint /metrics",
    "5:25 routes[3].prefix: collides with the gateway's own endpoint /.well-known/jwks.json",
  ])
  t.ok(configOf(file('routes:', route('wk', '/.well-known'), route('h', '/healthzone'))), 'a prefix above or beside them is fine')
})

t.test("auth.basePath may not take over the gateway's own endpoints", async (t) => {
  t.same(problemsOf(file('auth: { basePath: /metrics/auth }')), ["1:19 auth.basePath: collides with the gateway's own endpoint /metrics"])
})

t.test('roles on a route with auth: none are refused, since nobody is identified there', async (t) => {
  t.same(problemsOf(file('routes:', route('a', '/a', ', auth: none, roles: [admin]'))), [
    '2:69 routes[0].roles: cannot be checked with auth: none; remove it or set auth to required',
  ])
  t.ok(configOf(file('routes:', route('a', '/a', ', auth: optional, roles: [admin]'))))
})

t.test('HS256 needs secrets, not key files', async (t) => {
  t.same(problemsOf(keys('HS256', `{ kid: a, secret: ${SECRET} }`, '{ kid: b, publicKeyFile: b.pub }')), [
    '6:34 auth.keys.signing[1].publicKeyFile: cannot be used with algorithm HS256, which needs a secret',
  ])
})

t.test('the asymmetric algorithms need key files, not secrets', async (t) => {
  for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    t.same(problemsOf(keys(alg, '{ kid: a, privateKeyFile: a.pem }', `{ kid: b, secret: ${SECRET} }`)), [
      `6:27 auth.keys.signing[1].secret: is only for HS256; algorithm ${alg} needs privateKeyFile or publicKeyFile`,
    ])
  }
  t.same(
    problemsOf(file('auth:', `  keys: { signing: [{ kid: a, secret: ${SECRET} }] }`)),
    ['2:39 auth.keys.signing[0].secret: is only for HS256; algorithm ES256 needs privateKeyFile or publicKeyFile'],
    'ES256 is the default',
  )
})

t.test('an HS256 secret under 32 bytes is refused, counting UTF-8 bytes', async (t) => {
  t.same(problemsOf(keys('HS256', `{ kid: a, secret: "${'s'.repeat(31)}" }`)), [
    '5:27 auth.keys.signing[0].secret: must be at least 32 bytes long (it is 31)',
  ])
  const config = configOf(keys('HS256', `{ kid: a, secret: "${'€'.repeat(11)}" }`))
  t.equal(config.auth.keys?.algorithm, 'HS256', '11 characters of 3 bytes each are enough')
})

t.test('a short secret from the environment is refused without echoing it', async (t) => {
  const problems = problemsOf(keys('HS256', '{ kid: a, secret: "${JWT_SECRET}" }'), { JWT_SECRET: 'hunter2' })
  t.same(problems, ['5:27 auth.keys.signing[0].secret: must be at least 32 bytes long (it is 7)'])
})

t.test('the first signing key must be able to sign', async (t) => {
  t.same(problemsOf(keys('ES256', '{ kid: old, publicKeyFile: old.pub }', '{ kid: new, privateKeyFile: new.pem }')), [
    '5:36 auth.keys.signing[0].publicKeyFile: cannot sign, and the first key signs: put a key with privateKeyFile first',
  ])
  t.ok(configOf(keys('ES256', '{ kid: new, privateKeyFile: new.pem }', '{ kid: old, publicKeyFile: old.pub }')))
})

t.test('kids must be unique', async (t) => {
  t.same(problemsOf(keys('EdDSA', '{ kid: k1, privateKeyFile: a.pem }', '{ kid: k1, publicKeyFile: b.pub }')), [
    '6:16 auth.keys.signing[1].kid: "k1" is already the kid of auth.keys.signing[0]',
  ])
})

t.test('redis-cluster needs nodes and redis-sentinel needs sentinels', async (t) => {
  t.same(problemsOf(file('store:', '  type: redis-cluster')), ['2:3 store.nodes: must list at least one node when store.type is redis-cluster'])
  t.same(problemsOf(file('store:', '  type: redis-sentinel', '  sentinels: []')), [
    '3:14 store.sentinels: must list at least one sentinel when store.type is redis-sentinel',
  ])
  t.ok(configOf(file('store: { type: redis-sentinel, sentinels: ["10.0.0.1:26379"], name: main }')))
})

t.test('more than one worker with the memory store is refused', async (t) => {
  const KEYS = '  keys: { signing: [{ kid: k, privateKeyFile: k.pem }] }'
  for (const workers of ['4', 'auto']) {
    t.same(problemsOf(file('server:', `  workers: ${workers}`, 'auth:', KEYS)), [
      '2:12 server.workers: more than one worker needs a shared store: set store.type to redis, redis-cluster or redis-sentinel (the memory store lives inside one process)',
    ])
  }
  t.ok(configOf(file('server: { workers: auto }', 'store: { type: redis }', 'auth:', KEYS)))
})

t.test('more than one worker without configured keys is refused', async (t) => {
  t.same(problemsOf(file('server: { workers: 2 }', 'store: { type: redis }')), [
    '1:20 server.workers: more than one worker needs auth.keys: each worker would otherwise sign with its own ephemeral key',
  ])
})

t.test('a shared store without configured keys loads with a warning', async (t) => {
  t.match(load(file('store: { type: redis }', 'auth: { issuer: me }')), {
    ok: true,
    warnings: [{ path: 'auth', line: 2, column: 7, message: /each gateway instance signs with its own ephemeral key/ }],
  })
})

t.test('static usernames must be unique within a source, not across sources', async (t) => {
  const text = file(
    'auth:',
    '  identity:',
    '    - type: static',
    '      users:',
    '        - { username: alice, passwordHash: a }',
    '        - { username: alice, passwordHash: b }',
    '    - type: static',
    '      users: [{ username: alice, passwordHash: c }]',
  )
  t.same(problemsOf(text), ['6:23 auth.identity[0].users[1].username: "alice" is already users[0] of this source'])
})

t.test('token and session lifetimes must be longer than zero', async (t) => {
  t.same(problemsOf(file('auth: { accessTokenTtl: 0, refreshTokenTtl: 0s, sessionMaxAge: 0d }')), [
    '1:25 auth.accessTokenTtl: must be longer than 0',
    '1:45 auth.refreshTokenTtl: must be longer than 0',
    '1:64 auth.sessionMaxAge: must be longer than 0',
  ])
})

t.test('prefixes compare on segment boundaries', async (t) => {
  t.equal(normalizePrefix('/api///'), '/api')
  t.equal(normalizePrefix('/'), '/')
  t.ok(isUnder('/auth/x', '/auth/'))
  t.ok(isUnder('/auth', '/auth'))
  t.notOk(isUnder('/authx', '/auth'))
  t.ok(isUnder('/anything', '/'))
})
