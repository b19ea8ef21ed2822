/**
 * routes[].identityAssertion and the configured identity headers, over a real gateway and a
 * real upstream: what the upstream receives, what a client can never send in their place.
 */
import t from 'tap'
import type { Test } from 'tap'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { startGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const NOW = Date.UTC(2026, 11, 3, 12)

async function setup(t: Test, extra = '') {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
auth:
  identityHeaders: { x-user-email: email }
${extra}
routes:
  - { name: orders, prefix: /orders, upstream: "${up.url}", identityAssertion: true, identityHeaders: { X-Tenant-Id: org.tenant, x-groups: groups } }
  - { name: billing, prefix: /billing, upstream: "${up.url}/v1", identityAssertion: { audience: billing } }
  - { name: plain, prefix: /plain, upstream: "${up.url}" }
  - { name: open, prefix: /open, upstream: "${up.url}", auth: none }
`,
    { now: NOW },
  )
  const token = (spec: Parameters<typeof makeToken>[1] = {}) =>
    makeToken(
      gw.keyring,
      {
        sub: 'u-alice',
        roles: ['user', 'ops'],
        exp: 600,
        extra: { email: 'alice@example.com', org: { tenant: 't-1' }, groups: ['a', 'b'] },
        ...spec,
      },
      gw.clock.now,
    )
  const call = (path: string, bearer: string, headers: Record<string, string> = {}) =>
    gw.fetch(path, { headers: { authorization: `Bearer ${bearer}`, ...headers } })
  const jwks = createLocalJWKSet((await (await gw.fetch('/.well-known/jwks.json')).json()) as never)
  return { up, gw, token, call, jwks }
}

t.test('an upstream with identityAssertion gets an assertion it can verify with the JWKS', async (t) => {
  const { up, gw, token, call, jwks } = await setup(t)
  const bearer = await token()
  t.equal((await call('/orders/1', bearer)).status, 200)
  const assertion = up.last().headers['x-portcullis-assertion'] as string
  t.type(assertion, 'string', 'the header is there')
  const header = decodeProtectedHeader(assertion)
  t.match(header, { typ: 'portcullis-assertion+jwt', kid: gw.keyring.signer.kid, alg: 'ES256' })
  const { payload } = await jwtVerify(assertion, jwks, {
    issuer: 'portcullis',
    audience: up.url,
    typ: 'portcullis-assertion+jwt',
    currentDate: new Date(gw.clock.now),
  })
  t.match(payload, {
    sub: 'u-alice',
    sid: 'AAAAAAsessionsessionsession0',
    roles: ['user', 'ops'],
    email: 'alice@example.com',
    org: { tenant: 't-1' },
  })
  t.equal(payload.exp! - payload.iat!, 60, 'auth.assertion.ttl')
  t.notOk('jti' in payload, "the access token's jti is not copied")

  await call('/billing/1', bearer)
  t.equal(up.last().url, '/v1/billing/1')
  const billing = await jwtVerify(up.last().headers['x-portcullis-assertion'] as string, jwks, {
    audience: 'billing',
    currentDate: new Date(gw.clock.now),
  })
  t.equal(billing.payload.aud, 'billing', 'an audience of its own')

  await call('/plain/1', bearer)
  t.equal(up.last().headers['x-portcullis-assertion'], undefined, 'no assertion where a route does not ask')
})

t.test('an assertion is signed once per token and route, renewed at half its life, and never outlives its token', async (t) => {
  const { up, gw, token, call } = await setup(t)
  const bearer = await token()
  await call('/orders/1', bearer)
  const first = up.last().headers['x-portcullis-assertion']
  await call('/orders/2', bearer)
  t.equal(up.last().headers['x-portcullis-assertion'], first, 'the same assertion for the next request')
  gw.clock.now += 29_000
  await call('/orders/3', bearer)
  t.equal(up.last().headers['x-portcullis-assertion'], first, 'still, with more than half its life left')
  gw.clock.now += 2_000
  await call('/orders/4', bearer)
  t.not(up.last().headers['x-portcullis-assertion'], first, 'a new one past half its life')

  const short = await token({ exp: 20 })
  await call('/orders/5', short)
  const bounded = JSON.parse(Buffer.from((up.last().headers['x-portcullis-assertion'] as string).split('.')[1]!, 'base64url').toString())
  t.equal(bounded.exp, Math.floor(gw.clock.now / 1000) + 20, "its exp is the access token's")
  gw.clock.now += 15_000
  await call('/orders/6', short)
  t.equal(
    JSON.parse(Buffer.from((up.last().headers['x-portcullis-assertion'] as string).split('.')[1]!, 'base64url').toString()).exp,
    bounded.exp,
    'and it is not re-signed for nothing near the end',
  )
})

t.test('an assertion is never accepted as an access token', async (t) => {
  const { up, token, call } = await setup(t)
  await call('/orders/1', await token())
  const assertion = up.last().headers['x-portcullis-assertion'] as string
  const replayed = await call('/orders/1', assertion)
  t.equal(replayed.status, 401)
  t.match(await replayed.json(), { code: 'invalid_token' })
  // Even where the assertion's audience is the gateway's own.
  const { up: up2, token: token2, call: call2 } = await setup(t, '  audience: billing')
  await call2('/billing/1', await token2({ aud: 'billing' }))
  const sameAudience = up2.last().headers['x-portcullis-assertion'] as string
  t.equal((await call2('/plain/1', sameAudience)).status, 401, 'even with the access tokens’ audience')
})

t.test('configured identity headers carry claims; a client can send none of them, on any route, in any spelling', async (t) => {
  const { up, token, call } = await setup(t)
  const bearer = await token()
  const forged = {
    'x-user-email': 'mallory@example.com',
    X_User_Email: 'mallory@example.com',
    'x-tenant-id': 't-evil',
    x_tenant_id: 't-evil',
    'x-portcullis-assertion': 'forged',
    X_PORTCULLIS_ASSERTION: 'forged',
  }
  await call('/orders/1', bearer, forged)
  const seen = up.last().headers
  t.equal(seen['x-user-email'], 'alice@example.com', 'a global mapping')
  t.equal(seen['x-tenant-id'], 't-1', "a route's own, by dot path, names compared without case")
  t.equal(seen['x-groups'], 'a,b', 'a list joined by commas')
  t.notOk('x_user_email' in seen || 'x_tenant_id' in seen || 'x_portcullis_assertion' in seen, 'underscore spellings are gone')
  t.not(seen['x-portcullis-assertion'], 'forged')

  await call('/plain/1', bearer, forged)
  const plain = up.last().headers
  t.equal(plain['x-user-email'], 'alice@example.com', 'a route without mappings of its own still has the global one')
  t.same(
    Object.keys(plain).filter((n) => /tenant|portcullis/i.test(n)),
    [],
    "another route's header and the assertion header never pass from a client",
  )
  await call('/open/1', bearer, forged)
  t.same(
    Object.keys(up.last().headers).filter((n) => /email|tenant|portcullis/i.test(n)),
    [],
    'an auth: none route: none of them reaches its upstream',
  )
  t.equal(up.last().headers['x-user-email'], undefined, 'an unauthenticated route sends no identity')
})

t.test('a claim a header cannot carry refuses the token; a missing claim sends no header', async (t) => {
  const { up, token, call } = await setup(t)
  for (const [name, email] of [
    ['a newline', 'a@b.c\r\nx-admin: 1'],
    ['non-ASCII', 'ålice@example.com'],
    ['an object', { a: 1 }],
    ['padding', ' a@b.c'],
  ] as const) {
    const r = await call('/orders/1', await token({ extra: { email } }))
    t.equal(r.status, 401, `${name}: 401`)
    t.match(await r.json(), { code: 'invalid_token', detail: /"email" cannot be sent as the header x-user-email/ })
  }
  const before = up.seen.length
  t.equal(up.seen.length, before, 'nothing reached the upstream')
  await call('/orders/1', await token({ extra: {} }))
  t.equal(up.last().headers['x-user-email'], undefined, 'no claim, no header')
  t.equal(up.last().headers['x-user-id'], 'u-alice', 'the built-in headers still go')
})
