/**
 * POST {basePath}/oidc/:name/backchannel-logout against logout tokens a provider should never
 * send (the rogue provider signs them): each is refused with 400 and ends nothing; a valid one
 * works once across a fleet sharing Redis; a sub-only token ends only that provider's sessions;
 * refusals from one address are rate limited without slowing the provider elsewhere.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { createStore } from '../../../src/sessions/index.js'
import { configFrom } from '../../helpers/gateway.js'
import { startRedis } from '../../helpers/redis.js'
import { BACKCHANNEL_EVENT, startRogueProvider, type Signer } from '../../helpers/rogue-provider.js'
import { advanceClocks, assertNothingSecretLogged, browser, rogueSetup, rogueSignIn, sessionAlive, type RogueSetup } from './rogue-setup.js'

const FORM = 'application/x-www-form-urlencoded'
const epoch = () => Math.floor(Date.now() / 1000)
const form = (...tokens: string[]) => tokens.map((tk) => `logout_token=${encodeURIComponent(tk)}`).join('&')

function post(url: string, body?: string, contentType: string | null = FORM) {
  const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType }
  return fetch(`${url}/auth/oidc/corp/backchannel-logout`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) })
}

/** A signed-in browser whose session came from the rogue (its id_token carried a sid). */
async function signedIn(t: Test, setup: RogueSetup, url = setup.gw.url) {
  const user = browser()
  const { callback } = await rogueSignIn(setup, user, url)
  t.equal(callback.status, 302, 'signed in through the provider')
  return user
}

t.test('logout tokens a provider must not send are refused with 400 and end nothing', async (t) => {
  const setup = await rogueSetup(t)
  const { gw, rogue } = setup
  const alice = await signedIn(t, setup)
  const valid = await rogue.logoutToken()
  const sent: string[] = [valid]
  const token = async (claims: Record<string, unknown>, signer?: Signer, header?: Record<string, unknown>) => {
    const made = await rogue.logoutToken(claims, { ...(signer ? { signer } : {}), ...(header ? { header } : {}) })
    sent.push(made)
    return made
  }

  const shapes: [string, Response, number][] = [
    ['no body at all', await post(gw.url, undefined, null), 400],
    ['an empty form', await post(gw.url, ''), 400],
    ['the token as JSON', await post(gw.url, JSON.stringify({ logout_token: valid }), 'application/json'), 400],
    ['the form sent as text/plain', await post(gw.url, form(valid), 'text/plain'), 415],
    ['an XML body', await post(gw.url, `<logout_token>${valid}</logout_token>`, 'application/xml'), 415],
    ['two logout_token fields', await post(gw.url, form(valid, valid)), 400],
  ]
  for (const [what, r, status] of shapes) t.equal(r.status, status, `${what}: ${status}`)

  const jwksBefore = rogue.jwksFetches
  const lies: [string, string][] = [
    ['signed by an unpublished key', await token({}, 'foreign-key')],
    ['the published kid over another key’s signature', await token({}, 'foreign-key', { kid: rogue.kid })],
    ['HS256 with the client secret', await token({}, 'client-secret')],
    ['alg none', await token({}, 'none')],
    ['another issuer', await token({ iss: 'https://idp.evil.example' })],
    ['another audience', await token({ aud: 'another-client' })],
    ['a nonce (an id_token, not a logout token)', await token({ nonce: 'n-0S6_WzA2Mj' })],
    ['no events claim', await token({ events: undefined })],
    ['another event only', await token({ events: { 'http://schemas.openid.net/event/other': {} } })],
    ['the event as true, not an object', await token({ events: { [BACKCHANNEL_EVENT]: true } })],
    ['neither sid nor sub', await token({ sid: undefined, sub: undefined })],
    ['no jti', await token({ jti: undefined })],
    ['iat eleven minutes ago', await token({ iat: epoch() - 660 })],
    ['iat ten minutes ahead', await token({ iat: epoch() + 600 })],
    ['no iat', await token({ iat: undefined })],
  ]
  for (const [what, lie] of lies) {
    const r = await post(gw.url, form(lie))
    t.equal(r.status, 400, `${what}: 400`)
    t.match(await r.json(), { code: 'invalid_request' }, `${what}: invalid_request`)
  }
  t.equal(rogue.jwksFetches - jwksBefore, 1, 'the JWKS was fetched once, for the first token: the unknown kids after it fetched nothing')
  t.same(await sessionAlive(setup, alice), { me: 200, refresh: 200 }, 'the session lives on')
  t.equal(gw.logs().filter((l) => l['msg'] === 'logout token refused').length, lies.length, 'each refused token is logged')

  const ended = await post(gw.url, form(valid))
  t.equal(ended.status, 200, 'the valid token is accepted (so the refusals above were the checks)')
  t.equal(ended.headers.get('cache-control'), 'no-store')
  t.same(await sessionAlive(setup, alice), { me: 401, refresh: 401 }, 'and ends the session')
  const replay = await post(gw.url, form(valid))
  t.equal(replay.status, 400, 'the same token again is a replay')
  t.match(await replay.json(), { code: 'invalid_request', detail: /already used/ })
  assertNothingSecretLogged(t, setup, sent)
})

t.test('logout tokens with unknown kids fetch the JWKS at most once per 30 seconds', async (t) => {
  const setup = await rogueSetup(t)
  const { gw, rogue } = setup
  const forged = async (times: number) => {
    const statuses = new Set<number>()
    for (let i = 0; i < times; i++) statuses.add((await post(gw.url, form(await rogue.logoutToken({}, { signer: 'foreign-key' })))).status)
    return [...statuses]
  }
  t.same(await forged(4), [400])
  t.equal(rogue.jwksFetches, 1, 'four tokens, one fetch')
  advanceClocks(t, setup, 31_000)
  t.same(await forged(4), [400])
  t.equal(rogue.jwksFetches, 2, '31 s later, four more tokens, one more fetch')
  await rogue.rotateKey()
  t.equal((await post(gw.url, form(await rogue.logoutToken()))).status, 400, 'measured: a key first used within 30 s of the last fetch is not found')
  advanceClocks(t, setup, 31_000)
  t.equal((await post(gw.url, form(await rogue.logoutToken()))).status, 200, '30 s on, the rotated key is fetched and accepted')
  t.equal(rogue.jwksFetches, 3)
})

t.test('a logout token works once across gateway instances sharing one Redis', async (t) => {
  const redis = await startRedis(t)
  const rogue = await startRogueProvider(t)
  const storeConfig = configFrom(`store: { type: redis, url: "${redis.url}", keyPrefix: "bc-test:" }\nroutes: []\n`)
  const sharedStore = () => {
    const store = createStore(storeConfig)
    t.teardown(() => store.close())
    return store
  }
  const a = await rogueSetup(t, { rogue, store: sharedStore() })
  const b = await rogueSetup(t, { rogue, store: sharedStore() })
  const alice = await signedIn(t, a)
  const valid = await rogue.logoutToken()

  t.equal((await post(b.gw.url, form(valid))).status, 200, 'instance B accepts it')
  t.same(await sessionAlive(a, alice), { me: 401, refresh: 401 }, 'and the session made on A has ended')
  t.equal((await post(a.gw.url, form(valid))).status, 400, 'instance A refuses the replay')
  t.equal((await post(b.gw.url, form(valid))).status, 400, 'and so does B')

  const bob = await signedIn(t, a, a.gw.url)
  const fresh = await rogue.logoutToken()
  const [first, second] = await Promise.all([post(a.gw.url, form(fresh)), post(b.gw.url, form(fresh))])
  t.same([first.status, second.status].sort(), [200, 400], 'sent to both at once, one accepts and one refuses')
  t.same(await sessionAlive(a, bob), { me: 401, refresh: 401 })
})

t.test("a sub-only logout token ends every session of that user from the provider, not the user's password session", async (t) => {
  const setup = await rogueSetup(t, { passwordSubject: 'rogue-user' })
  const { gw, rogue } = setup
  const phone = await signedIn(t, setup)
  const laptop = await signedIn(t, setup)
  t.not(rogue.authorizeRequests[0]!.sid, rogue.authorizeRequests[1]!.sid, 'two provider sessions')
  const desk = browser()
  const login = await desk(`${gw.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'pat', password: 'pw' }),
  })
  t.equal(login.status, 200, 'a password sign-in')
  t.match(await (await desk(`${gw.url}/auth/me`)).json(), { subject: 'rogue-user' }, 'of the same subject')

  const r = await post(gw.url, form(await rogue.logoutToken({ sid: undefined })))
  t.equal(r.status, 200)
  t.same(await sessionAlive(setup, phone), { me: 401, refresh: 401 }, 'the first provider session ended')
  t.same(await sessionAlive(setup, laptop), { me: 401, refresh: 401 }, 'and the second')
  t.same(await sessionAlive(setup, desk), { me: 200, refresh: 200 }, 'the password session lives on')
  t.ok(
    gw.logs().some((l) => l['msg'] === 'provider logout' && l['sessions'] === 2),
    'the log counts two',
  )
})

t.test('invalid logout tokens from one address end in 429; a valid token from another address still works', async (t) => {
  const setup = await rogueSetup(t, { gateway: 'rateLimits: { login: { perClient: { max: 5, window: 1m } } }' })
  const { gw, rogue } = setup
  const alice = await signedIn(t, setup)
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const forged = await rogue.logoutToken({}, { signer: 'foreign-key' })
    statuses.push((await post(gw.url, form(forged))).status)
  }
  // The sign-in's start and callback counted 2 of the 5 from this address.
  t.same(statuses, [400, 400, 400, 429, 429], 'three refusals, then 429')

  const elsewhere = new Agent({ localAddress: '127.0.0.2' })
  t.teardown(() => elsewhere.close())
  const valid = await rogue.logoutToken()
  const r = await request(`${gw.url}/auth/oidc/corp/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: form(valid),
    dispatcher: elsewhere,
  })
  t.equal(r.statusCode, 200, 'the provider, from another address, is heard')
  await r.body.dump()
  t.same(await sessionAlive(setup, alice), { me: 401, refresh: 401 }, 'and the session ends')
  const badElsewhere = await request(`${gw.url}/auth/oidc/corp/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: form(await rogue.logoutToken({}, { signer: 'foreign-key' })),
    dispatcher: elsewhere,
  })
  t.equal(badElsewhere.statusCode, 400, 'that address has its own count')
  await badElsewhere.body.dump()
})
