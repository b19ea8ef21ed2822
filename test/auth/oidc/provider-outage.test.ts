/**
 * The provider stops answering (SIGSTOP on a real oidc-provider process: connections are
 * accepted, never answered): sign-in through it fails fast with 503 identity_unavailable within
 * the source's `timeout`, everything else the gateway does goes on, and sign-in works again
 * once the provider is back.
 */
import t, { type Test } from 'tap'
import { hashPassword } from '../../../src/auth/passwords.js'
import { signInAtProvider, startOidcProvider } from '../../helpers/oidc-provider.js'
import { freePort } from '../../helpers/redis-process.js'
import { browser, CLIENT_SECRET, oidcSetup, signIn } from './setup.js'

const TIMEOUT_MS = 1000
const json = async (r: Response) => (await r.json()) as Record<string, unknown>

/** How long `call` took, with its answer. */
async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; answer: T }> {
  const started = performance.now()
  const answer = await call()
  return { ms: performance.now() - started, answer }
}

/** A provider registered for a gateway on `port`, started before that gateway (oidcSetup's own needs the gateway to start with it). */
function providerFor(t: Test, port: number) {
  const origin = `http://127.0.0.1:${port}`
  return startOidcProvider(t, {
    clients: [
      {
        client_id: 'portcullis',
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${origin}/auth/oidc/corp/callback`],
        post_logout_redirect_uris: [`${origin}/auth/signin`],
      },
    ],
    accounts: { alice: { email: 'alice@example.com', name: 'Alice', groups: ['staff'] } },
  })
}

t.test('a gateway that has never reached its provider answers sign-ins with 503 in time and serves everyone else', async (t) => {
  const port = await freePort()
  const provider = await providerFor(t, port)
  provider.pause()
  t.teardown(() => provider.resume())
  const setup = await oidcSetup(t, {
    port,
    provider,
    source: `timeout: ${TIMEOUT_MS}ms`,
    gateway: `    - { type: static, users: [{ username: pat, passwordHash: "${await hashPassword('pw')}" }] }`,
  })
  const { gw, origin } = setup

  const first = await timed(() => fetch(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' }))
  t.equal(first.answer.status, 503, '/start: 503')
  t.match(await json(first.answer), { code: 'identity_unavailable' })
  t.ok(first.ms < TIMEOUT_MS + 1000, `within about the timeout (${Math.round(first.ms)} ms)`)
  const remembered = await timed(() => fetch(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' }))
  t.equal(remembered.answer.status, 503)
  t.ok(remembered.ms < TIMEOUT_MS / 2, `a failure is remembered: the next start answers at once (${Math.round(remembered.ms)} ms)`)
  gw.clock.now += 6000
  const retried = await timed(() => fetch(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' }))
  t.equal(retried.answer.status, 503, 'some seconds on, a new attempt')
  t.ok(
    retried.ms >= TIMEOUT_MS - 100 && retried.ms < TIMEOUT_MS + 1000,
    `waits the timeout for the provider, no longer (${Math.round(retried.ms)} ms)`,
  )

  const pat = browser()
  const login = await pat(`${origin}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'pat', password: 'pw' }),
  })
  t.equal(login.status, 200, 'a password user signs in meanwhile')
  t.equal((await pat(`${origin}/api/hello`)).status, 200, 'is proxied')
  gw.clock.now += 60_000
  t.equal((await pat(`${origin}/auth/refresh`, { method: 'POST' })).status, 200, 'and refreshes')

  const failures = gw.logs().filter((l) => l['msg'] === 'oidc discovery failed')
  t.ok(failures.length >= 2, `the failed discoveries are logged (${failures.length})`)
  t.match(failures[0], { level: 40, provider: 'corp', issuer: provider.issuer, reason: String })
  t.notOk(gw.logText().includes(CLIENT_SECRET), 'without the client secret')

  provider.resume()
  gw.clock.now += 6000
  const alice = browser()
  const back = await signIn(setup, alice, 'alice')
  t.equal(back.callback.status, 302, 'once the provider answers, sign-in works')
  t.ok(alice.jar.has('portcullis_at'))
})

t.test('with discovery kept, a provider that stops answering fails the callback with 503 in time; sign-in works again after', async (t) => {
  const setup = await oidcSetup(t, { source: `timeout: ${TIMEOUT_MS}ms` })
  const { gw, origin, provider } = setup
  t.teardown(() => provider.resume())
  const alice = browser()
  const start = await alice(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' })
  t.equal(start.status, 302)
  const { callbackUrl } = await signInAtProvider(start.headers.get('location')!, 'alice')

  provider.pause()
  const whileAway = await timed(() => browser()(`${origin}/auth/oidc/corp/start`, { redirect: 'manual' }))
  t.equal(whileAway.answer.status, 302, 'a kept discovery still starts sign-ins: /start does not call the provider')
  t.ok(whileAway.ms < TIMEOUT_MS / 2, `at once (${Math.round(whileAway.ms)} ms)`)
  const callback = await timed(() => alice(callbackUrl, { redirect: 'manual' }))
  t.equal(callback.answer.status, 503, 'the code exchange times out: 503')
  t.match(await json(callback.answer), { code: 'identity_unavailable' })
  t.ok(callback.ms >= TIMEOUT_MS - 100 && callback.ms < TIMEOUT_MS + 1000, `after the timeout, not later (${Math.round(callback.ms)} ms)`)
  t.notOk(alice.jar.has('portcullis_at'), 'no session')

  provider.resume()
  const again = await signIn(setup, alice, 'alice')
  t.equal(again.callback.status, 302, 'the provider back, sign-in works')
  t.ok(alice.jar.has('portcullis_at'))
  const logs = gw.logText()
  t.notOk(logs.includes(CLIENT_SECRET), 'the client secret is not logged')
  t.notOk(logs.includes(new URL(callbackUrl).searchParams.get('code')!), 'nor the code')
})
