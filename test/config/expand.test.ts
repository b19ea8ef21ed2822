import t from 'tap'
import { expandString, readPlainScalar } from '../../src/config/expand.js'
import { configOf, file, problemsOf } from './fixtures/load.js'

t.test('${VAR} is replaced from the environment in every string value', async (t) => {
  const config = configOf(file('auth:', '  issuer: ${ISSUER}', '  audience: "api-${ENV}"'), { ISSUER: 'https://id', ENV: 'prod' })
  t.equal(config.auth.issuer, 'https://id')
  t.equal(config.auth.audience, 'api-prod')
})

t.test('${VAR:-default} uses the default when the variable is unset or empty', async (t) => {
  const text = file('auth:', '  issuer: ${ISSUER:-portcullis-dev}', '  audience: ${AUD:-web}')
  const config = configOf(text, { AUD: '' })
  t.equal(config.auth.issuer, 'portcullis-dev')
  t.equal(config.auth.audience, 'web')
})

t.test('a missing variable without a default is a problem at that value, naming the variable', async (t) => {
  const text = file('server:', '  host: 0.0.0.0', 'auth:', '  issuer: ${ISSUER}', '  audience: ${AUDIENCE}')
  t.same(problemsOf(text), [
    '4:11 auth.issuer: needs the environment variable ISSUER, which is not set',
    '5:13 auth.audience: needs the environment variable AUDIENCE, which is not set',
  ])
})

t.test('a missing variable in a list item names the item', async (t) => {
  const text = file('auth:', '  allowedOrigins:', '    - https://a.example', '    - ${APP_ORIGIN}')
  t.same(problemsOf(text), ['4:7 auth.allowedOrigins[1]: needs the environment variable APP_ORIGIN, which is not set'])
})

t.test('a variable set to the empty string is not missing', async (t) => {
  const config = configOf(file('store:', '  keyPrefix: "${PREFIX}"'), { PREFIX: '' })
  t.equal(config.store.keyPrefix, '')
})

t.test('a plain value is read again as YAML after expansion, so it gets its type', async (t) => {
  const text = file('server:', '  port: ${PORT:-8080}', '  trustProxy: ${TRUST:-false}', '  demoUpstream: ${DEMO:-}')
  const config = configOf(text, { TRUST: 'true' })
  t.equal(config.server.port, 8080)
  t.equal(config.server.trustProxy, true)
  t.equal(config.server.demoUpstream, null, 'an empty plain value is null, like `key:`')
})

t.test('a quoted value stays a string after expansion', async (t) => {
  t.same(problemsOf(file('server:', '  port: "${PORT}"'), { PORT: '8080' }), ['2:9 server.port: must be an integer, not a string'])
  t.equal(configOf(file('admin:', "  role: '${ROLE}'"), { ROLE: '123' }).admin.role, '123')
})

t.test('a block scalar stays a string after expansion', async (t) => {
  const config = configOf(file('admin:', '  role: >-', '    ${ROLE}'), { ROLE: 'true' })
  t.equal(config.admin.role, 'true')
})

t.test('a plain value that is not a YAML scalar after expansion stays the string it became', async (t) => {
  const text = file('auth:', '  issuer: ${ISSUER}')
  for (const issuer of ['a: b', '[x]', '#not-a-comment', "'quoted'"]) {
    t.equal(configOf(text, { ISSUER: issuer }).auth.issuer, issuer, issuer)
  }
})

t.test('an expanded value is never expanded again', async (t) => {
  const config = configOf(file('auth:', '  issuer: ${A}'), { A: '${B}', B: 'injected' })
  t.equal(config.auth.issuer, '${B}')
})

t.test('keys are never expanded', async (t) => {
  t.same(problemsOf(file('server:', '  ${KEY}: 1'), { KEY: 'port' }), ['2:3 server["${KEY}"]: unknown key "${KEY}" (${...} is not expanded in keys)'])
})

t.test('$${ is a literal ${, and other dollars are left alone', async (t) => {
  const config = configOf(file('auth:', '  issuer: "$${NOT_A_VAR}"', '  audience: pa$$word$'))
  t.equal(config.auth.issuer, '${NOT_A_VAR}')
  t.equal(config.auth.audience, 'pa$$word$')
})

t.test('a malformed reference is a problem', async (t) => {
  for (const bad of ['${', '${1X}', '${A B}', '${A', '${}']) {
    const problems = problemsOf(file('auth:', `  issuer: "${bad}"`))
    t.match(problems, [/^2:11 auth\.issuer: has a malformed \$\{\.\.\.\}/], bad)
  }
})

t.test('a missing variable hides the schema error its unexpanded value would cause', async (t) => {
  t.same(problemsOf(file('server:', '  port: ${PORT}')), ['2:9 server.port: needs the environment variable PORT, which is not set'])
})

t.test('expandString replaces several references and reports each missing one', async (t) => {
  const bad: string[] = []
  t.equal(expandString('${A}-${B:-b}-${C}', { A: 'a' }, bad), 'a-b-${C}')
  t.same(bad, ['needs the environment variable C, which is not set'])
})

t.test('plain scalars are read as the YAML 1.2 core schema reads them', async (t) => {
  const cases: [string, unknown][] = [
    ['', null],
    ['~', null],
    ['null', null],
    ['true', true],
    ['False', false],
    ['yes', 'yes'],
    ['on', 'on'],
    ['42', 42],
    ['-7', -7],
    ['0o17', 15],
    ['0x1F', 31],
    ['1.5', 1.5],
    ['1e3', 1000],
    ['.inf', Infinity],
    ['08080', 8080],
    ['1_000', '1_000'],
    ['12h', '12h'],
    ['http://x', 'http://x'],
  ]
  for (const [text, value] of cases) t.same(readPlainScalar(text), value, JSON.stringify(text))
  t.ok(Number.isNaN(readPlainScalar('.nan')))
})
