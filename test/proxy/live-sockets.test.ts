/**
 * SPEC "Sessions, connections and freshness": a proxied WebSocket is closed with 1008 when its
 * session ends, however it ends. One gateway on the memory store, a real echo upstream, real
 * sessions; expiry is reached by moving the gateway's injected clock (the gateway looks at
 * expiries once a second, so those tests wait for that look, never for a fixed time).
 */
import t, { type Test } from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { closedWithin, openSocket, startEchoUpstream, staticUsers, type ClientSocket, type EchoUpstream } from '../helpers/live-socket.js'
import { makeToken } from '../helpers/tokens.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const TOKEN = { 'x-auth-transport': 'token', 'content-type': 'application/json' }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

interface Tokens {
  accessToken: string
  refreshToken: string
  sessionId: string
}

async function gateway(t: Test): Promise<{ gw: TestGateway; up: EchoUpstream }> {
  const up = await startEchoUpstream(t)
  const gw = await startGateway(
    t,
    `
auth:
  accessTokenTtl: 10m
  refreshTokenTtl: 2d
  sessionMaxAge: 3d
  refreshReuseGrace: 10s
  cookies: { secure: false }
  identity: ${await staticUsers()}
routes:
  - { name: ws, prefix: /ws, upstream: "${up.url}", websocket: true }
  - { name: loose, prefix: /loose, upstream: "${up.url}", websocket: true, revocation: off }
`,
  )
  return { gw, up }
}

async function login(gw: TestGateway, username = 'alice'): Promise<Tokens> {
  const res = await send(gw.url, '/auth/login', { method: 'POST', headers: TOKEN, body: JSON.stringify({ username, password: `${username}-pw` }) })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body}`)
  return res.json<Tokens>()
}

const refresh = (gw: TestGateway, refreshToken: string) =>
  send(gw.url, '/auth/refresh', { method: 'POST', headers: TOKEN, body: JSON.stringify({ refreshToken }) })

/** Opens a socket and checks that it relays before anything is ended. */
async function relaying(t: Test, gw: TestGateway, s: Tokens, path = '/ws/chat'): Promise<ClientSocket> {
  const socket = await openSocket(gw.url, path, s.accessToken)
  t.equal(await socket.echo('hi'), 'echo:hi', 'the socket relays before')
  return socket
}

async function closedAsEnded(t: Test, socket: ClientSocket, reason = 'session ended'): Promise<void> {
  const closed = await closedWithin(socket, 5000)
  t.same(closed && { code: closed.code, reason: closed.reason }, { code: 1008, reason }, `closed with 1008 "${reason}"`)
}

t.test('logout closes the open WebSockets of that session, at both ends, and no other', async (t) => {
  const { gw, up } = await gateway(t)
  const [s1, s2] = [await login(gw), await login(gw)]
  const first = await relaying(t, gw, s1)
  const second = await relaying(t, gw, s1)
  const other = await relaying(t, gw, s2)
  t.equal((await send(gw.url, '/auth/logout', { method: 'POST', headers: bearer(s1.accessToken) })).status, 204)
  await closedAsEnded(t, first)
  await closedAsEnded(t, second)
  for (let i = 0; i < 2; i++) t.equal((await up.closeOf(s1.sessionId)).code, 1008, 'the upstream socket is closed with 1008 too')
  t.equal(await other.echo('still'), 'echo:still', "another session's socket of the same user keeps relaying")
})

t.test('logout-all closes every socket of the user and none of another user', async (t) => {
  const { gw } = await gateway(t)
  const [a1, a2, bob] = [await login(gw), await login(gw), await login(gw, 'bob')]
  const sockets = [await relaying(t, gw, a1), await relaying(t, gw, a2)]
  const bobs = await relaying(t, gw, bob)
  t.equal((await send(gw.url, '/auth/logout-all', { method: 'POST', headers: bearer(a1.accessToken) })).status, 204)
  for (const s of sockets) await closedAsEnded(t, s)
  t.equal(await bobs.echo('still'), 'echo:still')
})

t.test('deleting a session from the device list closes its sockets', async (t) => {
  const { gw } = await gateway(t)
  const [here, there] = [await login(gw), await login(gw)]
  const mine = await relaying(t, gw, here)
  const theirs = await relaying(t, gw, there)
  t.equal((await send(gw.url, `/auth/sessions/${there.sessionId}`, { method: 'DELETE', headers: bearer(here.accessToken) })).status, 204)
  await closedAsEnded(t, theirs)
  t.equal(await mine.echo('still'), 'echo:still')
})

t.test("an admin ending one session, or all of a user's, closes their sockets", async (t) => {
  const { gw } = await gateway(t)
  const [root, alice, bob] = [await login(gw, 'root'), await login(gw), await login(gw, 'bob')]
  const [a, b] = [await relaying(t, gw, alice), await relaying(t, gw, bob)]
  const admin = bearer(root.accessToken)
  t.equal((await send(gw.url, `/auth/admin/sessions/${alice.sessionId}`, { method: 'DELETE', headers: admin })).status, 204)
  await closedAsEnded(t, a)
  t.ok(b.open, "bob's socket is still open")
  t.equal((await send(gw.url, '/auth/admin/users/u-bob/sessions', { method: 'DELETE', headers: admin })).status, 204)
  await closedAsEnded(t, b)
})

t.test('a reused refresh token ends the session and closes its sockets', async (t) => {
  const { gw } = await gateway(t)
  const s = await login(gw)
  const socket = await relaying(t, gw, s)
  t.equal((await refresh(gw, s.refreshToken)).status, 200, 'the refresh token is rotated')
  gw.clock.now += 11_000 // past refreshReuseGrace
  t.equal((await refresh(gw, s.refreshToken)).status, 401, 'the old one, presented again, is a theft')
  await closedAsEnded(t, socket)
})

t.test('a socket closes at the idle expiry of a session nobody refreshed, and outlives it in one that was refreshed', async (t) => {
  const { gw, up } = await gateway(t)
  const [kept, idle] = [await login(gw), await login(gw)]
  const [live, dying] = [await relaying(t, gw, kept), await relaying(t, gw, idle)]
  gw.clock.now += 1.5 * DAY
  t.equal((await refresh(gw, kept.refreshToken)).status, 200)
  gw.clock.now += 0.5 * DAY + 1000 // past the idle expiry both sessions had when their sockets opened
  await closedAsEnded(t, dying, 'session expired')
  t.equal((await up.closeOf(idle.sessionId)).code, 1008)
  // Both were read in the same look at the store: the refreshed one was found alive.
  t.equal(await live.echo('still'), 'echo:still', 'the refreshed session keeps its socket')
})

t.test("a socket closes at its session's absolute expiry, which refreshing does not move", async (t) => {
  const { gw } = await gateway(t)
  const s = await login(gw)
  const socket = await relaying(t, gw, s)
  gw.clock.now += 1.5 * DAY
  const refreshed = await refresh(gw, s.refreshToken)
  t.equal(refreshed.status, 200)
  gw.clock.now += 1.5 * DAY + 1000 // sessionMaxAge is 3d
  await closedAsEnded(t, socket, 'session expired')
})

t.test('on a route with revocation off a socket outlives logout and closes when its access token expires', async (t) => {
  const { gw } = await gateway(t)
  const s = await login(gw)
  const [strict, loose] = [await relaying(t, gw, s), await relaying(t, gw, s, '/loose/chat')]
  t.equal((await send(gw.url, '/auth/logout', { method: 'POST', headers: bearer(s.accessToken) })).status, 204)
  await closedAsEnded(t, strict)
  t.equal(await loose.echo('still'), 'echo:still', 'its HTTP requests would be served too until the token expires')
  gw.clock.now += 10 * 60_000 + 1000
  await closedAsEnded(t, loose, 'access token expired')
})

t.test('a socket whose session the store does not know is served until its token expires, as its requests are', async (t) => {
  const { gw } = await gateway(t)
  const token = await makeToken(gw.keyring, { sub: 'u-gone', exp: 300 }, gw.clock.now)
  const socket = await openSocket(gw.url, '/ws/chat', token)
  t.equal(await socket.echo('a'), 'echo:a')
  t.equal(await socket.echo('b'), 'echo:b', 'still relaying after the store was read')
  gw.clock.now += 301_000
  await closedAsEnded(t, socket, 'access token expired')
})
