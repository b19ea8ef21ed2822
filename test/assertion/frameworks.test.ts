/**
 * verifyRequest in the servers upstreams are written with, as docs/upstreams.md shows it: a
 * Fastify hook and a node:http handler, each answering a refusal with its statusCode.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import { type AssertionClaims, AssertionRefused, createAssertionVerifier } from '../../src/assertion/index.js'
import { ORDERS, serveJwks, signAssertion } from '../helpers/assertions.js'
import { makeKey } from '../helpers/rogue-keys.js'

async function setup(t: { teardown(fn: () => unknown): void }) {
  const key = await makeKey('ES256', 'gw')
  const jwks = await serveJwks(t, [key.jwk])
  const verifier = createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS })
  return { verifier, token: await signAssertion({ kid: key.kid, alg: key.alg, key: key.privateKey }) }
}

t.test('a Fastify onRequest hook: 401 without the header, the claims with it', async (t) => {
  const { verifier, token } = await setup(t)
  const app = Fastify()
  app.decorateRequest('assertion', null)
  app.addHook('onRequest', async (req) => {
    ;(req as unknown as { assertion: AssertionClaims }).assertion = await verifier.verifyRequest(req)
  })
  app.get('/orders', async (req) => ({ user: (req as unknown as { assertion: AssertionClaims }).assertion.sub }))
  t.teardown(() => app.close())
  const bypassed = await app.inject({ url: '/orders' })
  t.equal(bypassed.statusCode, 401)
  t.equal(bypassed.json().code, 'missing')
  const through = await app.inject({ url: '/orders', headers: { 'x-portcullis-assertion': token } })
  t.equal(through.statusCode, 200)
  t.same(through.json(), { user: 'u-alice' })
})

t.test('a node:http handler over a real socket: 401 without the header, 200 with it', async (t) => {
  const { verifier, token } = await setup(t)
  const server = createServer(async (req, res) => {
    try {
      const claims = await verifier.verifyRequest(req)
      res.end(`hello ${claims.sub}`)
    } catch (err) {
      res.writeHead(err instanceof AssertionRefused ? err.statusCode : 500).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  t.equal((await fetch(url)).status, 401)
  const res = await fetch(url, { headers: { 'X-Portcullis-Assertion': token } })
  t.equal(res.status, 200)
  t.equal(await res.text(), 'hello u-alice')
})
