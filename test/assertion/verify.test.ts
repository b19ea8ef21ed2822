/**
 * The upstream's verifier (src/assertion) against assertions signed here in SPEC.md's format and
 * a real JWK Set served over loopback.
 */
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { AssertionRefused, createAssertionVerifier, verifyAssertion, type AssertionVerifierOptions } from '../../src/assertion/index.js'
import { ORDERS, serveJwks, signAssertion, type AssertionKey } from '../helpers/assertions.js'
import { makeKey, signToken, type RogueAlg, type SigningKey } from '../helpers/rogue-keys.js'

const signer = (k: SigningKey): AssertionKey => ({ kid: k.kid, alg: k.alg, key: k.privateKey })

async function setup(t: Test, alg: RogueAlg = 'ES256', options: Partial<AssertionVerifierOptions> = {}) {
  const current = await makeKey(alg, 'gw')
  const jwks = await serveJwks(t, [current.jwk])
  const verifier = createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS, ...options })
  return { current, jwks, verifier, sign: (spec?: Parameters<typeof signAssertion>[1], now?: number) => signAssertion(signer(current), spec, now) }
}

/** The refusal a promise rejects with (fails the test if it resolves or throws something else). */
async function refusal(t: Test, promise: Promise<unknown>): Promise<AssertionRefused> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  t.type(err, AssertionRefused, 'refused with an AssertionRefused')
  return err as AssertionRefused
}

for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
  t.test(`a valid ${alg} assertion gives its claims, the user's own included`, async (t) => {
    const { verifier, sign } = await setup(t, alg)
    const claims = await verifier.verify(await sign({ sub: 'u-42', sid: 's-9', roles: ['user', 'admin'], claims: { email: 'a@example.com' } }))
    t.match(claims, { iss: 'portcullis', aud: ORDERS, sub: 'u-42', sid: 's-9', roles: ['user', 'admin'], email: 'a@example.com' })
    t.equal(claims.exp - claims.iat, 60)
  })
}

t.test('an access token signed by the same key is refused for its typ, before any key is fetched', async (t) => {
  const { current, jwks, verifier } = await setup(t)
  const accessToken = await new SignJWT({ sid: 's', roles: ['user'] })
    .setProtectedHeader({ alg: 'ES256', kid: current.kid, typ: 'JWT' })
    .setIssuer('portcullis')
    .setAudience(ORDERS)
    .setSubject('u-alice')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(current.privateKey)
  const err = await refusal(t, verifier.verify(accessToken))
  t.equal(err.code, 'wrong_typ')
  t.equal(err.statusCode, 401)
  t.equal(jwks.hits(), 0, 'the JWKS was not fetched for it')
})

t.test('typ is compared exactly: with an application/ prefix, in capitals or absent it is refused', async (t) => {
  const { verifier, sign } = await setup(t)
  for (const typ of ['application/portcullis-assertion+jwt', 'Portcullis-Assertion+JWT', undefined]) {
    t.equal((await refusal(t, verifier.verify(await sign({ header: { typ } })))).code, 'wrong_typ', `typ ${typ}`)
  }
})

t.test("an assertion for another service's audience is refused", async (t) => {
  const { verifier, sign } = await setup(t)
  const err = await refusal(t, verifier.verify(await sign({ aud: 'http://billing.internal:3000' })))
  t.equal(err.code, 'claim_invalid')
  t.equal(err.claim, 'aud')
})

t.test('an assertion from another issuer is refused; the configured issuer is accepted', async (t) => {
  const { verifier, sign, jwks } = await setup(t)
  const err = await refusal(t, verifier.verify(await sign({ iss: 'someone-else' })))
  t.equal(err.claim, 'iss')
  const custom = createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS, issuer: 'https://gw.example.com' })
  t.equal((await custom.verify(await sign({ iss: 'https://gw.example.com' }))).iss, 'https://gw.example.com')
})

t.test('an expired assertion is refused; within the clock tolerance it still passes', async (t) => {
  const clock = { now: Date.now() }
  const { verifier, sign } = await setup(t, 'ES256', { now: () => clock.now, clockTolerance: 5 })
  const token = await sign({}, clock.now)
  clock.now += 64_000
  t.equal((await verifier.verify(token)).sub, 'u-alice', '4 s past exp is within 5 s of tolerance')
  clock.now += 2_000
  const err = await refusal(t, verifier.verify(token))
  t.equal(err.code, 'expired')
  t.equal(err.claim, 'exp')
})

t.test('an assertion issued in the future, beyond the tolerance, is refused', async (t) => {
  const { verifier, sign } = await setup(t)
  const err = await refusal(t, verifier.verify(await sign({ iat: 30 })))
  t.equal(err.claim, 'iat')
})

t.test('maxTokenAge refuses an assertion issued too long ago whatever its exp says', async (t) => {
  const { verifier, sign } = await setup(t, 'ES256', { maxTokenAge: 60 })
  const err = await refusal(t, verifier.verify(await sign({ iat: -120, ttl: 600 })))
  t.equal(err.code, 'expired')
})

t.test('alg none is refused', async (t) => {
  const { current, verifier } = await setup(t)
  const payload = {
    iss: 'portcullis',
    aud: ORDERS,
    sub: 'u-alice',
    sid: 's',
    roles: ['admin'],
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 60,
  }
  const token = await signToken(payload, { signer: 'none', current, foreign: current, clientSecret: '', header: { typ: 'portcullis-assertion+jwt' } })
  t.equal((await refusal(t, verifier.verify(token))).code, 'alg_not_allowed')
})

t.test('HS256 is refused, and cannot be allowed', async (t) => {
  const { current, verifier, jwks } = await setup(t)
  const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef')
  const token = await signAssertion({ kid: current.kid, alg: 'HS256', key: secret })
  t.equal((await refusal(t, verifier.verify(token))).code, 'alg_not_allowed')
  t.throws(() => createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS, algorithms: ['HS256' as 'ES256'] }), /not HS256/)
})

t.test('algorithms pins the gateway algorithm: an EdDSA assertion is refused by an ES256-only verifier', async (t) => {
  const { jwks, sign } = await setup(t, 'EdDSA')
  const verifier = createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS, algorithms: ['ES256'] })
  t.equal((await refusal(t, verifier.verify(await sign()))).code, 'alg_not_allowed')
})

t.test('a signature by a key that is not published, under a published kid, is refused', async (t) => {
  const { current, verifier } = await setup(t)
  const foreign = await makeKey('ES256', 'rogue')
  const token = await signAssertion({ kid: current.kid, alg: 'ES256', key: foreign.privateKey })
  t.equal((await refusal(t, verifier.verify(token))).code, 'bad_signature')
})

t.test('a tampered payload is refused', async (t) => {
  const { verifier, sign } = await setup(t)
  const [h, p, s] = (await sign()).split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')
  t.equal((await refusal(t, verifier.verify(`${h}.${forged}.${s}`))).code, 'bad_signature')
  t.equal((await refusal(t, verifier.verify('not-a-jws'))).code, 'malformed')
})

t.test('an unknown kid makes the verifier fetch the JWKS again and accept the newly published key', async (t) => {
  const { current, jwks, verifier, sign } = await setup(t, 'ES256', { cooldownDuration: 0 })
  await verifier.verify(await sign())
  t.equal(jwks.hits(), 1)
  const next = await makeKey('ES256', 'gw-next')
  jwks.publish([current.jwk, next.jwk])
  t.equal((await verifier.verify(await signAssertion(signer(next)))).sub, 'u-alice', 'the new key verifies')
  t.equal(jwks.hits(), 2, 'one more fetch')
  const unknown = await makeKey('ES256', 'never-published')
  t.equal((await refusal(t, verifier.verify(await signAssertion(signer(unknown))))).code, 'unknown_kid')
})

t.test('unknown kids within the cooldown do not fetch the JWKS again (a flood cannot hammer the gateway)', async (t) => {
  const { jwks, verifier, sign } = await setup(t)
  await verifier.verify(await sign())
  const unknown = await makeKey('ES256', 'never-published')
  for (let i = 0; i < 5; i++) t.equal((await refusal(t, verifier.verify(await signAssertion(signer(unknown))))).code, 'unknown_kid')
  t.equal(jwks.hits(), 1, 'fetched once, when the set was first needed')
})

t.test('the JWKS is fetched again once its Cache-Control max-age has passed, not before', async (t) => {
  const clock = { now: Date.now() }
  const current = await makeKey('ES256', 'gw')
  const jwks = await serveJwks(t, [current.jwk], 60)
  const verifier = createAssertionVerifier({ jwksUrl: jwks.url, audience: ORDERS, now: () => clock.now })
  const verifyAt = async () => verifier.verify(await signAssertion(signer(current), {}, clock.now))
  await verifyAt()
  clock.now += 59_000
  await verifyAt()
  t.equal(jwks.hits(), 1, 'within max-age=60 the cached set serves')
  clock.now += 2_000
  await verifyAt()
  t.equal(jwks.hits(), 2, 'past it the set is fetched again')
})

t.test('a JWKS that cannot be fetched is a 503, not the caller’s fault; once in hand, keys outlive a refresh failure', async (t) => {
  const clock = { now: Date.now() }
  const { jwks, verifier, current } = await setup(t, 'ES256', { now: () => clock.now })
  jwks.fail(true)
  const err = await refusal(t, verifier.verify(await signAssertion(signer(current), {}, clock.now)))
  t.equal(err.code, 'jwks_unavailable')
  t.equal(err.statusCode, 503)
  jwks.fail(false)
  await verifier.verify(await signAssertion(signer(current), {}, clock.now))
  jwks.fail(true)
  clock.now += 301_000
  t.equal(
    (await verifier.verify(await signAssertion(signer(current), {}, clock.now))).sub,
    'u-alice',
    'max-age passed, refresh failed, cached key used',
  )
})

t.test('sid and roles must be present and of their types', async (t) => {
  const { current, verifier } = await setup(t)
  const now = Math.floor(Date.now() / 1000)
  const base = { iss: 'portcullis', aud: ORDERS, sub: 'u-alice', iat: now, exp: now + 60 }
  const sign = (claims: object) =>
    signToken(claims as Record<string, unknown>, {
      signer: 'key',
      current,
      foreign: current,
      clientSecret: '',
      header: { typ: 'portcullis-assertion+jwt' },
    })
  t.equal((await refusal(t, verifier.verify(await sign({ ...base, roles: ['user'] })))).claim, 'sid')
  t.equal((await refusal(t, verifier.verify(await sign({ ...base, sid: 's', roles: 'admin' })))).claim, 'roles')
})

t.test('verifyRequest refuses a request without the header (it bypassed the gateway) and one that carries it twice', async (t) => {
  const { verifier, sign } = await setup(t)
  const missing = await refusal(t, verifier.verifyRequest({ headers: {} }))
  t.equal(missing.code, 'missing')
  t.equal(missing.statusCode, 401)
  const token = await sign()
  t.equal((await refusal(t, verifier.verifyRequest({ headers: { 'x-portcullis-assertion': [token, token] } }))).code, 'malformed')
  t.equal((await verifier.verifyRequest({ headers: { 'x-portcullis-assertion': token } })).sub, 'u-alice')
  t.equal((await verifier.verifyRequest({ headers: { 'x-identity': token } }, 'X-Identity')).sub, 'u-alice', 'a configured header name')
})

t.test('verifyAssertion shares one remote JWKS between calls with the same URL; it also takes the set itself', async (t) => {
  const { current, jwks, sign } = await setup(t)
  for (let i = 0; i < 3; i++) t.equal((await verifyAssertion(await sign(), { jwksUrl: jwks.url, audience: ORDERS })).sub, 'u-alice')
  t.equal(jwks.hits(), 1)
  t.equal((await verifyAssertion(await sign(), { jwks: { keys: [current.jwk] }, audience: ORDERS })).sub, 'u-alice')
})

t.test('a verifier needs an audience and exactly one of jwksUrl and jwks', async (t) => {
  const { current, jwks } = await setup(t)
  t.throws(() => createAssertionVerifier({ jwksUrl: jwks.url, audience: '' }), /audience is required/)
  t.throws(() => createAssertionVerifier({ audience: ORDERS }), /exactly one of jwksUrl and jwks/)
  t.throws(() => createAssertionVerifier({ jwksUrl: jwks.url, jwks: { keys: [current.jwk] }, audience: ORDERS }), /exactly one/)
  t.throws(() => createAssertionVerifier({ jwksUrl: 'file:///etc/jwks.json', audience: ORDERS }), /http\(s\) URL/)
})
