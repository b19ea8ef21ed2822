/**
 * Headless Chromium: ending sessions from the demo page reaches other browsers, and a page on
 * another origin cannot use the session (no CORS grant; unsafe requests refused as CSRF).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { launchChromium, signedInDemo, startDemoGateway } from './harness.js'

const browser = await launchChromium(t)
const demo = await startDemoGateway(t)

t.test('"log out everywhere" in one browser ends the session of another at its next call', async (t) => {
  const laptop = await browser.newContext()
  const phone = await browser.newContext()
  t.teardown(() => Promise.all([laptop.close(), phone.close()]))
  const here = await signedInDemo(laptop, demo.url)
  const there = await signedInDemo(phone, demo.url)

  await here.getByRole('button', { name: 'Log out everywhere' }).click()
  await here.locator('#ended-message', { hasText: 'You are signed out everywhere.' }).waitFor()

  await there.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await there.locator('#ended-message', { hasText: 'Your session has ended.' }).waitFor()
  t.equal(await there.locator('#api-result').getAttribute('data-status'), '401', 'the call was refused')
  t.equal(await there.locator('#app').isHidden(), true, 'the page shows the way back in instead')
  t.same(
    (await phone.cookies(demo.url + '/auth/')).map((c) => c.name),
    [],
    'the refusal cleared its cookies',
  )

  await there.getByRole('link', { name: 'Sign in again' }).click()
  await there.locator('#form').waitFor({ state: 'visible' })
  t.equal(new URL(there.url()).searchParams.get('return'), '/app/', 'signing in again returns to the demo')
})

t.test('ending another session from the list signs that browser out', async (t) => {
  const laptop = await browser.newContext()
  const phone = await browser.newContext()
  t.teardown(() => Promise.all([laptop.close(), phone.close()]))
  const there = await signedInDemo(phone, demo.url)
  const theirs = await there.locator('#session').innerText()
  const here = await signedInDemo(laptop, demo.url)

  await here.locator(`#sessions-body tr[data-id="${theirs}"] button`).click()
  await here.locator('#status', { hasText: 'Session ended.' }).waitFor()
  t.equal(await here.locator(`#sessions-body tr[data-id="${theirs}"]`).count(), 0, 'gone from the list')

  await there.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await there.locator('#ended-message', { hasText: 'Your session has ended.' }).waitFor()
})

t.test('a page on another origin cannot use the session', async (t) => {
  // Another port of localhost: another origin but the same site, so SameSite=Lax cookies do
  // ride along on its requests. The gateway's CSRF check must be what stops it.
  const evil = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<!doctype html><title>elsewhere</title><p>another origin</p>')
  })
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => evil.close(resolve)))
  const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`

  const context = await browser.newContext()
  t.teardown(() => context.close())
  const own = await signedInDemo(context, demo.url)
  const page = await context.newPage()
  await page.goto(evilUrl)
  // What really went over the wire, which the page itself is not allowed to see: Chromium's
  // DevTools protocol reports responses that CORS then hides from the page.
  // (The events of one request may come in any order.)
  const wire = new Map<string, { key?: string; status?: number; cookie?: string; acao?: string }>()
  const entry = (id: string) => wire.get(id) ?? wire.set(id, {}).get(id)!
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.request.url.startsWith(demo.url)) entry(e.requestId).key = `${e.request.method} ${new URL(e.request.url).pathname}`
  })
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    entry(e.requestId).cookie = String(e.headers['Cookie'] ?? e.headers['cookie'] ?? '')
  })
  cdp.on('Network.responseReceivedExtraInfo', (e) => {
    Object.assign(entry(e.requestId), { status: e.statusCode, acao: e.headers['access-control-allow-origin'] })
  })
  const onWire = (key: string) => [...wire.values()].filter((w) => w.key === key)
  const outcome = await page.evaluate(async (gw) => {
    const attempt = (path: string, init: RequestInit) =>
      fetch(gw + path, { credentials: 'include', ...init }).then(
        (r) => `answered ${r.type} ${r.status}`,
        (e: Error) => e.name,
      )
    return {
      read: await attempt('/api/echo/secret', {}),
      readMe: await attempt('/auth/me', {}),
      post: await attempt('/api/echo/transfer', { method: 'POST', mode: 'no-cors', body: 'amount=1000' }),
      logoutAll: await attempt('/auth/logout-all', { method: 'POST', mode: 'no-cors' }),
      json: await attempt('/api/echo/transfer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
    }
  }, demo.url)

  t.same(
    outcome,
    {
      read: 'TypeError',
      readMe: 'TypeError',
      post: 'answered opaque 0',
      logoutAll: 'answered opaque 0',
      json: 'TypeError',
    },
    'the page can read nothing and gets no answer to its writes',
  )
  for (const key of ['GET /api/echo/secret', 'GET /auth/me']) {
    t.match(onWire(key), [{ status: 200, acao: undefined }], `${key}: answered to the browser, without a CORS grant`)
  }
  for (const key of ['POST /api/echo/transfer', 'POST /auth/logout-all']) {
    // The session cookie rode along (same site), so only the origin check stood in the way.
    t.match(onWire(key), [{ status: 403 }], `${key}: refused`)
    t.match(onWire(key)[0]?.cookie, '__Host-portcullis_at=', `${key}: sent with the session cookie`)
  }
  // The JSON POST needs a preflight; it carries no cookie, gets a 401 and no CORS grant, so
  // the POST itself is never sent: the gateway saw one POST to /transfer, the no-cors one.
  t.match(onWire('OPTIONS /api/echo/transfer'), [{ status: 401, acao: undefined }], 'the preflight is refused')
  const posts = demo.logs().filter((l) => l['msg'] === 'request' && (l['req'] as { method: string; url: string }).url === '/api/echo/transfer')
  t.same(
    posts.map((l) => [(l['req'] as { method: string }).method, l['status']]),
    [
      ['POST', 403],
      ['OPTIONS', 401],
    ],
    'what the gateway saw',
  )

  // The session was not touched: the demo page still works.
  await own.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await own.locator('#api-result[data-status="200"]').waitFor()
})
