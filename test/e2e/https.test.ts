/**
 * Real Chromium against the shipped demo served over HTTPS by the gateway itself (server.tls),
 * on a name that is not localhost: browsers keep Secure (and so `__Host-`) cookies on other
 * names only over https, which is what server.tls is for. Chromium trusts the test CA the
 * way a Linux desktop does, from an NSS database in its user's home (~/.pki/nssdb, made with
 * Debian's certutil), with no flag that weakens certificate checking.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { promisify } from 'node:util'
import { chromium, type Browser } from 'playwright-core'
import t, { type Test } from 'tap'
import { startGateway } from '../../src/main.js'
import { makeCa } from '../helpers/tls.js'
import { ACCESS_COOKIE, CHROMIUM, REFRESH_COOKIE, SHIPPED_CONFIG, freePort, signedInDemo } from './harness.js'

const run = promisify(execFile)
const HOST = 'portcullis.test'

/** A home directory whose NSS database trusts `caFile` to identify web sites (trust "C,,"). */
async function homeTrusting(dir: string, caFile: string | null): Promise<string> {
  const nssdb = join(dir, '.pki', 'nssdb')
  await mkdir(nssdb, { recursive: true })
  await run('certutil', ['-N', '-d', `sql:${nssdb}`, '--empty-password'])
  if (caFile !== null) await run('certutil', ['-A', '-d', `sql:${nssdb}`, '-n', 'Portcullis Test CA', '-t', 'C,,', '-i', caFile])
  return dir
}

/** Chromium as test/e2e/harness.ts launches it, with `home` as its user's home and portcullis.test resolving to loopback. */
async function chromiumAt(t: Test, home: string): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    env: { ...process.env, HOME: home },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Name resolution only: the certificate is checked as for any site.
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

const dir = t.testdir({})
const ca = await makeCa(dir)
const pair = await ca.issue('server')
// The shipped demo, with HTTPS on: what `npm start` runs, plus two lines.
const shipped = await readFile(SHIPPED_CONFIG, 'utf8')
const config = join(dir, 'gateway.yaml')
await writeFile(config, shipped.replace(/^server:\n/m, `server:\n  tls: { certFile: ${pair.certFile}, keyFile: ${pair.keyFile} }\n`))
const gateway = await startGateway({
  configPath: config,
  env: { HOST: '127.0.0.1', PORT: '0', DEMO_UPSTREAM_PORT: String(await freePort()) },
  logDestination: new Writable({ write: (_c, _e, cb) => cb() }),
})
t.teardown(() => gateway.close())
const base = `https://${HOST}:${new URL(gateway.url).port}`

t.test('Chromium signs in over HTTP/2 on a real host name and keeps the __Host- cookie, Secure', async (t) => {
  const browser = await chromiumAt(t, await homeTrusting(t.testdir({}), ca.caFile))
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await signedInDemo(context, base)
  t.equal(new URL(page.url()).origin, base)
  t.equal(await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol'), 'h2')
  const cookies = await context.cookies(base)
  const access = cookies.find((c) => c.name === ACCESS_COOKIE)
  t.match(access, { secure: true, httpOnly: true, domain: HOST, path: '/' }, 'the browser kept the __Host- access cookie')
  const refresh = (await context.cookies(`${base}/auth/refresh`)).find((c) => c.name === REFRESH_COOKIE)
  t.match(refresh, { secure: true, httpOnly: true })

  await page.getByRole('button', { name: 'Call GET /api/echo/hello' }).click()
  await page.locator('#api-result[data-status="200"]').waitFor()
  t.match(await page.locator('#api-result').textContent(), /"user": "alice"/, 'the API call went through with the cookie')
  // A cookie-authenticated POST from the page carries Origin https://portcullis.test:<port>,
  // which the gateway's CSRF check must take for its own origin (request.protocol is https).
  const status = await page.evaluate(async () => (await fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' })).status)
  t.equal(status, 200, 'the refresh POST passed the CSRF check')
})

t.test('without the test CA in its database, the same Chromium refuses the site', async (t) => {
  const browser = await chromiumAt(t, await homeTrusting(t.testdir({}), null))
  const page = await browser.newPage()
  await t.rejects(page.goto(`${base}/app/`), /ERR_CERT_AUTHORITY_INVALID/)
})
