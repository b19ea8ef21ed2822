import { randomBytes } from 'node:crypto'
import { generateKeyPair } from 'jose'
import t from 'tap'
import WebSocket from 'ws'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { b64, makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const config = (up: string, max: number) => `
rateLimits:
  invalidTokens:
    perClient: { max: ${max}, window: 10s }
routes:
  - { name: api, prefix: /api, upstream: "${up}" }
  - { name: ws, prefix: /ws, upstream: "${up}", websocket: true }
`

const call = (gw: TestGateway, token: string, path = '/api/x') => send(gw.url, path, { headers: { authorization: `Bearer ${token}` } })

/** A well-formed token under the gateway's kid with a random signature: it reaches the signature check and fails it. */
async function forgery(gw: TestGateway, sub = 'u-mallory'): Promise<string> {
  const [h, p] = (await makeToken(gw.keyring, { sub }, gw.clock.now)).split('.') as [string, string]
  return `${h}.${p}.${randomBytes(64).toString('base64url')}`
}

/** portcullis_signature_checks_total by `lane/result`. */
async function checks(gw: TestGateway): Promise<Record<string, number>> {
  const text = await (await gw.fetch('/metrics')).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^portcullis_signature_checks_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
    out[`${labels['lane']}/${labels['result']}`] = Number(m[2])
  }
  return out
}

t.test('a valid token never seen before passes from an address that has sent many forged tokens', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 3))
  for (let i = 0; i < 30; i++)
    t.equal((await call(gw, await forgery(gw))).json()['code'], 'invalid_token', `forgery #${i + 1} is checked and refused`)
  const fresh = await makeToken(gw.keyring, { sub: 'u-neighbour' }, gw.clock.now)
  t.equal((await call(gw, fresh)).status, 200, 'the neighbour behind the same address is served')
  t.same(
    await checks(gw),
    { 'normal/valid': 0, 'normal/invalid': 3, 'deferred/valid': 1, 'deferred/invalid': 27 },
    'past the budget, checks wait behind other addresses instead of being refused',
  )

  gw.clock.now += 10_000
  await call(gw, await forgery(gw))
  t.equal((await checks(gw))['normal/invalid'], 4, 'a new window puts the address back in the normal lane')
})

t.test('a client retrying a stale token costs one signature check and never gets a fresh token refused', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 2))
  const { privateKey } = await generateKeyPair('ES256')
  // Signed under our kid by a key the gateway no longer holds (an ephemeral key before a restart).
  const stale = await makeToken(gw.keyring, { key: privateKey }, gw.clock.now)
  for (let i = 0; i < 50; i++) t.equal((await call(gw, stale)).json()['code'], 'invalid_token')
  t.same(
    await checks(gw),
    { 'normal/valid': 0, 'normal/invalid': 1, 'deferred/valid': 0, 'deferred/invalid': 0 },
    'its retries are answered from memory',
  )
  t.equal((await call(gw, await makeToken(gw.keyring, { sub: 'u-fresh' }, gw.clock.now))).status, 200)
})

t.test('malformed tokens, unknown kids, wrong algorithms and expired tokens cost no signature check and are not charged', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 1))
  const other = await generateKeyPair('ES256')
  const rsa = await generateKeyPair('RS256')
  const [h] = (await makeToken(gw.keyring, {}, gw.clock.now)).split('.') as [string]
  const bad: Array<[string, string, string]> = [
    ['not a JWS', 'not-a-token', 'invalid_token'],
    ['a payload that is not JSON', `${h}.${b64('{"sub":')}.${randomBytes(64).toString('base64url')}`, 'invalid_token'],
    ['a payload that is not an object', `${h}.${b64('[1]')}.${randomBytes(64).toString('base64url')}`, 'invalid_token'],
    ['an unknown kid', await makeToken(gw.keyring, { key: other.privateKey, kid: 'retired' }, gw.clock.now), 'invalid_token'],
    ['no kid', await makeToken(gw.keyring, { key: other.privateKey, kid: null }, gw.clock.now), 'invalid_token'],
    ['RS256 when ES256 is pinned', await makeToken(gw.keyring, { alg: 'RS256', key: rsa.privateKey }, gw.clock.now), 'invalid_token'],
    [
      'expired, with a signature that would fail',
      await makeToken(gw.keyring, { key: other.privateKey, iat: -700, exp: -100 }, gw.clock.now),
      'token_expired',
    ],
  ]
  for (const [what, token, code] of bad) {
    for (let i = 0; i < 10; i++) t.equal((await call(gw, token)).json()['code'], code, what)
  }
  t.same(await checks(gw), { 'normal/valid': 0, 'normal/invalid': 0, 'deferred/valid': 0, 'deferred/invalid': 0 }, 'none reached the cryptography')
  await call(gw, await forgery(gw))
  t.equal((await checks(gw))['normal/invalid'], 1, 'the first forgery after them is still within the budget of 1')
  t.equal((await call(gw, await makeToken(gw.keyring, { sub: 'u-fresh' }, gw.clock.now))).status, 200)
})

t.test('tokens signed by a key removed in a rotation never lock out the clients that still send them', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 3))
  const retired = await generateKeyPair('ES256')
  // A whole office behind one NAT address, every client still holding a token of the old key.
  for (let i = 0; i < 100; i++) {
    const old = await makeToken(gw.keyring, { sub: `u-${i}`, key: retired.privateKey, kid: '2026-10' }, gw.clock.now)
    t.equal((await call(gw, old)).status, 401)
  }
  for (let i = 0; i < 5; i++) {
    t.equal((await call(gw, await makeToken(gw.keyring, { sub: `u-${i}` }, gw.clock.now))).status, 200, `client ${i} refreshed and is served`)
  }
  t.same(await checks(gw), { 'normal/valid': 5, 'normal/invalid': 0, 'deferred/valid': 0, 'deferred/invalid': 0 })
})

t.test('forged tokens sent to logout are charged like any other and each distinct one costs at most one check', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 3))
  const logout = (token: string) =>
    send(gw.url, '/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
  const repeated = await forgery(gw)
  for (let i = 0; i < 20; i++) t.equal((await logout(repeated)).status, 204)
  for (let i = 0; i < 10; i++) t.equal((await logout(await forgery(gw))).status, 204)
  t.same(
    await checks(gw),
    { 'normal/valid': 0, 'normal/invalid': 3, 'deferred/valid': 0, 'deferred/invalid': 8 },
    '11 distinct forgeries, 11 checks; the address spent its budget through logout',
  )
  await call(gw, await forgery(gw))
  t.equal((await checks(gw))['deferred/invalid'], 9, 'so its proxied forgeries wait in the deferred lane too')

  const valid = await makeToken(gw.keyring, { sub: 'u-leaving', sid: 'AAAAAAleavingleavingleaving0' }, gw.clock.now)
  t.equal((await logout(valid)).status, 204)
  t.equal((await call(gw, valid)).json()['code'], 'token_revoked', 'a valid logout from the flooded address still ends its session')
})

t.test('an admin call and a WebSocket upgrade with never-seen valid tokens from a flooded address still work', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await startGateway(t, config(up.url, 2))
  for (let i = 0; i < 20; i++) await call(gw, await forgery(gw))

  const admin = await makeToken(gw.keyring, { sub: 'u-admin', roles: ['admin'] }, gw.clock.now)
  t.equal((await call(gw, admin, '/auth/admin/users/u-alice/sessions')).status, 200)

  const token = await makeToken(gw.keyring, { sub: 'u-ws' }, gw.clock.now)
  const opened = await new Promise<number | 'open'>((resolve, reject) => {
    const ws = new WebSocket(gw.url.replace('http', 'ws') + '/ws/chat', { headers: { authorization: `Bearer ${token}` } })
    ws.once('open', () => {
      ws.close()
      resolve('open')
    })
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.once('error', reject)
  })
  t.equal(opened, 'open')
})

t.test('while an address floods distinct forged tokens, a fresh valid token from the same address gets 200', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 3))
  const forged = await Promise.all(Array.from({ length: 200 }, (_, i) => forgery(gw, `u-${i}`)))
  const fresh = await makeToken(gw.keyring, { sub: 'u-neighbour' }, gw.clock.now)
  const answers = await Promise.all([...forged.slice(0, 100).map((f) => call(gw, f)), call(gw, fresh), ...forged.slice(100).map((f) => call(gw, f))])
  t.equal(answers[100]!.status, 200)
  t.same(
    answers
      .filter((_, i) => i !== 100)
      .map((a) => a.status)
      .filter((s) => s !== 401),
    [],
    'every forgery is refused as invalid, none for its address',
  )
})

t.test('expired tokens are an ordinary event and do not use up the budget', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url, 2))
  for (let i = 0; i < 5; i++) {
    const expired = await makeToken(gw.keyring, { sub: `u-${i}`, iat: -700, exp: -100 }, gw.clock.now)
    t.equal((await call(gw, expired)).json()['code'], 'token_expired')
  }
  t.equal((await call(gw, await makeToken(gw.keyring, {}, gw.clock.now))).status, 200)
})
