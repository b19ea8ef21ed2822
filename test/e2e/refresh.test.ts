/**
 * Headless Chromium: access tokens that expire under a page are refreshed by the fetch helper
 * without the page noticing, in one tab and in two tabs at the same moment.
 * Time is the gateway's injected clock: the shipped accessTokenTtl (10m) passes instantly.
 */
import t from 'tap'
import { ACCESS_COOKIE, countRefreshes, launchChromium, signedInDemo, startDemoGateway } from './harness.js'

const browser = await launchChromium(t)
const demo = await startDemoGateway(t)
/** Past the shipped accessTokenTtl (10m) and clockTolerance (30s). */
const PAST_EXPIRY = 11 * 60_000

const accessCookie = async (context: import('playwright-core').BrowserContext) =>
  (await context.cookies(demo.url)).find((c) => c.name === ACCESS_COOKIE)?.value

t.test('an access token that expires is refreshed transparently by the fetch helper', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  const refreshes = countRefreshes(context)
  const before = await accessCookie(context)
  demo.clock.now += PAST_EXPIRY
  const expired = page.waitForResponse((r) => r.url().endsWith('/api/echo/hello') && r.status() === 401)
  await page.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  t.match(await (await expired).json(), { code: 'token_expired' }, 'the first try met an expired token')
  await page.locator('#api-result[data-status="200"]').waitFor()
  t.equal(refreshes.count, 1)
  t.not(await accessCookie(context), before, 'the browser holds a new access cookie')
  t.equal(await page.locator('#ended').isHidden(), true, 'still signed in')
})

t.test('an access cookie the browser has dropped (missing_token) is refreshed the same way', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, demo.url)
  const refreshes = countRefreshes(context)
  await context.clearCookies({ name: ACCESS_COOKIE })
  await page.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await page.locator('#api-result[data-status="200"]').waitFor()
  t.equal(refreshes.count, 1)
})

t.test('two tabs whose tokens expire together both refresh at the same moment and stay signed in', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const first = await signedInDemo(context, demo.url)
  const second = await context.newPage()
  await second.goto(`${demo.url}/app/`)
  await second.locator('#status', { hasText: 'Signed in.' }).waitFor()
  const refreshes = countRefreshes(context)
  let expired = 0
  let bothExpired!: () => void
  const both = new Promise<void>((resolve) => (bothExpired = resolve))
  context.on('response', (r) => {
    if (r.url().endsWith('/api/echo/hello') && r.status() === 401 && ++expired === 2) bothExpired()
  })
  // Refreshes are held until both tabs have met the expired token (at most 3 s), so a fast tab
  // cannot refresh before the slow one has even asked: both really refresh at the same moment.
  await context.route('**/auth/refresh', async (route) => {
    await Promise.race([both, new Promise((r) => setTimeout(r, 3000))])
    await route.continue()
  })
  demo.clock.now += PAST_EXPIRY

  // Both clicks are dispatched before either tab hears back from the gateway.
  // (Evaluated in the page, given as source text: this project's TypeScript has no DOM types.)
  const click = "document.getElementById('call-api').click()"
  await Promise.all([first.evaluate(click), second.evaluate(click)])
  await Promise.all([first, second].map((p) => p.locator('#api-result[data-status="200"]').waitFor()))
  t.equal(expired, 2, 'both tabs met the expired token')
  // One refresh when Web Locks coordinate the tabs (what Chromium does); two would still be
  // safe, as the gateway gives concurrent refreshes the same successor token.
  t.ok(refreshes.count >= 1 && refreshes.count <= 2, `the tabs refreshed ${refreshes.count} time(s)`)
  t.comment(`refresh calls for two tabs at once: ${refreshes.count}`)

  // Both tabs go on working without any further refresh, and the session was not taken for stolen.
  const after = refreshes.count
  await Promise.all([first, second].map((p) => p.evaluate("document.getElementById('api-result').removeAttribute('data-status')")))
  await Promise.all([first.evaluate(click), second.evaluate(click)])
  await Promise.all([first, second].map((p) => p.locator('#api-result[data-status="200"]').waitFor()))
  t.equal(refreshes.count, after)
  t.notOk(
    demo.logs().some((l) => String(l['msg']).includes('refresh token reuse')),
    'no reuse was detected',
  )
  t.equal(await first.locator('#ended').isHidden(), true)
  t.equal(await second.locator('#ended').isHidden(), true)
})
