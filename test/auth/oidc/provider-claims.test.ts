/**
 * What a session is made of when the provider's id_token is thin: claims and roles from
 * userinfo, who may sign in at all (requireClaims), and what the authorization request asks
 * for (authorizationParams). The rogue provider plays a real provider's parts.
 */
import t from 'tap'
import { browser, rogueSetup, rogueSignIn, type RogueSetup } from './rogue-setup.js'

const json = async (r: Response) => (await r.json()) as Record<string, unknown>

async function signedIn(setup: RogueSetup) {
  const user = browser()
  const { callback } = await rogueSignIn(setup, user)
  const me = callback.status === 302 ? await json(await user(`${setup.gw.url}/auth/me`)) : null
  return { user, status: callback.status, body: callback.status === 302 ? null : await json(callback), me, session: user.jar.has('portcullis_at') }
}

t.test('roles and claims the id_token lacks come from userinfo, the id_token winning where both speak', async (t) => {
  const setup = await rogueSetup(t)
  const { rogue } = setup
  rogue.idTokenClaims = { email: 'from-id-token@example.com' }
  rogue.userinfo = { email: 'from-userinfo@example.com', name: 'Una Userinfo', groups: ['ops', 'a,b'] }
  const thin = await signedIn(setup)
  t.equal(thin.status, 302)
  t.equal(rogue.userinfoFetches, 1, 'userinfo was asked once')
  t.match(thin.me, { subject: 'rogue-user', claims: { email: 'from-id-token@example.com', name: 'Una Userinfo' } })
  t.same([...(thin.me!['roles'] as string[])].sort(), ['ops', 'user'], "roles from userinfo's groups and the defaults, the unsafe one dropped")
  t.equal((await thin.user(`${setup.gw.url}/api/hello`)).status, 200)
  t.equal(setup.upstream.last().headers['x-user-roles'], 'user,ops', 'the upstream sees them')

  rogue.idTokenClaims = { email: 'whole@example.com', name: 'Whole', groups: ['staff'] }
  const whole = await signedIn(setup)
  t.equal(whole.status, 302)
  t.equal(rogue.userinfoFetches, 1, 'an id_token holding every wanted claim costs no userinfo call')
  t.same([...(whole.me!['roles'] as string[])].sort(), ['staff', 'user'])
})

t.test('userinfo speaking of another user signs no one in', async (t) => {
  const setup = await rogueSetup(t)
  setup.rogue.userinfo = { sub: 'someone-else', groups: ['admin'], email: 'x@example.com', name: 'X' }
  const r = await signedIn(setup)
  t.equal(r.status, 400)
  t.match(r.body, { code: 'invalid_request' })
  t.notOk(r.session, 'no session')
  t.equal(setup.rogue.userinfoFetches, 1, 'userinfo was asked, and its answer refused')
})

t.test('requireClaims turns away accounts that do not hold them, reading userinfo when the id_token lacks them', async (t) => {
  const setup = await rogueSetup(t, { source: 'requireClaims: { hd: example.com, groups: [admins, ops] }' })
  const { rogue } = setup
  rogue.userinfo = { email: 'x@example.com', name: 'X' }

  rogue.idTokenClaims = { groups: ['ops'] }
  const noDomain = await signedIn(setup)
  t.equal(noDomain.status, 403, 'no hd anywhere: 403')
  t.match(noDomain.body, { code: 'forbidden' })
  t.notOk(noDomain.session, 'and no session')

  rogue.idTokenClaims = { hd: 'evil.example', groups: ['ops'] }
  rogue.userinfo = { hd: 'example.com', email: 'x@example.com', name: 'X' }
  const otherDomain = await signedIn(setup)
  t.equal(otherDomain.status, 403, "another domain in the id_token: 403 (userinfo's answer does not override it)")
  t.notOk(otherDomain.session)

  rogue.idTokenClaims = { hd: 'example.com', groups: ['staff'] }
  const notInGroup = await signedIn(setup)
  t.equal(notInGroup.status, 403, 'in none of the groups: 403')

  rogue.idTokenClaims = { groups: ['staff', 'ops'] }
  const admitted = await signedIn(setup)
  t.equal(admitted.status, 302, 'hd from userinfo and one of the groups: admitted')
  t.match(admitted.me, { subject: 'rogue-user' })
  t.ok(
    setup.gw.logs().some((l) => String(l['msg']).startsWith('oidc sign-in refused') && l['claim'] === 'hd'),
    'a refusal names the claim that was not met',
  )
})

t.test('authorizationParams go to the provider beside the flow’s own parameters', async (t) => {
  const setup = await rogueSetup(t, { source: 'authorizationParams: { prompt: login, hd: example.com, login_hint: "a b&c" }' })
  const { callback, authorize } = await rogueSignIn(setup)
  t.equal(callback.status, 302)
  t.match(authorize.params, {
    prompt: 'login',
    hd: 'example.com',
    login_hint: 'a b&c',
    response_type: 'code',
    client_id: 'portcullis',
    code_challenge_method: 'S256',
    scope: 'openid profile email',
  })
})
