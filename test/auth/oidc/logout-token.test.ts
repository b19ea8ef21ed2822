import t from 'tap'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { BACKCHANNEL_EVENT, verifyLogoutToken } from '../../../src/auth/oidc/logout-token.js'

const NOW = Date.UTC(2026, 11, 3, 12)
const ISSUER = 'https://idp.example.com'
const { privateKey, publicKey } = await generateKeyPair('RS256')
const other = await generateKeyPair('RS256')
const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }
const keys = createLocalJWKSet({ keys: [publicJwk] })
const options = { issuer: ISSUER, clientId: 'portcullis', algorithms: ['RS256'], clockTolerance: 30_000, now: NOW }

const valid: JWTPayload = {
  iss: ISSUER,
  aud: 'portcullis',
  iat: NOW / 1000 - 5,
  jti: 'j1',
  sid: 's1',
  sub: 'u1',
  events: { [BACKCHANNEL_EVENT]: {} },
}

async function sign(payload: JWTPayload, opts: { key?: typeof privateKey; kid?: string; typ?: string } = {}) {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1', typ: opts.typ ?? 'logout+jwt' }).sign(opts.key ?? privateKey)
}

t.test('a valid logout token gives its jti, sid and sub', async (t) => {
  t.same(await verifyLogoutToken(await sign(valid), keys, options), { jti: 'j1', sid: 's1', sub: 'u1' })
  const { sid: _sid, ...subOnly } = valid
  t.same(await verifyLogoutToken(await sign(subOnly), keys, options), { jti: 'j1', sub: 'u1' }, 'sub alone')
  t.same(
    await verifyLogoutToken(await sign({ ...valid, aud: ['x', 'portcullis'] }), keys, options),
    { jti: 'j1', sid: 's1', sub: 'u1' },
    'among audiences',
  )
})

t.test('every rule of Back-Channel Logout §2.6 refuses a token', async (t) => {
  const { events: _e, ...noEvents } = valid
  const { jti: _j, ...noJti } = valid
  const { iat: _i, ...noIat } = valid
  const { sid: _s, sub: _u, ...neither } = valid
  const cases: Array<[string, Promise<string>]> = [
    ['another issuer', sign({ ...valid, iss: 'https://evil.example.com' })],
    ['another audience', sign({ ...valid, aud: 'someone-else' })],
    ['no events', sign(noEvents)],
    ['another event', sign({ ...valid, events: { 'http://schemas.openid.net/event/other': {} } })],
    ['the event not an object', sign({ ...valid, events: { [BACKCHANNEL_EVENT]: true } })],
    ['a nonce (an id_token)', sign({ ...valid, nonce: 'n' })],
    ['no jti', sign(noJti)],
    ['no iat', sign(noIat)],
    ['issued an hour ago', sign({ ...valid, iat: NOW / 1000 - 3600 })],
    ['issued in the future', sign({ ...valid, iat: NOW / 1000 + 3600 })],
    ['expired', sign({ ...valid, exp: NOW / 1000 - 60 })],
    ['neither sid nor sub', sign(neither)],
    ['a sid that is not a string', sign({ ...valid, sid: 5 })],
    ['signed by another key', sign(valid, { key: other.privateKey })],
    ['an unknown kid', sign(valid, { kid: 'k2' })],
    [
      'alg none',
      Promise.resolve(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(valid)).toString('base64url')}.`),
    ],
    [
      'HS256 keyed with the public key',
      new SignJWT(valid).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(JSON.stringify(publicJwk))),
    ],
    ['not a JWT', Promise.resolve('not-a-jwt')],
  ]
  for (const [name, token] of cases) {
    await t.rejects(verifyLogoutToken(await token, keys, options), { name: 'InvalidLogoutToken' }, name)
  }
})
