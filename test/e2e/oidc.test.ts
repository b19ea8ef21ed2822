/**
 * Headless Chromium signing in through a real OpenID Provider (oidc-provider, its own login and
 * consent pages) to a fleet of two real gateway instances sharing one redis-server: the page
 * asked for, an API call from it, the session list, then the provider ending its session (both
 * instances refuse the tokens), and signing out through the gateway's RP-initiated logout form.
 */
import type { BrowserContext, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { send } from '../helpers/http.js'
import { startOidcFleet, type OidcInstance } from '../helpers/oidc-fleet.js'
import { ACCESS_COOKIE, REFRESH_COOKIE, launchChromium } from './harness.js'

/** The protected page: who the gateway says is asking, and a sign-out form as a web app would have. */
const APP_PAGE = (user: string, roles: string) => `<!doctype html><title>app</title>
<p id="who">${user}</p><p id="roles">${roles}</p>
<form method="post" action="/auth/oidc/corp/logout"><button type="submit">Sign out</button></form>`

const browser = await launchChromium(t)
const fleet = await startOidcFleet(t, {
  host: 'localhost',
  upstream: (upstream) =>
    upstream.handle((req, res) => {
      const user = String(req.headers['x-user-id'] ?? '')
      const roles = String(req.headers['x-user-roles'] ?? '')
      if (req.url?.startsWith('/app')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(APP_PAGE(user.replace(/[<&]/g, ''), roles.replace(/[<&]/g, '')))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ user, roles, session: req.headers['x-session-id'] }))
    }),
})
const { a, b, provider } = fleet

/** A fresh browser whose requests never leave loopback (the provider's pages import a web font). */
async function newContext(t: Test): Promise<{ context: BrowserContext; foreign: string[] }> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const foreign: string[] = []
  await context.route(
    (url) => url.hostname !== 'localhost' && url.hostname !== '127.0.0.1',
    (route) => {
      foreign.push(route.request().url())
      return route.abort()
    },
  )
  return { context, foreign }
}

/** From a protected page on `on` through the sign-in page and the provider's own pages, back to that page. */
async function signIn(page: Page, on: OidcInstance, login: string): Promise<void> {
  await page.goto(`${on.origin}/app/`)
  await page.waitForURL((url) => url.pathname === '/auth/signin')
  await page.getByRole('link', { name: 'Sign in with Corp SSO' }).click()
  await page.waitForURL((url) => url.origin === provider.issuer)
  await page.locator('input[name="login"]').fill(login)
  await page.locator('input[name="password"]').fill('any password')
  await page.getByRole('button', { name: 'Sign-in' }).click()
  await page.getByRole('button', { name: 'Continue' }).click()
  await page.waitForURL(`${on.origin}/app/`)
}

/** fetch() from the page, as its own script would call the API. */
const fetchFromPage = (page: Page, path: string) =>
  page.evaluate(async (path) => {
    const r = await fetch(path)
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  }, path)

t.test('a user signs in at the provider, uses the fleet, and the provider signing her out ends it everywhere', async (t) => {
  const { context, foreign } = await newContext(t)
  const page = await context.newPage()
  await signIn(page, a, 'alice')
  t.equal(await page.locator('#who').innerText(), 'alice', 'back on the page asked for, signed in: the upstream sees alice')
  t.same((await page.locator('#roles').innerText()).split(',').sort(), ['ops', 'staff', 'user'], 'with her groups and the default role')

  const call = await fetchFromPage(page, '/api/hello')
  t.match(call, { status: 200, body: { user: 'alice' } }, 'the page calls an API through the gateway')
  const listed = await fetchFromPage(page, '/auth/sessions')
  t.match(listed, { status: 200, body: { sessions: [{ provider: 'corp', current: true }] } }, 'the session list names the provider')

  // Cookies are per host, not per port: the same browser on B carries the same session.
  const onB = await context.newPage()
  await onB.goto(`${b.origin}/app/`)
  t.equal(await onB.locator('#who').innerText(), 'alice', 'B serves her straight away')
  t.match(await fetchFromPage(onB, '/api/hello'), { status: 200, body: { user: 'alice', session: call.body['session'] } }, 'in the same session')

  const cookies = await context.cookies(`${a.origin}/auth/refresh`)
  const access = cookies.find((c) => c.name === ACCESS_COOKIE)?.value ?? ''
  const refresh = cookies.find((c) => c.name === REFRESH_COOKIE)?.value ?? ''
  t.ok(access && refresh, 'the browser holds the access and refresh cookies')

  // The user signs out at the provider, on its own page; the provider tells A (back-channel).
  const atProvider = await context.newPage()
  await atProvider.goto(`${provider.issuer}/session/end`)
  await atProvider.getByRole('button', { name: 'Yes, sign me out' }).click()
  const logout = await provider.waitForBackchannel((d) => d.sub === 'alice')
  t.equal(logout.status, 200, 'the provider delivered a logout token that the fleet accepted')
  t.equal(fleet.backchannel.deliveries.at(-1)?.to, 'a', 'through A')

  for (const on of [a, b]) {
    const api = await send(on.origin, '/api/hello', { headers: { cookie: `${ACCESS_COOKIE}=${access}` } })
    t.equal(api.status, 401, `the access token is refused on ${on.name}`)
    t.equal(api.json()['code'], 'token_revoked', 'as revoked')
    const renewed = await send(on.origin, '/auth/refresh', { method: 'POST', headers: { cookie: `${REFRESH_COOKIE}=${refresh}`, origin: on.origin } })
    t.equal(renewed.status, 401, `the refresh token is dead on ${on.name}`)
    t.equal(renewed.json()['code'], 'invalid_refresh_token', 'as invalid')
  }
  t.match(await fetchFromPage(onB, '/api/hello'), { status: 401 }, "the page's own API call on B is refused")
  await onB.goto(`${b.origin}/app/`)
  await onB.waitForURL((url) => url.pathname === '/auth/signin')
  t.pass('and opening the page on B leads to the sign-in page')
  t.ok(
    foreign.every((url) => new URL(url).hostname === 'fonts.googleapis.com'),
    "nothing but the web font of the provider's pages tried to leave loopback",
  )
})

t.test("the gateway's sign-out form ends the session, signs out at the provider, and lands on the sign-in page", async (t) => {
  const { context } = await newContext(t)
  const page = await context.newPage()
  await signIn(page, b, 'bob')
  t.equal(await page.locator('#who').innerText(), 'bob', 'bob is signed in on B')
  const access = (await context.cookies(b.origin)).find((c) => c.name === ACCESS_COOKIE)?.value ?? ''

  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForURL((url) => url.origin === provider.issuer)
  await page.getByRole('button', { name: 'Yes, sign me out' }).click()
  await page.waitForURL((url) => url.origin === b.origin && url.pathname === '/auth/signin')
  t.pass("back on B's sign-in page")
  const echo = await provider.waitForBackchannel((d) => d.sub === 'bob')
  t.equal(echo.status, 200, "the provider's logout token for the session already ended is answered 200 (nothing left to end)")
  t.notOk(
    (await context.cookies(b.origin)).some((c) => c.name.includes('portcullis')),
    'with no gateway cookie left',
  )
  for (const on of [a, b]) {
    const api = await send(on.origin, '/api/hello', { headers: { cookie: `${ACCESS_COOKIE}=${access}` } })
    t.equal(api.status, 401, `the old access token is refused on ${on.name}`)
  }

  // Signed out at the provider too: starting again asks for the password.
  await page.getByRole('link', { name: 'Sign in with Corp SSO' }).click()
  await page.waitForURL((url) => url.origin === provider.issuer)
  await page.locator('input[name="login"]').waitFor()
  t.pass('the provider asks who is signing in')
})
