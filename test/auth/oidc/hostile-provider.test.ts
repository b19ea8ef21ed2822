/**
 * Sign-in through a provider that lies: the rogue provider (test/helpers/rogue-provider.ts)
 * edits each id_token, the callback's parameters or the token endpoint's answer, and the real
 * gateway must create no session from any of it, nor log what it was handed.
 */
import t from 'tap'
import type { IdTokenDraft, Signer } from '../../helpers/rogue-provider.js'
import { advanceClocks, assertNothingSecretLogged, browser, rogueSetup, rogueSignIn, type RogueSetup } from './rogue-setup.js'

const json = async (r: Response) => (await r.json()) as Record<string, unknown>
const epoch = () => Math.floor(Date.now() / 1000)
/** An id_token edit: these claims over the defaults (undefined removes one). */
const claims = (over: Record<string, unknown>) => (draft: IdTokenDraft) => Object.assign(draft.claims, over)
/** An id_token edit: signed another way, `header` over the signer's. */
const signedBy =
  (signer: Signer, header: Record<string, unknown> = {}) =>
  (draft: IdTokenDraft) =>
    Object.assign(draft, { signer, header })

/** Signs in with the rogue editing the id_token; the answer, and whether a session cookie came back. */
async function attempt(setup: RogueSetup, edit?: (draft: IdTokenDraft) => void) {
  setup.rogue.idToken = edit
  const user = browser()
  const tokenRequests = setup.rogue.tokenRequests.length
  const { callback } = await rogueSignIn(setup, user)
  setup.rogue.idToken = undefined
  return {
    status: callback.status,
    body: callback.status === 302 ? {} : await json(callback),
    session: user.jar.has('portcullis_at') || user.jar.has('portcullis_rt'),
    exchanged: setup.rogue.tokenRequests.length > tokenRequests,
  }
}

t.test('id_tokens that lie about who issued them, for whom, when or in which flow create no session', async (t) => {
  const setup = await rogueSetup(t)
  const honest = await attempt(setup)
  t.equal(honest.status, 302, 'an honest id_token signs in (so the refusals below are the checks)')
  t.ok(honest.session)
  const twoAudiences = await attempt(setup, claims({ aud: ['portcullis', 'another-client'], azp: 'portcullis' }))
  t.equal(twoAudiences.status, 302, 'several audiences are fine when azp names this client')

  const lies: [string, (draft: IdTokenDraft) => void][] = [
    ['another issuer', claims({ iss: 'https://idp.evil.example' })],
    ['another audience', claims({ aud: 'another-client' })],
    ['several audiences and no azp', claims({ aud: ['portcullis', 'another-client'] })],
    ['several audiences and azp naming another client', claims({ aud: ['portcullis', 'another-client'], azp: 'another-client' })],
    ['expired beyond the clock tolerance', claims({ iat: epoch() - 600, exp: epoch() - 120 })],
    ['issued in the future beyond the clock tolerance', claims({ iat: epoch() + 600, exp: epoch() + 900 })],
    ['another flow’s nonce', claims({ nonce: 'n-0S6_WzA2Mj' })],
    ['no nonce', claims({ nonce: undefined })],
    ['alg none', signedBy('none')],
    ['HS256 signed with the client secret', signedBy('client-secret')],
    ['signed by a key the provider never published', signedBy('foreign-key')],
    ['the published kid but another key’s signature', signedBy('foreign-key', { kid: setup.rogue.kid })],
  ]
  for (const [lie, edit] of lies) {
    const r = await attempt(setup, edit)
    t.equal(r.status, 400, `${lie}: 400`)
    t.match(r.body, { code: 'invalid_request' }, `${lie}: invalid_request`)
    t.notOk(r.session, `${lie}: no session cookie`)
    t.ok(r.exchanged, `${lie}: refused after the code exchange, for the id_token`)
  }
  const refusals = setup.gw.logs().filter((l) => String(l['msg']).startsWith('oidc sign-in refused'))
  t.equal(refusals.length, lies.length, 'each refusal is logged once, for the operator')
  assertNothingSecretLogged(t, setup)
})

t.test('a discovery document listing none and HS256 does not make them acceptable', async (t) => {
  const setup = await rogueSetup(t)
  setup.rogue.metadata['id_token_signing_alg_values_supported'] = ['RS256', 'HS256', 'none']
  t.equal((await attempt(setup)).status, 302, 'RS256 still signs in')
  for (const signer of ['none', 'client-secret'] as const) {
    const r = await attempt(setup, signedBy(signer))
    t.equal(r.status, 400, `${signer}: 400`)
    t.notOk(r.session, `${signer}: no session`)
  }
  assertNothingSecretLogged(t, setup)
})

t.test('a callback naming another issuer is refused before its code goes anywhere (mix-up)', async (t) => {
  const setup = await rogueSetup(t)
  for (const [what, iss] of [
    ['another issuer', 'https://idp.evil.example'],
    ['no iss though the provider promises one', null],
  ] as const) {
    setup.rogue.authorizeRedirect = (location) => {
      if (iss === null) location.searchParams.delete('iss')
      else location.searchParams.set('iss', iss)
    }
    const user = browser()
    const { callback } = await rogueSignIn(setup, user)
    t.equal(callback.status, 400, `${what}: 400`)
    t.match(await json(callback), { code: 'invalid_request' })
    t.notOk(user.jar.has('portcullis_at'), `${what}: no session`)
  }
  t.equal(setup.rogue.tokenRequests.length, 0, 'no code was exchanged')
  assertNothingSecretLogged(t, setup)
})

t.test('a code the provider has already redeemed signs no one in', async (t) => {
  const setup = await rogueSetup(t)
  const first = await rogueSignIn(setup)
  t.equal(first.callback.status, 302)
  // A new flow (state, PKCE) carrying the used code, as an attacker who saw it would send it.
  setup.rogue.authorizeRedirect = (location) => location.searchParams.set('code', first.authorize.code)
  const user = browser()
  const replay = await rogueSignIn(setup, user)
  t.equal(replay.callback.status, 400)
  t.match(await json(replay.callback), { code: 'invalid_request', detail: 'the sign-in could not be verified; start again' })
  t.notOk(user.jar.has('portcullis_at'))
  t.match(setup.rogue.tokenRequests.at(-1), { status: 400, params: { code: first.authorize.code } }, 'the provider answered invalid_grant')
  t.ok(
    setup.gw.logs().some((l) => l['msg'] === 'oidc sign-in refused' && l['reason'] === 'invalid_grant (HTTP 400)'),
    'the log says why, by the error code',
  )
  assertNothingSecretLogged(t, setup)
})

t.test('a token endpoint answering an error page is an outage, not a failed sign-in', async (t) => {
  const setup = await rogueSetup(t)
  const pages = [
    ['500 with an OAuth error', { status: 500, headers: { 'content-type': 'application/json' }, body: '{"error":"server_error"}' }],
    ['502 with an HTML page', { status: 502, headers: { 'content-type': 'text/html' }, body: '<html><body>Bad Gateway</body></html>' }],
    [
      '200 with an HTML page',
      { status: 200, headers: { 'content-type': 'text/html' }, body: '<html><body>Please sign in to the proxy</body></html>' },
    ],
  ] as const
  for (const [what, page] of pages) {
    setup.rogue.intercept = (req, url) => (req.method === 'POST' && url.pathname === '/token' ? { ...page, headers: { ...page.headers } } : undefined)
    const user = browser()
    const { callback } = await rogueSignIn(setup, user)
    t.equal(callback.status, 503, `${what}: 503`)
    t.match(await json(callback), { code: 'identity_unavailable' }, `${what}: identity_unavailable`)
    t.notOk(user.jar.has('portcullis_at'), `${what}: no session`)
  }
  setup.rogue.intercept = undefined
  t.equal((await rogueSignIn(setup)).callback.status, 302, 'once the token endpoint answers properly, sign-in works')
  assertNothingSecretLogged(t, setup)
})

t.test('a rotated key is fetched once the JWKS is a minute old, and unknown kids never make a fetch per attempt', async (t) => {
  const setup = await rogueSetup(t)
  const { rogue } = setup
  t.equal((await attempt(setup)).status, 302)
  t.equal(rogue.jwksFetches, 1, 'the first id_token fetches the JWKS')

  const unknown = async (times: number) => {
    const statuses = new Set<number>()
    for (let i = 0; i < times; i++) statuses.add((await attempt(setup, signedBy('foreign-key'))).status)
    return [...statuses]
  }
  t.same(await unknown(4), [400], 'four id_tokens with an unknown kid are refused')
  t.equal(rogue.jwksFetches, 1, 'without fetching the JWKS again (it is under a minute old)')

  await rogue.rotateKey()
  const early = await attempt(setup)
  t.equal(early.status, 400, "measured: a key first used within a minute of the last fetch is not looked for (openid-client's 60 s rule)")
  t.equal(rogue.jwksFetches, 1)

  advanceClocks(t, setup, 61_000)
  t.equal((await attempt(setup)).status, 302, 'a minute on, the new kid signs in')
  t.equal(rogue.jwksFetches, 2, 'after one more fetch')
  t.same(await unknown(4), [400])
  t.equal(rogue.jwksFetches, 2, 'unknown kids right after it fetch nothing')

  advanceClocks(t, setup, 61_000)
  t.same(await unknown(4), [400])
  t.equal(rogue.jwksFetches, 3, 'a minute later, four unknown kids make one fetch between them')
  t.equal((await attempt(setup)).status, 302, 'the current key still signs in')
  t.equal(rogue.jwksFetches, 3)
  assertNothingSecretLogged(t, setup)
})
