import t from 'tap'
import { configOf, file, problemsOf } from './fixtures/load.js'

t.test('a YAML syntax error is one problem with its line and column', async (t) => {
  t.same(problemsOf(file('server:', '  port: [8080', 'auth: {}')), [
    '3:1 Flow sequence in block collection must be sufficiently indented and end with a ]',
  ])
})

t.test('a duplicate key is refused at the second occurrence', async (t) => {
  t.same(problemsOf(file('server:', '  port: 80', '  host: a', '  port: 81')), ['4:3 server.port: duplicate key (it is already set above)'])
})

t.test('every duplicate key is reported, in lists too', async (t) => {
  const text = file('routes:', '  - name: a', '    name: b', 'server: {}', 'server: {}')
  t.same(problemsOf(text), ['3:5 routes[0].name: duplicate key (it is already set above)', '5:1 server: duplicate key (it is already set above)'])
})

t.test('a duplicate key in JSON is refused too', async (t) => {
  t.same(problemsOf('{"server": {"port": 1, "port": 2}}'), ['1:24 server.port: duplicate key (it is already set above)'])
})

t.test('a plain ${...} inside a flow collection gets a hint to quote it', async (t) => {
  const [problem] = problemsOf('server: { port: ${PORT} }\n', { PORT: '1' })
  t.match(problem, /^1:\d+ .*\(inside \[ \] or \{ \}, a value with \$\{\.\.\.\} must be quoted\)$/)
  t.equal(configOf('auth: { issuer: "${ISS}", audience: "${AUD}" }\n', { ISS: 'i', AUD: 'a' }).auth.audience, 'a')
})

t.test('aliases are copies: defaults and durations are applied to each once', async (t) => {
  const config = configOf(
    file(
      'auth:',
      '  refreshTokenTtl: &ttl 2h',
      '  sessionMaxAge: *ttl',
      'routes:',
      '  - { name: a, prefix: /a, upstream: "http://u", rateLimit: &limit { window: 1m } }',
      '  - { name: b, prefix: /b, upstream: "http://u", rateLimit: *limit }',
    ),
  )
  t.equal(config.auth.refreshTokenTtl, 7_200_000)
  t.equal(config.auth.sessionMaxAge, 7_200_000)
  t.same(config.routes[0]?.rateLimit, { max: 100, window: 60_000 })
  t.same(config.routes[1]?.rateLimit, { max: 100, window: 60_000 })
})

t.test('an alias that expands too much is refused as a billion-laughs attack', async (t) => {
  const text = file(
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
  )
  t.match(problemsOf(text), [/^2:8 aliases expand to more than 100 copies; refused as a possible "billion laughs" attack$/])
})

t.test('an alias without its anchor is refused where it is used', async (t) => {
  t.same(problemsOf(file('server:', '  host: *nowhere')), ['2:9 Unresolved alias (the anchor must be set before the alias): nowhere'])
})

t.test('more than one YAML document is refused', async (t) => {
  t.same(problemsOf(file('server: {}', '---', 'auth: {}')), ['2:1 holds more than one YAML document (---); a config is a single document'])
})

t.test('an unknown tag is refused rather than guessed at', async (t) => {
  t.same(problemsOf(file('server:', '  host: !env HOST')), ['2:9 server.host: Unresolved tag: !env'])
})

t.test('YAML 1.1 booleans such as yes and on are strings, so they are type errors for booleans', async (t) => {
  t.same(problemsOf(file('server:', '  trustProxy: yes')), ['2:15 server.trustProxy: must be true or false, not a string'])
})

t.test('a __proto__ key is just an unknown key', async (t) => {
  t.same(problemsOf(file('__proto__: { polluted: true }')), ['1:1 __proto__: unknown key "__proto__"'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('a comment-only file is an empty config', async (t) => {
  t.equal(configOf('# nothing here yet\n').server.port, 8080)
})
