import t from 'tap'
import { file, problemsOf } from './fixtures/load.js'

const KEY = 'keys: { signing: [{ kid: k1, privateKeyFile: k1.pem }] }'

/** Each file has one mistake; the loader must name the setting and point at it exactly. */
const cases: { name: string; text: string; expect: string }[] = [
  {
    name: 'an unknown top-level key is named, with the key it was probably meant to be',
    text: file('sever:', '  port: 80'),
    expect: '1:1 sever: unknown key "sever"; did you mean "server"?',
  },
  {
    name: 'an unknown key in a route points at the key itself',
    text: file('routes:', '  - name: orders', '    prefix: /api', '    upstream: http://a', '    timout: 5s'),
    expect: '5:5 routes[0].timout: unknown key "timout"; did you mean "timeout"?',
  },
  {
    name: 'an unknown key far from any known one gets no suggestion',
    text: file('server:', '  colour: blue'),
    expect: '2:3 server.colour: unknown key "colour"',
  },
  {
    name: 'a missing required setting is reported at the object that lacks it',
    text: file('routes:', '  - name: orders', '    prefix: /api'),
    expect: '2:5 routes[0].upstream: is required',
  },
  {
    name: 'a number written as text is a type error at the value',
    text: file('server:', '  port: 80a'),
    expect: '2:9 server.port: must be an integer, not a string',
  },
  {
    name: 'a port out of range says the limit',
    text: file('server:', '  port: 70000'),
    expect: '2:9 server.port: must be at most 65535',
  },
  {
    name: 'workers that are neither a count nor "auto" get one sentence, not one error per branch',
    text: file('server:', '  workers: many'),
    expect: '2:12 server.workers: must be an integer from 1 to 256 or "auto"',
  },
  {
    name: 'a malformed duration says what a duration looks like',
    text: file('auth:', '  accessTokenTtl: 5 minutes'),
    expect: '2:19 auth.accessTokenTtl: must be a duration such as "500ms", "30s", "10m", "12h", "14d" or a whole number of seconds',
  },
  {
    name: 'a negative duration is refused',
    text: file('auth:', '  clockTolerance: -5'),
    expect: '2:19 auth.clockTolerance: must be a duration such as "500ms", "30s", "10m", "12h", "14d" or a whole number of seconds',
  },
  {
    name: 'an unknown algorithm lists the known ones',
    text: file('auth:', '  keys:', '    algorithm: HS512', '    signing: [{ kid: k, secret: s }]'),
    expect: '3:16 auth.keys.algorithm: must be one of ES256, EdDSA, RS256, HS256',
  },
  {
    name: 'a signing key with two kinds of material points at the second one',
    text: file('auth:', '  keys:', '    signing:', '      - kid: k1', '        privateKeyFile: k1.pem', '        secret: abc'),
    expect: '6:9 auth.keys.signing[0].secret: cannot be combined with privateKeyFile; give only one of privateKeyFile, publicKeyFile or secret',
  },
  {
    name: 'a signing key with no key material says which keys it may have',
    text: file('auth:', '  keys:', '    signing:', '      - kid: k1'),
    expect: '4:9 auth.keys.signing[0]: needs privateKeyFile, publicKeyFile or secret',
  },
  {
    name: 'a signing key that is not an object is said to be one',
    text: file('auth:', '  keys:', '    signing: [k1.pem]'),
    expect: '3:15 auth.keys.signing[0]: must be an object',
  },
  {
    name: 'an empty signing list is refused',
    text: file('auth:', '  keys:', '    signing: []'),
    expect: '3:14 auth.keys.signing: must not be empty',
  },
  {
    name: 'an identity source of an unknown type points at its type',
    text: file('auth:', '  identity:', '    - type: ldap'),
    expect: '3:13 auth.identity[0].type: must be one of static, http, oidc',
  },
  {
    name: 'an identity source without a type is reported at the source',
    text: file('auth:', '  identity:', '    - url: http://users/verify'),
    expect: '3:7 auth.identity[0].type: is required (one of static, http, oidc)',
  },
  {
    name: 'an http identity source reports only its own mistakes, not the static branch',
    text: file('auth:', '  identity:', '    - type: http', '      url: ftp://users'),
    expect: '4:12 auth.identity[0].url: must be an http:// or https:// URL',
  },
  {
    name: 'a static user without a password hash is reported at the user',
    text: file('auth:', '  identity:', '    - type: static', '      users:', '        - username: alice'),
    expect: '5:11 auth.identity[0].users[0].passwordHash: is required',
  },
  {
    name: 'routes written as a mapping must be a list',
    text: file('routes:', '  orders: { prefix: /api }'),
    expect: '2:3 routes: must be a list, not an object',
  },
  {
    name: 'a route prefix must start with a slash',
    text: file('routes:', '  - { name: a, prefix: api, upstream: "http://u" }'),
    expect: '2:24 routes[0].prefix: must be a path such as /api/orders (no //, no . or .. segments, no %)',
  },
  {
    name: 'a route prefix with a dot segment is refused',
    text: file('routes:', '  - { name: a, prefix: /api/../admin, upstream: "http://u" }'),
    expect: '2:24 routes[0].prefix: must be a path such as /api/orders (no //, no . or .. segments, no %)',
  },
  {
    name: 'an upstream with a query string is refused',
    text: file('routes:', '  - { name: a, prefix: /a, upstream: "http://u/?x=1" }'),
    expect: '2:38 routes[0].upstream: must be an http:// or https:// URL without query or fragment',
  },
  {
    name: 'an unknown auth mode lists the known ones',
    text: file('routes:', '  - { name: a, prefix: /a, upstream: "http://u", auth: nope }'),
    expect: '2:56 routes[0].auth: must be one of required, optional, none',
  },
  {
    name: 'an allowed origin with a path is refused',
    text: file('auth:', '  allowedOrigins: ["https://app.example.com/login"]'),
    expect: '2:20 auth.allowedOrigins[0]: must be an origin such as https://app.example.com (no path)',
  },
  {
    name: 'an empty route name is refused',
    text: file('routes:', '  - { name: "", prefix: /a, upstream: "http://u" }'),
    expect: '2:13 routes[0].name: must be letters, digits, _ . or -',
  },
  {
    name: 'a whole file that is a list is refused at its start',
    text: file('- server'),
    expect: '1:1 must be an object, not a list',
  },
  {
    name: 'a cookie domain must be a non-empty string or null',
    text: file('auth:', '  cookies: { domain: 5 }'),
    expect: '2:22 auth.cookies.domain: must be null or a non-empty string',
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    t.same(problemsOf(c.text), [c.expect])
  })
}

t.test('every problem in a file is reported at once, in file order', async (t) => {
  const text = file(
    'server:',
    '  port: high', // 2: wrong type
    'auth:',
    '  issuer: ""', // 4: empty
    `  ${KEY}`,
    'routes:',
    '  - { name: a, prefix: /a, upstream: "http://u", timeout: soon }', // 7: not a duration
  )
  t.same(problemsOf(text), [
    '2:9 server.port: must be an integer, not a string',
    '4:11 auth.issuer: must not be empty',
    '7:59 routes[0].timeout: must be a duration such as "500ms", "30s", "10m", "12h", "14d" or a whole number of seconds',
  ])
})

t.test('schema problems and semantic problems come out together', async (t) => {
  const text = file(
    'server: { prot: 80 }',
    'routes:',
    '  - { name: a, prefix: /a, upstream: "http://u" }',
    '  - { name: a, prefix: /b, upstream: "http://u" }',
    '  - { name: c, prefix: /a/, upstream: "http://u" }',
  )
  t.same(problemsOf(text), [
    '1:11 server.prot: unknown key "prot"; did you mean "port"?',
    '4:13 routes[1].name: "a" is already the name of routes[0]',
    '5:24 routes[2].prefix: routes[0] already has this prefix',
  ])
})

t.test('a route with a schema problem does not hide the semantic problems of the others', async (t) => {
  const text = file('routes:', '  - { name: a, prefix: /a, upstream: "ftp://u" }', '  - { name: b, prefix: /healthz, upstream: "http://u" }')
  t.same(problemsOf(text), [
    '2:38 routes[0].upstream: must be an http:// or https:// URL without query or fragment',
    "3:24 routes[1].prefix: collides with the gateway's own endpoint /healthz",
  ])
})
