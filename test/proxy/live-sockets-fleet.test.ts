/**
 * SPEC "Sessions, connections and freshness" across a fleet: two real gateway instances
 * (src/main.ts, each with its own Redis connections) on one real redis-server, and a real
 * WebSocket upstream. A session ended on one instance closes its open sockets on both, with
 * 1008, within a second of the answer; the times measured are printed as a comment.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { generatePem } from '../../src/cli/keys-generate.js'
import { startGateway } from '../../src/main.js'
import { bearer, login, logout, refresh, until, type Tokens } from '../helpers/fleet-client.js'
import { send } from '../helpers/http.js'
import { closedWithin, openSocket, startEchoUpstream, staticUsers, type ClientSocket } from '../helpers/live-socket.js'
import { tempDir } from '../helpers/redis-process.js'
import { startRedis } from '../helpers/redis.js'

/** "About a second" (issue #18); the measured times are far below it. */
const BOUND_MS = 1000
const measured: Record<string, number[]> = {}

const redis = await startRedis(t)
const up = await startEchoUpstream(t)
const dir = tempDir(t, 'ws-fleet')
writeFileSync(join(dir, 'fleet.pem'), generatePem('ES256'), { mode: 0o600 })
const configPath = join(dir, 'gateway.yaml')
writeFileSync(
  configPath,
  `
server: { host: 127.0.0.1, port: 0, logLevel: warn, shutdownTimeout: 2s }
auth:
  refreshReuseGrace: 10s
  cookies: { secure: false }
  keys: { algorithm: ES256, signing: [{ kid: fleet, privateKeyFile: fleet.pem }] }
  identity: ${await staticUsers()}
store: { type: redis, url: "${redis.url}", commandTimeout: 500ms }
rateLimits: { login: { perClient: { max: 1000000, window: 1m } } }
routes:
  - { name: ws, prefix: /ws, upstream: "${up.url}", websocket: true }
`,
)
const quiet = () => new Writable({ write: (_chunk, _enc, cb) => cb() })
const [a, b] = await Promise.all(['a', 'b'].map(() => startGateway({ configPath, logDestination: quiet() })))
for (const gw of [a!, b!]) {
  t.teardown(() => gw.close())
  await until(
    () => send(gw.url, '/readyz'),
    (r) => r.status === 200,
    5000,
  )
}
const A = a!.url
const B = b!.url

async function relaying(t: Test, url: string, s: Tokens): Promise<ClientSocket> {
  const socket = await openSocket(url, '/ws/live', s.accessToken)
  t.equal(await socket.echo('hi'), 'echo:hi', 'the socket relays before')
  return socket
}

/** Ends with `end` (which must answer `status`), then times each socket's close from the answer. */
async function closesEverywhere(
  t: Test,
  name: string,
  sockets: Array<[on: string, ClientSocket]>,
  end: () => Promise<{ status: number }>,
  status = 204,
) {
  const res = await end()
  const answered = performance.now()
  t.equal(res.status, status, 'the ending call is answered')
  for (const [on, socket] of sockets) {
    const closed = await closedWithin(socket, BOUND_MS)
    t.same(closed && { code: closed.code, reason: closed.reason }, { code: 1008, reason: 'session ended' }, `${name}: closed on ${on} with 1008`)
    const ms = closed ? Math.max(0, closed.at - answered) : Number.POSITIVE_INFINITY
    t.ok(ms < BOUND_MS, `${name}: closed on ${on} ${ms.toFixed(1)} ms after the answer`)
    const key = `${name} (${on})`
    measured[key] = [...(measured[key] ?? []), Math.round(ms * 10) / 10]
  }
}

t.test('logout on A closes the session’s sockets on A and on B, and no other session’s', async (t) => {
  const [s, other] = [await login(A), await login(B)]
  const sockets: Array<[string, ClientSocket]> = [
    ['A', await relaying(t, A, s)],
    ['B', await relaying(t, B, s)],
  ]
  const kept = await relaying(t, B, other)
  await closesEverywhere(t, 'logout', sockets, () => logout(A, s.accessToken))
  t.equal(await kept.echo('still'), 'echo:still', 'a socket of another session of the same user keeps relaying')
})

t.test('logout-all on B closes the user’s sockets on both instances, not another user’s', async (t) => {
  const [s1, s2, bob] = [await login(A), await login(B), await login(A, 'bob')]
  const sockets: Array<[string, ClientSocket]> = [
    ['A', await relaying(t, A, s1)],
    ['B', await relaying(t, B, s1)],
    ['A', await relaying(t, A, s2)],
    ['B', await relaying(t, B, s2)],
  ]
  const bobs = await relaying(t, A, bob)
  await closesEverywhere(t, 'logout-all', sockets, () => send(B, '/auth/logout-all', { method: 'POST', headers: bearer(s2.accessToken) }))
  t.equal(await bobs.echo('still'), 'echo:still')
})

t.test('a refresh token reused on A ends the session and closes its socket on B', async (t) => {
  const s = await login(A)
  const sockets: Array<[string, ClientSocket]> = [
    ['B', await relaying(t, B, s)],
    ['A', await relaying(t, A, s)],
  ]
  const first = await refresh(A, s.refreshToken)
  t.equal(first.status, 200, 'the refresh token is rotated')
  t.equal((await refresh(B, first.json<Tokens>().refreshToken)).status, 200, 'and rotated again')
  // No longer the immediate predecessor, the first token is past any grace: a theft.
  await closesEverywhere(t, 'refresh reuse', sockets, () => refresh(A, s.refreshToken), 401)
})

t.test('an admin ending a session on B closes its socket on A', async (t) => {
  const [root, s] = [await login(B, 'root'), await login(A)]
  const sockets: Array<[string, ClientSocket]> = [['A', await relaying(t, A, s)]]
  await closesEverywhere(t, 'admin', sockets, () =>
    send(B, `/auth/admin/sessions/${s.sessionId}`, { method: 'DELETE', headers: bearer(root.accessToken) }),
  )
})

t.test('the times measured', async (t) => {
  t.comment(`close after the ending call's answer (ms): ${JSON.stringify(measured)}`)
  t.ok(Object.keys(measured).length >= 4)
})
