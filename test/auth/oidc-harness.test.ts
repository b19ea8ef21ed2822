/**
 * The OpenID Provider harness itself, proven with openid-client alone (no gateway): the real
 * provider process signs a user in and logs them out over the back channel, and the rogue
 * provider's hooks make tokens a correct relying party refuses.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import * as client from 'openid-client'
import { logoutAtProvider, signInAtProvider, startOidcProvider } from '../helpers/oidc-provider.js'
import { alterIdToken, BACKCHANNEL_EVENT, startRogueProvider, type IdTokenChange, type RogueProvider } from '../helpers/rogue-provider.js'

/** A loopback server standing in for the gateway: records every request it gets. */
async function receiver(t: Test): Promise<{ url: string; requests: { method: string; path: string; body: string }[] }> {
  const requests: { method: string; path: string; body: string }[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', body })
      res.writeHead(200, { 'cache-control': 'no-store' }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

const SECRET = 'harness-client-secret-0123456789abcdef'

async function discover(issuer: string, clientId: string, secret: string): Promise<client.Configuration> {
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), {
    execute: [client.allowInsecureRequests],
  })
  // Signatures checked against the provider's JWKS, as the gateway does.
  client.enableNonRepudiationChecks(config)
  return config
}

/** An authorization request with PKCE, state and nonce, and what the client must remember of it. */
async function authorization(config: client.Configuration, redirectUri: string, scope = 'openid') {
  const verifier = client.randomPKCECodeVerifier()
  const checks = { pkceCodeVerifier: verifier, expectedState: client.randomState(), expectedNonce: client.randomNonce(), idTokenExpected: true }
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })
  return { url: url.href, checks }
}

t.test('the real provider', async (t) => {
  const rp = await receiver(t)
  const redirectUri = `${rp.url}/callback`
  const op = await startOidcProvider(t, {
    clients: [
      {
        client_id: 'gateway',
        client_secret: SECRET,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [`${rp.url}/signed-out`],
        backchannel_logout_uri: `${rp.url}/backchannel-logout`,
      },
    ],
    accounts: { alice: { email: 'alice@example.com', name: 'Alice', groups: ['admins', 'ops'], realm_access: { roles: ['reader'] } } },
  })

  t.test('openid-client discovers it, with PKCE, logout and the extra scopes', async (t) => {
    const metadata = (await discover(op.issuer, 'gateway', SECRET)).serverMetadata()
    t.equal(metadata.issuer, op.issuer)
    t.match(metadata, { code_challenge_methods_supported: ['S256'], backchannel_logout_supported: true, backchannel_logout_session_supported: true })
    t.ok(metadata.end_session_endpoint)
    t.match(metadata.scopes_supported, ['openid', 'offline_access', 'profile', 'email', 'groups', 'realm_access'])
  })

  let session: Awaited<ReturnType<typeof signInAtProvider>>['providerCookies'] | undefined
  let sid: unknown

  t.test('a code flow with PKCE gives an RS256 id_token carrying the account claims', async (t) => {
    const config = await discover(op.issuer, 'gateway', SECRET)
    const { url, checks } = await authorization(config, redirectUri, 'openid profile email groups realm_access')
    const { callbackUrl, providerCookies } = await signInAtProvider(url, 'alice')
    const back = new URL(callbackUrl)
    t.equal(`${back.origin}${back.pathname}`, redirectUri)
    t.equal(back.searchParams.get('iss'), op.issuer)
    t.equal(back.searchParams.get('state'), checks.expectedState)
    t.same(rp.requests, [], 'the callback is returned, not requested')
    const tokens = await client.authorizationCodeGrant(config, back, checks)
    t.equal(decodeProtectedHeader(tokens.id_token!).alg, 'RS256')
    const claims = tokens.claims()!
    t.match(claims, { sub: 'alice', email: 'alice@example.com', name: 'Alice', groups: ['admins', 'ops'], realm_access: { roles: ['reader'] } })
    t.equal(claims.nonce, checks.expectedNonce)
    t.type(claims['sid'], 'string')
    session = providerCookies
    sid = claims['sid']
  })

  t.test('with the provider session in the jar, a client added after start signs in without the login page', async (t) => {
    await op.addClient({ client_id: 'es256', client_secret: SECRET, redirect_uris: [redirectUri], id_token_signed_response_alg: 'ES256' })
    await t.rejects(op.addClient({ client_id: 'broken', client_secret: SECRET, redirect_uris: ['not a url'] }), {
      message: /refused client broken: invalid_redirect_uri/,
    })
    const config = await discover(op.issuer, 'es256', SECRET)
    const { url, checks } = await authorization(config, redirectUri)
    // An unknown login would fail at the login form: none is shown.
    const { callbackUrl } = await signInAtProvider(url, 'nobody', { jar: session! })
    const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), checks)
    t.equal(decodeProtectedHeader(tokens.id_token!).alg, 'ES256')
    t.equal(tokens.claims()!.sub, 'alice')
  })

  t.test('logoutAtProvider makes the provider POST a signed logout token with the session id', async (t) => {
    const { redirectUrl, backchannel } = await logoutAtProvider(op.issuer, session!, {
      clientId: 'gateway',
      postLogoutRedirectUri: `${rp.url}/signed-out`,
      state: 'after-logout',
    })
    t.equal(redirectUrl, `${rp.url}/signed-out?state=after-logout`)
    t.match(backchannel, [{ url: `${rp.url}/backchannel-logout`, status: 200, sid, sub: 'alice', aud: 'gateway' }])
    const posts = rp.requests.filter((r) => r.path === '/backchannel-logout')
    t.equal(posts.length, 1)
    const token = new URLSearchParams(posts[0]!.body).get('logout_token')!
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${op.issuer}/jwks`)), {
      issuer: op.issuer,
      audience: 'gateway',
    })
    t.equal(protectedHeader.typ, 'logout+jwt')
    t.same(payload['events'], { [BACKCHANNEL_EVENT]: {} })
    t.equal(payload['sid'], sid)
    t.equal(payload.jti, backchannel[0]!.jti)
    t.notOk('nonce' in payload)
  })

  t.test('a paused provider answers nothing until resumed', async (t) => {
    const discovery = `${op.issuer}/.well-known/openid-configuration`
    op.pause()
    await t.rejects(fetch(discovery, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' })
    op.resume()
    t.equal((await fetch(discovery)).status, 200)
  })
})

t.test('with claimsInIdToken false the real provider keeps the claims for userinfo', async (t) => {
  const redirectUri = 'http://127.0.0.1:9/callback'
  const op = await startOidcProvider(t, {
    clients: [{ client_id: 'gateway', client_secret: SECRET, redirect_uris: [redirectUri] }],
    accounts: { bob: { email: 'bob@example.com', groups: ['staff'] } },
    claimsInIdToken: false,
  })
  const config = await discover(op.issuer, 'gateway', SECRET)
  const { url, checks } = await authorization(config, redirectUri, 'openid email groups')
  const { callbackUrl } = await signInAtProvider(url, 'bob')
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), checks)
  t.notOk('email' in tokens.claims()!)
  t.match(await client.fetchUserInfo(config, tokens.access_token, 'bob'), { sub: 'bob', email: 'bob@example.com', groups: ['staff'] })
})

/** Sends the client through the rogue provider's authorize redirect, then exchanges the code. */
async function rogueSignIn(rogue: RogueProvider, config?: client.Configuration) {
  const used = config ?? (await discover(rogue.issuer, rogue.clientId, rogue.clientSecret))
  const { url, checks } = await authorization(used, 'http://127.0.0.1:9/callback')
  const location = (await fetch(url, { redirect: 'manual' })).headers.get('location')!
  return client.authorizationCodeGrant(used, new URL(location), checks)
}

t.test('the rogue provider', async (t) => {
  const rogue = await startRogueProvider(t)
  // One test's script must not leak into the next, even when it fails half-way.
  t.afterEach(() => {
    Object.assign(rogue, { idToken: undefined, tokenAnswer: undefined, authorizeRedirect: undefined, intercept: undefined, azp: false, delayMs: 0 })
  })

  t.test('its default answers satisfy openid-client, PKCE and client_secret_basic checked', async (t) => {
    rogue.userinfo = { email: 'rogue@example.com' }
    const config = await discover(rogue.issuer, rogue.clientId, rogue.clientSecret)
    const tokens = await rogueSignIn(rogue, config)
    t.match(tokens.claims(), { iss: rogue.issuer, aud: rogue.clientId, sub: 'rogue-user' })
    const request = rogue.authorizeRequests.at(-1)!
    t.equal(request.code_challenge_method, 'S256')
    t.equal(tokens.claims()!['sid'], request.sid)
    t.match(rogue.tokenRequests.at(-1), { status: 200, authorization: /^Basic / })
    t.same(await client.fetchUserInfo(config, tokens.access_token, 'rogue-user'), { sub: 'rogue-user', email: 'rogue@example.com' })
  })

  const now = () => Math.floor(Date.now() / 1000)
  const refused: [string, IdTokenChange, RegExp][] = [
    ['a wrong iss', { claims: { iss: 'http://127.0.0.1:1' } }, /unexpected JWT "iss"/],
    ['a wrong aud', { claims: { aud: 'someone-else' } }, /unexpected JWT "aud"/],
    ['an extra aud without azp', { claims: { aud: [rogue.clientId, 'someone-else'] } }, /additional untrusted audiences/],
    ['an expired token', { claims: { exp: now() - 120 } }, /"exp"/],
    ['a wrong nonce', { claims: { nonce: 'not-the-one' } }, /"nonce"/],
    ['no nonce', { claims: { nonce: undefined } }, /"nonce"/],
    ['alg none', { signer: 'none' }, /unexpected JWT "alg"/],
    ['HS256 signed with the client secret', { signer: 'client-secret' }, /unexpected JWT "alg"/],
    ['a key not in the JWKS', { signer: 'foreign-key' }, /no applicable keys found/],
    ['a published kid over another key', { signer: 'foreign-key', header: { kid: rogue.kid } }, /signature verification failed/],
  ]
  for (const [what, change, message] of refused) {
    t.test(`openid-client refuses an id_token with ${what}`, async (t) => {
      rogue.idToken = alterIdToken(change)
      await t.rejects(rogueSignIn(rogue), { cause: { message } })
    })
  }

  // In the code flow openid-client only checks that iat is a number: a relying party that
  // refuses tokens from the future must check that itself.
  t.test('an iat in the future is sent as asked, and openid-client lets it pass', async (t) => {
    const future = now() + 3600
    rogue.idToken = alterIdToken({ claims: { iat: future } })
    t.equal((await rogueSignIn(rogue)).claims()!.iat, future)
  })

  t.test('an extra aud is accepted once azp names the client', async (t) => {
    rogue.azp = true
    rogue.idToken = alterIdToken({ claims: { aud: [rogue.clientId, 'someone-else'] } })
    t.equal((await rogueSignIn(rogue)).claims()!['azp'], rogue.clientId)
  })

  t.test('intercept, authorizeRedirect and tokenAnswer change what the provider answers', async (t) => {
    rogue.intercept = (_req, url) => (url.pathname === '/.well-known/openid-configuration' ? { status: 500, body: 'down' } : undefined)
    await t.rejects(discover(rogue.issuer, rogue.clientId, rogue.clientSecret), { code: 'OAUTH_RESPONSE_IS_NOT_CONFORM', cause: { status: 500 } })
    rogue.intercept = undefined
    const config = await discover(rogue.issuer, rogue.clientId, rogue.clientSecret)
    rogue.authorizeRedirect = (location) => location.searchParams.delete('iss')
    await t.rejects(rogueSignIn(rogue, config), { cause: { message: /"iss" \(issuer\) missing/ } })
    rogue.authorizeRedirect = undefined
    rogue.tokenAnswer = (answer) => {
      delete answer.body['id_token']
    }
    await t.rejects(rogueSignIn(rogue, config), { cause: { message: /"id_token"/ } })
  })

  t.test('a replayed code gets invalid_grant', async (t) => {
    const config = await discover(rogue.issuer, rogue.clientId, rogue.clientSecret)
    const { url, checks } = await authorization(config, 'http://127.0.0.1:9/callback')
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location')!)
    await client.authorizationCodeGrant(config, location, checks)
    await t.rejects(client.authorizationCodeGrant(config, location, checks), { name: 'ResponseBodyError', status: 400, error: 'invalid_grant' })
  })

  t.test('a wrong client secret or PKCE verifier is refused', async (t) => {
    const wrongSecret = await discover(rogue.issuer, rogue.clientId, 'not-the-secret')
    await t.rejects(rogueSignIn(rogue, wrongSecret), { name: 'WWWAuthenticateChallengeError', status: 401, cause: [{ scheme: 'basic' }] })
    t.match(rogue.tokenRequests.at(-1), { status: 401 })
    const config = await discover(rogue.issuer, rogue.clientId, rogue.clientSecret)
    const { url, checks } = await authorization(config, 'http://127.0.0.1:9/callback')
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location')!)
    await t.rejects(client.authorizationCodeGrant(config, location, { ...checks, pkceCodeVerifier: client.randomPKCECodeVerifier() }), {
      name: 'ResponseBodyError',
      error: 'invalid_grant',
    })
  })

  t.test('a rotated key appears in the JWKS and signs the next id_tokens', async (t) => {
    const before = rogue.jwksFetches
    const old = rogue.kid
    const kid = await rogue.rotateKey()
    t.not(kid, old)
    const tokens = await rogueSignIn(rogue)
    t.equal(decodeProtectedHeader(tokens.id_token!).kid, kid)
    t.equal(rogue.jwksFetches, before + 1)
    const { keys } = (await (await fetch(`${rogue.issuer}/jwks`)).json()) as { keys: { kid: string }[] }
    t.same(
      keys.map((k) => k.kid),
      [old, kid],
      'the old key stays published',
    )
  })

  t.test('logout tokens verify against the JWKS unless signed by a foreign key', async (t) => {
    const jwks = createRemoteJWKSet(new URL(`${rogue.issuer}/jwks`))
    const good = await rogue.logoutToken({ sid: 'sid-1' })
    const { payload } = await jwtVerify(good, jwks, { issuer: rogue.issuer, audience: rogue.clientId })
    t.match(payload, { sid: 'sid-1', events: { [BACKCHANNEL_EVENT]: {} } })
    t.type(payload.jti, 'string')
    t.notOk('sid' in decodeJwt(await rogue.logoutToken({ sid: undefined })), 'a claim set to undefined is left out')
    await t.rejects(jwtVerify(await rogue.logoutToken({}, { signer: 'foreign-key' }), jwks), { code: 'ERR_JWKS_NO_MATCHING_KEY' })
  })

  t.test('delayMs makes every answer slow', async (t) => {
    rogue.delayMs = 500
    const discovery = `${rogue.issuer}/.well-known/openid-configuration`
    await t.rejects(fetch(discovery, { signal: AbortSignal.timeout(100) }), { name: 'TimeoutError' })
    rogue.delayMs = 0
    t.equal((await fetch(discovery)).status, 200)
  })
})
