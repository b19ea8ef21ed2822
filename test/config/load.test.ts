import { join } from 'node:path'
import t from 'tap'
import { ConfigError, formatProblem, loadConfigFile, parseConfig } from '../../src/config/load.js'
import { configOf, file, load, ROUTE, SOURCE } from './fixtures/load.js'

t.test('an empty file loads with every default from the schema', async (t) => {
  const config = configOf('')
  t.match(config.server, { host: '0.0.0.0', port: 8080, trustProxy: false, workers: 1, logLevel: 'info', demoUpstream: null })
  t.match(config.auth, {
    basePath: '/auth',
    issuer: 'portcullis',
    audience: 'portcullis',
    accessTokenTtl: 10 * 60_000,
    refreshTokenTtl: 14 * 86_400_000,
    sessionMaxAge: 30 * 86_400_000,
    refreshReuseGrace: 10_000,
    clockTolerance: 30_000,
    allowedOrigins: [],
    signInPage: false,
    cookies: { secure: true, sameSite: 'lax', domain: null },
    identity: [],
  })
  t.equal(config.auth.keys, undefined, 'no keys means an ephemeral key, decided at start')
  t.match(config.store, { type: 'memory', keyPrefix: 'portcullis:', commandTimeout: 500 })
  t.same(config.revocation, { mode: 'cached', resyncInterval: 30_000 })
  t.same(config.admin, { role: 'admin' })
  t.same(config.rateLimits.login.perUser, { max: 10, window: 15 * 60_000 })
  t.same(config.routes, [])
})

t.test('defaults fill in around the settings a file gives', async (t) => {
  const config = configOf(file('server:', '  port: 9000', ROUTE))
  t.equal(config.server.port, 9000)
  t.equal(config.server.host, '0.0.0.0')
  t.match(config.routes[0], { name: 'orders', auth: 'required', websocket: false, timeout: 30_000, forwardAuthorization: false })
  t.equal(config.routes[0]?.rewritePrefix, undefined)
})

t.test('defaults inside a union branch are filled for the branch the value means', async (t) => {
  const text = file(
    'auth:',
    '  identity:',
    '    - { type: static, users: [{ username: alice, passwordHash: h }] }',
    '    - { type: http, url: "http://users/verify" }',
  )
  const [first, second] = configOf(text).auth.identity
  t.same(first, { type: 'static', users: [{ username: 'alice', passwordHash: 'h', roles: [], claims: {} }] })
  t.same(second, { type: 'http', url: 'http://users/verify', timeout: 2000 })
})

t.test('a JSON document loads like the same YAML', async (t) => {
  const json = JSON.stringify({
    server: { port: 9000 },
    auth: { accessTokenTtl: '5m', keys: { signing: [{ kid: 'k1', privateKeyFile: 'k1.pem' }] } },
    routes: [{ name: 'orders', prefix: '/api/orders', upstream: 'http://127.0.0.1:3000' }],
  })
  const config = configOf(json)
  t.equal(config.server.port, 9000)
  t.equal(config.auth.accessTokenTtl, 300_000)
  t.equal(config.routes[0]?.name, 'orders')
})

t.test('problems in a JSON document have line and column too', async (t) => {
  const result = load('{\n  "server": {\n    "port": "80"\n  }\n}\n')
  t.match(result, { ok: false, problems: [{ path: 'server.port', line: 3, column: 13 }] })
})

t.test('durations in every unit and as seconds become milliseconds', async (t) => {
  const text = file(
    'auth:',
    '  accessTokenTtl: 500ms',
    '  refreshTokenTtl: 12h',
    '  sessionMaxAge: 14d',
    '  refreshReuseGrace: 10',
    '  clockTolerance: 0s',
    'rateLimits: { login: { perUser: { window: 10m } } }',
  )
  const config = configOf(text)
  t.equal(config.auth.accessTokenTtl, 500)
  t.equal(config.auth.refreshTokenTtl, 12 * 3_600_000)
  t.equal(config.auth.sessionMaxAge, 14 * 86_400_000)
  t.equal(config.auth.refreshReuseGrace, 10_000)
  t.equal(config.auth.clockTolerance, 0)
  t.same(config.rateLimits.login.perUser, { max: 10, window: 600_000 })
})

t.test('a duration too long to count in milliseconds is refused', async (t) => {
  const result = load(file('auth:', '  sessionMaxAge: 99999999999999d'))
  t.match(result, { ok: false, problems: [{ path: 'auth.sessionMaxAge', line: 2, column: 18, message: 'is too long' }] })
})

t.test('relative key files resolve against the config file directory; absolute ones stay', async (t) => {
  const text = file(
    'auth:',
    '  keys:',
    '    signing:',
    '      - { kid: new, privateKeyFile: keys/new.pem }',
    '      - { kid: old, publicKeyFile: /srv/keys/old.pub }',
  )
  t.same(configOf(text).auth.keys?.signing, [
    { kid: 'new', privateKeyFile: '/etc/portcullis/keys/new.pem' },
    { kid: 'old', publicKeyFile: '/srv/keys/old.pub' },
  ])
})

t.test('source is the absolute path of the file, or null for a config from memory', async (t) => {
  t.equal(configOf('').source, SOURCE)
  const relative = parseConfig('', { source: 'gateway.yaml', env: {} })
  t.equal(relative.ok && relative.config.source, join(process.cwd(), 'gateway.yaml'))
  const inMemory = parseConfig('auth: { keys: { signing: [{ kid: k, privateKeyFile: k.pem }] } }', { source: null, env: {} })
  t.equal(inMemory.ok && inMemory.config.source, null)
  t.equal(inMemory.ok && inMemory.config.auth.keys?.signing?.[0]?.kid, 'k')
  const signing = inMemory.ok ? inMemory.config.auth.keys?.signing?.[0] : undefined
  t.equal(signing && 'privateKeyFile' in signing && signing.privateKeyFile, join(process.cwd(), 'k.pem'))
})

t.test('the loaded config is frozen all the way down', async (t) => {
  const config = configOf(file(ROUTE))
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.server))
  t.ok(Object.isFrozen(config.routes))
  t.ok(Object.isFrozen(config.routes[0]))
  t.ok(Object.isFrozen(config.auth.cookies))
  t.throws(() => {
    ;(config.server as { port: number }).port = 1
  }, TypeError)
  t.throws(() => (config.routes as unknown[]).push({}), TypeError)
})

t.test('locate gives the position of a setting, or of the nearest setting that holds it', async (t) => {
  const result = load(file('server:', '  port: 9000', ROUTE))
  if (!result.ok) return t.fail('expected the config to load')
  t.same(result.locate(['server', 'port']), { line: 2, column: 9 })
  t.same(result.locate(['routes', 0, 'upstream']), { line: 3, column: 57 })
  t.same(result.locate(['server', 'host']), { line: 2, column: 3 }, 'a default points at its parent')
  t.same(result.locate(['auth', 'keys']), { line: 1, column: 1 }, 'an absent section points at the file')
  t.same(result.locate([]), { line: 1, column: 1 })
  const empty = load('')
  t.equal(empty.ok && empty.locate(['server']), null, 'a file without content has no positions')
})

t.test('a session that idles out before its access token expires is a warning, not a problem', async (t) => {
  const result = load(file('auth:', '  accessTokenTtl: 1h', '  refreshTokenTtl: 30m'))
  t.match(result, {
    ok: true,
    warnings: [{ path: 'auth.refreshTokenTtl', line: 3, column: 20, message: /not longer than accessTokenTtl \(1h\)/ }],
  })
})

t.test('loadConfigFile reads a file and resolves paths against its directory', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': file('auth:', '  keys: { signing: [{ kid: k, privateKeyFile: k.pem }] }', '  issuer: ${ISS}') })
  const result = await loadConfigFile(join(dir, 'gateway.yaml'), { ISS: 'me' })
  if (!result.ok) return t.fail('expected the config to load')
  t.equal(result.config.source, join(dir, 'gateway.yaml'))
  t.equal(result.config.auth.issuer, 'me')
  t.match(result.config.auth.keys?.signing?.[0], { privateKeyFile: join(dir, 'k.pem') })
})

t.test('loadConfigFile reads the environment from process.env by default', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'auth: { issuer: "${PORTCULLIS_TEST_ISSUER}" }\n' })
  process.env.PORTCULLIS_TEST_ISSUER = 'from-env'
  t.teardown(() => delete process.env.PORTCULLIS_TEST_ISSUER)
  const result = await loadConfigFile(join(dir, 'gateway.yaml'))
  t.equal(result.ok && result.config.auth.issuer, 'from-env')
})

t.test('a file that cannot be read is a problem without a position, not a throw', async (t) => {
  const dir = t.testdir({})
  const missing = await loadConfigFile(join(dir, 'nope.yaml'))
  t.same(missing, { ok: false, problems: [{ path: '', line: 0, column: 0, message: 'does not exist' }] })
  const directory = await loadConfigFile(dir)
  t.match(directory, { ok: false, problems: [{ message: 'is a directory, not a file' }] })
  t.equal(formatProblem(missing.ok ? ({} as never) : missing.problems[0]!, 'nope.yaml'), 'nope.yaml does not exist')
})

t.test('ConfigError carries the problems and lists them in its message', async (t) => {
  const result = load(file('server:', '  port: x'))
  if (result.ok) return t.fail('expected problems')
  const err = new ConfigError(result.problems, 'conf/gateway.yaml')
  t.equal(err.code, 'config_invalid')
  t.same(err.problems, result.problems)
  t.equal(err.message, 'invalid config:\n  conf/gateway.yaml:2:9 server.port: must be an integer, not a string (got "x")')
})
