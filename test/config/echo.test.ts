import t from 'tap'
import { join } from 'node:path'
import { describeValue, isSecretSetting } from '../../src/config/echo.js'
import { formatProblem } from '../../src/config/problems.js'
import { buildCli, runCli } from '../helpers/cli.js'
import { file, load } from './fixtures/load.js'

/** Each problem as check-config prints it, without the file name. */
function shown(text: string, env: Record<string, string> = {}): string[] {
  const result = load(text, env)
  if (result.ok) throw new Error('expected the config to be refused, but it loaded')
  return result.problems.map((p) => formatProblem(p, 'F').replace(/^F:/, ''))
}

t.test('a bad value is echoed with the variable it came from', async (t) => {
  t.same(shown(file('server:', '  port: ${PORT}'), { PORT: '70000' }), ['2:9 server.port: must be at most 65535 (got 70000 from ${PORT})'])
  t.same(shown(file('server:', '  port: ${PORT:-99999}')), ['2:9 server.port: must be at most 65535 (got 99999 from the default of ${PORT:-99999})'])
  t.same(shown(file('routes: [{ name: a, prefix: /a, upstream: "${SCHEME}://${HOST}" }]'), { SCHEME: 'ftp', HOST: 'files' }), [
    '1:43 routes[0].upstream: must be an http:// or https:// URL without query or fragment (got "ftp://files" from ${SCHEME} and ${HOST})',
  ])
})

t.test('a bad value written in the file is echoed too, quoted when it is a string', async (t) => {
  t.same(shown(file('server:', '  port: eighty', '  logLevel: loud')), [
    '2:9 server.port: must be an integer, not a string (got "eighty")',
    '3:13 server.logLevel: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
  ])
})

t.test('a secret is never echoed, whatever the problem', async (t) => {
  const hs = (secret: string) => file('auth:', '  keys:', '    algorithm: HS256', `    signing: [{ kid: k1, secret: "${secret}" }]`)
  const short = shown(hs('${JWT_SECRET}'), { JWT_SECRET: 'hunter2' })
  t.same(short, ['4:34 auth.keys.signing[0].secret: must be at least 32 bytes long (it is 7) (got [redacted] from ${JWT_SECRET})'])
  t.same(shown(hs('${JWT_SECRET:-hunter2}')), [
    '4:34 auth.keys.signing[0].secret: must be at least 32 bytes long (it is 7) (got [redacted] from the default of ${JWT_SECRET:-[redacted]})',
  ])
  const user = file('auth:', '  identity:', '    - type: static', '      users:', '        - username: a', '          passwordHash: ${HASH}')
  t.same(shown(user, { HASH: '12345' }), [
    '6:25 auth.identity[0].users[0].passwordHash: must be a string, not a number (got [redacted] from ${HASH})',
  ])
  const store = file('store:', '  type: redis', '  url: ${REDIS_URL}', '  password: ${REDIS_PASSWORD}')
  t.same(shown(store, { REDIS_URL: 'http://app:hunter2@cache:6379', REDIS_PASSWORD: '12345' }), [
    '3:8 store.url: must be a redis:// or rediss:// URL (got "http://app:[redacted]@cache:6379" from ${REDIS_URL})',
    '4:13 store.password: must be a string, not a number (got [redacted] from ${REDIS_PASSWORD})',
  ])
})

t.test('settings named like credentials are secret, durations named after tokens are not', async (t) => {
  for (const path of [
    ['auth', 'identity', 0, 'clientSecret'],
    ['auth', 'keys', 'managed', 'encryptionKey'],
    ['auth', 'identity', 0, 'users', 1, 'passwordHash'],
    ['store', 'password'],
  ]) {
    t.ok(isSecretSetting(path), path.join('.'))
    t.equal(describeValue(path, 'hunter2', [{ name: 'X' }]), 'got [redacted] from ${X}')
  }
  t.notOk(isSecretSetting(['auth', 'accessTokenTtl']))
  t.notOk(isSecretSetting(['auth', 'keys', 'signing', 0, 'privateKeyFile']))
})

t.test('an echoed value is cut short and cannot carry control characters to the terminal', async (t) => {
  t.equal(describeValue(['routes', 0, 'upstream'], 'x'.repeat(200)), `got "${'x'.repeat(60)}…"`)
  t.equal(describeValue(['auth', 'issuer'], 'a\u001b[2Jb\nc'), 'got "a\\u001b[2Jb\\nc"')
  t.equal(describeValue(['routes'], [1, 2]), undefined, 'a list is described by the message, not echoed')
  t.equal(describeValue(['server', 'demoUpstream'], null), 'got null')
})

t.test('problems with no value of their own echo none', async (t) => {
  t.same(shown(file('server:', '  hots: ${HOST}'), { HOST: 'x' }), ['2:3 server.hots: unknown key "hots"; did you mean "host"?'])
  t.same(shown(file('auth:', '  issuer: ${ISSUER}')), ['2:11 auth.issuer: needs the environment variable ISSUER, which is not set'])
})

t.test('portcullis check-config echoes the bad value and the variable it came from', async (t) => {
  buildCli()
  const dir = t.testdir({
    'gateway.yaml': file('server:', '  port: ${PORT}', 'auth:', '  keys: { algorithm: HS256, signing: [{ kid: k, secret: "${JWT_SECRET}" }] }'),
  })
  const path = join(dir, 'gateway.yaml')
  const run = await runCli(['check-config', '--config', path], { env: { PORT: '8o8o', JWT_SECRET: 'too-short-secret' } })
  t.equal(run.code, 1)
  t.same(run.stdout.trimEnd().split('\n'), [
    `${path}:2:9 server.port: must be an integer, not a string (got "8o8o" from \${PORT})`,
    `${path}:4:57 auth.keys.signing[0].secret: must be at least 32 bytes long (it is 16) (got [redacted] from \${JWT_SECRET})`,
  ])
  t.notMatch(run.stdout + run.stderr, /too-short-secret/, 'the secret appears nowhere')
})
