/**
 * The verifier against what a real gateway sends: the assertion its proxy put on a request to a
 * real upstream, checked with the gateway's own /.well-known/jwks.json.
 */
import t from 'tap'
import { createAssertionVerifier } from '../../src/assertion/index.js'
import { loadKeyring } from '../../src/auth/keys.js'
import { startGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

t.test("the gateway's assertion verifies with its JWKS at the upstream it was made for, and only there", async (t) => {
  const up = await startUpstream(t)
  const keyring = await loadKeyring(undefined, 'EdDSA')
  const gw = await startGateway(
    t,
    `auth: { issuer: "https://gw.example.com" }
routes:
  - { name: orders, prefix: /orders, upstream: "${up.url}", identityAssertion: true }
  - { name: billing, prefix: /billing, upstream: "${up.url}", identityAssertion: { audience: billing } }
`,
    { keyring },
  )
  const accessToken = await makeToken(keyring, { iss: 'https://gw.example.com', sub: 'u-7', roles: ['user'], extra: { email: 'u7@example.com' } })
  const through = async (path: string) => {
    t.equal((await gw.fetch(path, { headers: { authorization: `Bearer ${accessToken}` } })).status, 200)
    return up.last().headers['x-portcullis-assertion'] as string
  }
  const jwksUrl = `${gw.url}/.well-known/jwks.json`
  const orders = createAssertionVerifier({ jwksUrl, audience: up.url, issuer: 'https://gw.example.com', algorithms: ['EdDSA'] })

  await through('/orders/1')
  const claims = await orders.verifyRequest(up.last(), 'x-portcullis-assertion')
  t.match(claims, { iss: 'https://gw.example.com', aud: up.url, sub: 'u-7', roles: ['user'], email: 'u7@example.com' })
  t.type(claims.sid, 'string')
  t.ok(claims.exp - claims.iat <= 60, 'at most auth.assertion.ttl')

  await t.rejects(orders.verify(await through('/billing/1')), { code: 'claim_invalid', claim: 'aud' }, "billing's assertion is refused by orders")
  await t.rejects(orders.verify(accessToken), { code: 'wrong_typ' }, 'the access token the client sent is refused')
  const billing = createAssertionVerifier({ jwksUrl, audience: 'billing', issuer: 'https://gw.example.com' })
  t.equal((await billing.verify(await through('/billing/2'))).sub, 'u-7')
})
