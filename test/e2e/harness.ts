/**
 * Browser tests: Debian's chromium driven by playwright-core, against the real gateway started
 * by src/main.ts with the shipped gateway.yaml (demo echo upstream, demo app, sign-in page).
 *
 * The browser visits http://localhost:<port>: localhost is a secure context, so the shipped
 * `cookies.secure: true` (and the `__Host-` cookie prefix) work over plain http, as in the demo.
 */
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { startGateway, type RunningGateway } from '../../src/main.js'

export const CHROMIUM = '/usr/bin/chromium'
export const SHIPPED_CONFIG = fileURLToPath(new URL('../../gateway.yaml', import.meta.url))
/** The shipped demo user (gateway.yaml). */
export const ALICE = { username: 'alice', password: 'wonderland' }
export const ACCESS_COOKIE = '__Host-portcullis_at'
export const REFRESH_COOKIE = '__Secure-portcullis_rt'

/**
 * Chromium with a fresh profile (playwright makes a temporary user data dir per launch). The
 * network is closed here: these flags stop Chromium's own background calls to Google services.
 * A missing browser fails the test: a browser test that quietly skips proves nothing.
 */
export async function launchChromium(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install chromium; npm test installs it when it can)`)
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

/** A port free right now (for the demo upstream, whose port the config must name). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export interface DemoGateway {
  /** http://localhost:<port> */
  url: string
  gateway: RunningGateway
  clock: { now: number }
  logs(): Record<string, unknown>[]
}

/** The gateway of `npm start`, on free ports, with an injected clock. */
export async function startDemoGateway(t: Test): Promise<DemoGateway> {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const clock = { now: Date.now() }
  const gateway = await startGateway({
    configPath: SHIPPED_CONFIG,
    env: { HOST: '127.0.0.1', PORT: '0', DEMO_UPSTREAM_PORT: String(await freePort()) },
    logDestination: sink,
    now: () => clock.now,
  })
  t.teardown(() => gateway.close())
  return {
    url: gateway.url.replace('127.0.0.1', 'localhost'),
    gateway,
    clock,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

/** Opens `path`, expects the sign-in page, signs in as `who`; resolves once back on `path`. */
export async function signIn(page: Page, base: string, path = '/app/', who = ALICE): Promise<void> {
  await page.goto(base + path)
  await page.waitForURL((url) => url.pathname === '/auth/signin')
  await page.getByLabel('Username').fill(who.username)
  await page.getByLabel('Password').fill(who.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(base + path)
}

/** A signed-in demo page, ready (who you are and the sessions shown). */
export async function signedInDemo(context: BrowserContext, base: string): Promise<Page> {
  const page = await context.newPage()
  await signIn(page, base)
  await page.locator('#status', { hasText: 'Signed in.' }).waitFor()
  return page
}

/** Counts the refresh calls a browser context makes. */
export function countRefreshes(context: BrowserContext): { readonly count: number } {
  const counter = { count: 0 }
  context.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/auth/refresh') counter.count++
  })
  return counter
}
