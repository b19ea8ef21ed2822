/**
 * OpenID Connect sign-in against a real provider (oidc-provider, in its own process): the whole
 * flow, what the session looks like, how the flow resists replay and cross-browser use, and how
 * the provider ends sessions.
 */
import t from 'tap'
import { request } from 'undici'
import { logoutAtProvider, signInAtProvider } from '../../helpers/oidc-provider.js'
import { browser, CLIENT_SECRET, oidcSetup, signIn } from './setup.js'

const json = async (r: Response) => (await r.json()) as Record<string, unknown>

t.test('a user signs in at the provider and comes back with a session like any other', async (t) => {
  const setup = await oidcSetup(t)
  const { gw, origin, upstream } = setup
  const alice = browser()
  const start = await alice(`${origin}/auth/oidc/corp/start?return=/api/hello%3Fx%3D1`, { redirect: 'manual' })
  t.equal(start.status, 302, 'start redirects')
  t.equal(start.headers.get('cache-control'), 'no-store')
  const authorize = new URL(start.headers.get('location')!)
  t.equal(authorize.origin, setup.provider.issuer, 'to the provider')
  const params = Object.fromEntries(authorize.searchParams)
  t.match(params, {
    response_type: 'code',
    client_id: 'portcullis',
    redirect_uri: `${origin}/auth/oidc/corp/callback`,
    scope: 'openid profile email groups',
    code_challenge_method: 'S256',
    code_challenge: /^[A-Za-z0-9_-]{43}$/,
    state: /^[A-Za-z0-9_-]{43}$/,
    nonce: /^[A-Za-z0-9_-]{43}$/,
  })
  const flowCookie = start.headers.getSetCookie().find((c) => c.startsWith('portcullis_oidc_'))
  t.match(
    flowCookie,
    new RegExp(`^portcullis_oidc_${params['state']!.slice(0, 12)}=${params['state']}; Max-Age=600; Path=/; HttpOnly; SameSite=Lax$`),
    'the flow cookie',
  )

  const { callbackUrl } = await signInAtProvider(authorize.href, 'alice')
  const callback = await alice(callbackUrl, { redirect: 'manual' })
  t.equal(callback.status, 302, 'the callback redirects')
  t.equal(callback.headers.get('location'), '/api/hello?x=1', 'to the return path')
  t.ok(alice.jar.has('portcullis_at') && alice.jar.has('portcullis_rt'), 'with the access and refresh cookies')
  t.notOk(
    [...alice.jar.keys()].some((k) => k.startsWith('portcullis_oidc_')),
    'the flow cookie is cleared',
  )

  const me = await json(await alice(`${origin}/auth/me`))
  t.match(me, { subject: 'alice', claims: { email: 'alice@example.com', name: 'Alice' } })
  t.same([...(me['roles'] as string[])].sort(), ['ops', 'staff', 'user'], 'roles from the groups claim and the defaults')
  const authTime = me['authTime'] as string
  t.ok(Math.abs(Date.parse(authTime) - gw.clock.now) < 1000, 'auth_time is the sign-in')

  const sessions = (await json(await alice(`${origin}/auth/sessions`)))['sessions'] as Record<string, unknown>[]
  t.match(sessions, [{ provider: 'corp', current: true }], 'the session list names the provider')

  const proxied = await alice(`${origin}/api/hello`)
  t.equal(proxied.status, 200)
  t.equal(upstream.last().headers['x-user-id'], 'alice', 'the upstream sees the user')
  t.notOk(String(upstream.last().headers.cookie ?? '').includes('portcullis'), 'and none of the gateway cookies')

  gw.clock.now += 60_000
  t.equal((await alice(`${origin}/auth/refresh`, { method: 'POST' })).status, 200, 'the session refreshes')
  t.equal((await json(await alice(`${origin}/auth/me`)))['authTime'], authTime, 'a refresh keeps auth_time')

  const logs = gw.logText()
  t.notOk(logs.includes(CLIENT_SECRET), 'the client secret is never logged')
  t.notOk(logs.includes(new URL(callbackUrl).searchParams.get('code')!), 'nor the code')
  t.notOk(logs.includes(alice.jar.get('portcullis_rt')!.split('.')[1]!), 'nor the refresh secret')
})

t.test('a callback works once, and only in the browser that started it', async (t) => {
  const setup = await oidcSetup(t)
  const { origin } = setup
  const alice = browser()
  const start = await alice(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' })
  const { callbackUrl } = await signInAtProvider(start.headers.get('location')!, 'alice')

  const mallory = browser()
  const foreign = await mallory(callbackUrl, { redirect: 'manual' })
  t.equal(foreign.status, 400, 'another browser is refused')
  t.match(await json(foreign), { code: 'invalid_request', detail: /not started in this browser/ })
  t.notOk(mallory.jar.has('portcullis_at'), 'and gets no session')

  const own = await alice(callbackUrl, { redirect: 'manual' })
  t.equal(own.status, 302, 'the browser that started it still can')

  // The flow cookie is gone now; put it back as a replaying attacker holding it would.
  const state = new URL(callbackUrl).searchParams.get('state')!
  const replay = await fetch(callbackUrl, { redirect: 'manual', headers: { cookie: `portcullis_oidc_${state.slice(0, 12)}=${state}` } })
  t.equal(replay.status, 400, 'a replayed callback is refused')
  t.match(await json(replay), { detail: /expired or was already used/ })

  const forged = 'A'.repeat(43)
  const made = await fetch(`${origin}/auth/oidc/corp/callback?code=x&state=${forged}`, {
    headers: { cookie: `portcullis_oidc_${forged.slice(0, 12)}=${forged}` },
  })
  t.equal(made.status, 400, 'a forged state with its own cookie is refused')
  for (const bad of ['', '?state=short', '?state=%00', `?state=${'A'.repeat(43)}&state=${'B'.repeat(43)}`]) {
    const r = await fetch(`${origin}/auth/oidc/corp/callback${bad}`)
    t.equal(r.status, 400, `callback${bad || ' with nothing'}: 400`)
  }
  t.equal((await fetch(`${origin}/auth/oidc/nope/start`)).status, 404, 'an unknown provider name is 404')
  t.equal((await fetch(`${origin}/auth/oidc/nope/callback`)).status, 404)
})

t.test("the provider's error answer and a foreign return path create nothing", async (t) => {
  const setup = await oidcSetup(t)
  const { origin } = setup
  const alice = browser()
  const start = await alice(`${origin}/auth/oidc/corp/start?return=//evil.example/x`, { redirect: 'manual' })
  const state = new URL(start.headers.get('location')!).searchParams.get('state')!
  const refused = await alice(`${origin}/auth/oidc/corp/callback?error=access_denied&error_description=%3Cscript%3E&state=${state}`, {
    redirect: 'manual',
  })
  t.equal(refused.status, 400)
  const body = await json(refused)
  t.match(body, { code: 'invalid_request', detail: 'the provider did not sign you in (access_denied)' }, "the provider's code, not its free text")
  t.notOk(alice.jar.has('portcullis_at'), 'no session')

  const again = await signIn(setup, alice, 'alice', '//evil.example/x')
  t.equal(again.callback.headers.get('location'), '/', 'a return path off this origin becomes /')
})

t.test('a browser sees a failed sign-in on the sign-in page, which offers the provider', async (t) => {
  const { origin } = await oidcSetup(t)
  const page = await fetch(`${origin}/auth/signin?return=/api/x`)
  const html = await page.text()
  t.match(html, '<a href="/auth/oidc/corp/start?return=%2Fapi%2Fx">Sign in with Corp SSO</a>', 'a link per provider')
  t.notMatch(html, '<form id="form"', 'no password form without a password source')

  // undici's request, not fetch: fetch() sends its own Sec-Fetch-Mode (cors), as a page's fetch would.
  const navigation = { accept: 'text/html', 'sec-fetch-mode': 'navigate' }
  const failed = await request(`${origin}/auth/oidc/corp/callback?code=x&state=${'A'.repeat(43)}`, { headers: navigation })
  t.equal(failed.statusCode, 400)
  t.match(failed.headers['content-type'], /^text\/html/)
  const shown = await failed.body.text()
  t.match(shown, /<p id="problem" role="alert">this sign-in was not started in this browser; start again<\/p>/)
  t.match(shown, 'Sign in with Corp SSO', 'with the way to start again')
  t.match(failed.headers['content-security-policy'], /default-src 'none'/)
  const api = await fetch(`${origin}/auth/oidc/corp/callback?code=x&state=${'A'.repeat(43)}`, { headers: { accept: 'text/html' } })
  t.match(api.headers.get('content-type'), /^application\/problem\+json/, "a page's fetch gets JSON")
})

t.test('when the provider ends its session, the gateway sessions made from it end', async (t) => {
  const setup = await oidcSetup(t)
  const { origin, provider } = setup
  const alice = browser()
  const first = await signIn(setup, alice, 'alice')
  t.equal(first.callback.status, 302)
  const bob = browser()
  await signIn(setup, bob, 'bob')
  const access = alice.jar.get('portcullis_at')!
  const refresh = alice.jar.get('portcullis_rt')!

  const { backchannel } = await logoutAtProvider(provider.issuer, first.providerCookies)
  t.match(backchannel, [{ status: 200, sub: 'alice', aud: 'portcullis' }], 'the gateway accepted the logout token')
  const me = await fetch(`${origin}/auth/me`, { headers: { authorization: `Bearer ${access}` } })
  t.equal(me.status, 401, "alice's access token is refused at once")
  t.match(await json(me), { code: 'token_revoked' })
  const refreshed = await fetch(`${origin}/auth/refresh`, { method: 'POST', headers: { cookie: `portcullis_rt=${refresh}` } })
  t.equal(refreshed.status, 401, 'her refresh token is dead')
  t.equal((await bob(`${origin}/auth/me`)).status, 200, "bob's session lives on")
  t.ok(
    setup.gw.logs().some((l) => l['msg'] === 'provider logout' && l['sessions'] === 1),
    'the logout is logged with what it ended',
  )
})

t.test('signing out through the gateway also signs out at the provider', async (t) => {
  const setup = await oidcSetup(t)
  const { origin, provider } = setup
  const alice = browser()
  await signIn(setup, alice, 'alice')
  const access = alice.jar.get('portcullis_at')!
  const crossSite = await alice(`${origin}/auth/oidc/corp/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin: 'https://evil.example' },
  })
  t.equal(crossSite.status, 403, 'a cross-site form is refused')
  const out = await alice(`${origin}/auth/oidc/corp/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
  })
  t.equal(out.status, 303)
  const next = new URL(out.headers.get('location')!)
  t.equal(`${next.origin}${next.pathname}`, `${provider.issuer}/session/end`, "to the provider's end_session_endpoint")
  t.match(Object.fromEntries(next.searchParams), { client_id: 'portcullis', post_logout_redirect_uri: `${origin}/auth/signin` })
  t.notOk(alice.jar.has('portcullis_at'), 'the cookies are cleared')
  const me = await fetch(`${origin}/auth/me`, { headers: { authorization: `Bearer ${access}` } })
  t.equal(me.status, 401, 'the session has ended')
})

t.test('requireClaims admits only the accounts it names, and the refusal counts as a sign-in attempt', async (t) => {
  const setup = await oidcSetup(t, { source: 'requireClaims: { groups: [ops, admins] }, authorizationParams: { prompt: login }' })
  const alice = browser()
  const admitted = await signIn(setup, alice, 'alice')
  t.equal(admitted.callback.status, 302, 'alice is in ops')
  t.equal(admitted.authorizeUrl.searchParams.get('prompt'), 'login', 'authorizationParams reach the provider')
  const bob = browser()
  const refused = await signIn(setup, bob, 'bob')
  t.equal(refused.callback.status, 403, 'bob is not')
  t.match(await json(refused.callback), { code: 'forbidden' })
  t.notOk(bob.jar.has('portcullis_at'), 'and gets no session')
  const metrics = await (await fetch(`${setup.origin}/metrics`)).text()
  t.match(metrics, /portcullis_logins_total\{result="ok"\} 1\n/)
  t.match(metrics, /portcullis_logins_total\{result="forbidden"\} 1\n/)
})

t.test('a route wanting a recent sign-in makes the provider ask again, and auth_time is the provider’s', async (t) => {
  const setup = await oidcSetup(t)
  const { origin } = setup
  const page = await (await fetch(`${origin}/auth/signin?return=/api/pay&max_age=900`)).text()
  t.match(page, '<a href="/auth/oidc/corp/start?return=%2Fapi%2Fpay&amp;max_age=900">', 'the sign-in page passes max_age on')
  const alice = browser()
  // The gateway's clock is injected and stands still; the provider's runs. A provider's
  // auth_time is taken when it is in the past of the gateway's clock.
  setup.gw.clock.now = Date.now() + 60_000
  const first = await signIn(setup, alice, 'alice')
  const before = (await json(await alice(`${origin}/auth/me`)))['authTime'] as string
  // Without max_age, oidc-provider sends no auth_time: the gateway session's own start stands in.
  t.equal(Date.parse(before), Math.floor(setup.gw.clock.now / 1000) * 1000, 'no auth_time from the provider: the sign-in time')
  const start = await alice(`${origin}/auth/oidc/corp/start?return=/api/pay&max_age=900`, { redirect: 'manual' })
  const authorize = new URL(start.headers.get('location')!)
  t.equal(authorize.searchParams.get('prompt'), 'login', 'prompt=login: the provider must ask, not answer from its session')
  t.equal(authorize.searchParams.get('max_age'), '900')
  await new Promise((r) => setTimeout(r, 1100)) // the provider's own clock: auth_time has whole seconds
  setup.gw.clock.now = Date.now() + 60_000
  const { callbackUrl } = await signInAtProvider(authorize.href, 'alice', { jar: first.providerCookies })
  const back = await alice(callbackUrl, { redirect: 'manual' })
  t.equal(back.status, 302)
  const after = (await json(await alice(`${origin}/auth/me`)))['authTime'] as string
  t.ok(Math.abs(Date.parse(after) - Date.now()) < 5_000, `the provider's auth_time (${after}), when it really asked`)
  t.not(after, before)
})
