/**
 * Headless Chromium against the shipped demo: signing in through the gateway's page, HttpOnly
 * cookies, an API call from the page, the silent refresh, no open redirect; and the demo's
 * screenshot for docs/web.md.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import type { Page } from 'playwright-core'
import t from 'tap'
import { ACCESS_COOKIE, ALICE, REFRESH_COOKIE, launchChromium, signedInDemo, signIn, startDemoGateway } from './harness.js'

/** Uncaught errors and CSP violations: a strict policy must not break the pages it guards. */
function watchForProblems(page: Page): string[] {
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (m) => void (/Content Security Policy/i.test(m.text()) && problems.push(m.text())))
  return problems
}

const browser = await launchChromium(t)
const demo = await startDemoGateway(t)

// First, while the gateway holds only these two sessions.
t.test('the demo page, signed in with two sessions listed (screenshot for docs/web.md)', async (t) => {
  const other = await browser.newContext()
  t.teardown(() => other.close())
  await signIn(await other.newPage(), demo.url)
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } })
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  await page.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await page.locator('#api-result[data-status="200"]').waitFor()
  const rows = page.locator('#sessions-body tr')
  t.equal(await rows.count(), 2, 'both sessions are listed')
  t.equal(await page.locator('#sessions-body tr[data-current="true"]').count(), 1, 'one is marked as this browser')
  const png = await page.screenshot({ fullPage: true })
  // Only a passing run may replace the picture in the docs.
  if (t.passing()) {
    await mkdir(new URL('../../docs/img/', import.meta.url), { recursive: true })
    await writeFile(new URL('../../docs/img/demo.png', import.meta.url), png)
  }
})

t.test('a visit without a session goes through the sign-in page and back to the page asked for', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems = watchForProblems(page)
  await page.goto(`${demo.url}/app/`)
  t.equal(page.url(), `${demo.url}/auth/signin?return=%2Fapp%2F`)
  // The silent refresh fails (no refresh cookie yet), so the form appears, ready to type in.
  await page.locator('#form').waitFor({ state: 'visible' })
  t.equal(await page.evaluate('document.activeElement?.id'), 'username', 'the username field has the focus')

  await page.getByLabel('Username').fill(ALICE.username)
  await page.getByLabel('Password').fill('not-the-password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  const error = page.locator('#error')
  await error.filter({ hasText: 'Wrong username or password.' }).waitFor()
  t.equal(await error.getAttribute('aria-live'), 'assertive', 'the error is announced')
  t.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true')
  t.equal(new URL(page.url()).pathname, '/auth/signin', 'still on the sign-in page')

  await page.getByLabel('Password').fill(ALICE.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${demo.url}/app/`)
  await page.locator('#subject', { hasText: 'alice' }).waitFor()
  t.pass('back on /app/, signed in as alice')
  t.same(problems, [], 'no script error and no Content-Security-Policy violation on either page')
})

t.test('the session cookies are HttpOnly: no script on the page can read them', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  t.notMatch(await page.evaluate<string>('document.cookie'), /portcullis/)
  const cookies = await context.cookies(demo.url + '/auth/refresh')
  const access = cookies.find((c) => c.name === ACCESS_COOKIE)
  const refresh = cookies.find((c) => c.name === REFRESH_COOKIE)
  t.match(access, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/' })
  t.match(refresh, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/auth' })
  const elsewhere = await context.cookies(demo.url + '/app/')
  t.notOk(
    elsewhere.some((c) => c.name === REFRESH_COOKIE),
    'the refresh cookie travels only to /auth',
  )
})

t.test('the page calls an API through the gateway, which tells the API who is asking', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  await page.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  const result = page.locator('#api-result[data-status="200"]')
  await result.waitFor()
  const echo = JSON.parse(await result.innerText())
  t.match(echo, { service: 'echo', path: '/api/echo/hello', user: 'alice', roles: ['user'] })
  t.equal(echo.session, await page.locator('#session').innerText(), 'the session the gateway forwarded is ours')
})

t.test('with a live session, the sign-in page refreshes silently and goes straight back', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  // As when the access cookie has expired: the navigation cannot prove who it is.
  await context.clearCookies({ name: ACCESS_COOKIE })
  const visited: string[] = []
  page.on('framenavigated', (frame) => frame === page.mainFrame() && visited.push(new URL(frame.url()).pathname))
  await page.goto(`${demo.url}/app/`)
  await page.waitForURL(`${demo.url}/app/`)
  await page.locator('#status', { hasText: 'Signed in.' }).waitFor()
  t.same(visited, ['/auth/signin', '/app/'], 'through the sign-in page, without a form')
})

t.test('the sign-in page never sends the browser to another origin', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  const foreign: string[] = []
  context.on('request', (request) => {
    if (!request.url().startsWith(demo.url)) foreign.push(request.url())
  })
  for (const target of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(document.domain)', '/\t/evil.example']) {
    await page.goto(`${demo.url}/auth/signin?return=${encodeURIComponent(target)}`)
    await page.waitForURL(`${demo.url}/`)
    t.equal(page.url(), `${demo.url}/`, JSON.stringify(target))
  }
  t.same(foreign, [], 'not one request left the gateway')
})
