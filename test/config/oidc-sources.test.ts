import t from 'tap'
import { configOf, file, load, problemsOf } from './fixtures/load.js'

const oidc = (name: string, extra = '') =>
  `    - { type: oidc, name: ${name}, issuer: "https://idp.example.com", clientId: c, clientSecret: s${extra} }`

t.test('an oidc source loads with its defaults', async (t) => {
  const config = configOf(file('auth:', '  identity:', oidc('corp')))
  t.match(config?.auth.identity[0], {
    type: 'oidc',
    name: 'corp',
    scopes: ['openid', 'profile', 'email'],
    subjectClaim: 'sub',
    rolesClaim: null,
    defaultRoles: [],
    claims: [],
    redirectUri: null,
    postLogoutRedirectUri: null,
    timeout: 5000,
  })
})

t.test('oidc source names are unique, URL-safe and name an address', async (t) => {
  t.same(problemsOf(file('auth:', '  identity:', oidc('corp'), oidc('corp'))), [
    '4:27 auth.identity[1].name: "corp" is already the name of auth.identity[0]',
  ])
  t.match(problemsOf(file('auth:', '  identity:', oidc('Corp/1'))), [/auth\.identity\[0\]\.name: must be lower-case letters, digits and "-"/])
})

t.test('an oidc source must ask for openid', async (t) => {
  t.match(problemsOf(file('auth:', '  identity:', oidc('corp', ', scopes: [profile]'))), [/auth\.identity\[0\]\.scopes: must include openid/])
})

t.test('a plain-http provider loads with a warning, unless it is on loopback', async (t) => {
  const remote = load(file('auth:', '  identity:', oidc('corp', ', redirectUri: "http://gw.example.com/auth/oidc/corp/callback"')))
  t.match(remote, { ok: true, warnings: [{ path: 'auth.identity[0].redirectUri', message: /plain http/ }] })
  const local = load(file('auth:', '  identity:', '    - { type: oidc, name: dev, issuer: "http://127.0.0.1:9000", clientId: c, clientSecret: s }'))
  t.match(local, { ok: true, warnings: [] })
})

t.test('authorizationParams may add parameters but not change the flow', async (t) => {
  t.match(problemsOf(file('auth:', '  identity:', oidc('corp', ', authorizationParams: { hd: example.com, state: x, redirect_uri: y }'))), [
    /auth\.identity\[0\]\.authorizationParams\.state: is set by the gateway itself/,
    /auth\.identity\[0\]\.authorizationParams\.redirect_uri: is set by the gateway itself/,
  ])
  t.ok(configOf(file('auth:', '  identity:', oidc('corp', ', authorizationParams: { hd: example.com, prompt: login }'))))
})

t.test('requireClaims takes values or lists of values', async (t) => {
  const config = configOf(file('auth:', '  identity:', oidc('corp', ', requireClaims: { hd: example.com, email_verified: true, groups: [a, b] }')))
  const source = config?.auth.identity[0] as { requireClaims: unknown } | undefined
  t.same(source?.requireClaims, { hd: 'example.com', email_verified: true, groups: ['a', 'b'] })
  t.match(problemsOf(file('auth:', '  identity:', oidc('corp', ', requireClaims: { groups: [] }'))), [/requireClaims\.groups/])
})
