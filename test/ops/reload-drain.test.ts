import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import WebSocket from 'ws'
import { hashPassword } from '../../src/auth/passwords.js'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRunning, type Running } from '../helpers/running.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

/** A route whose requests under `/slow/wait*` take `delayMs` at the upstream. */
const config = (up: string, version: string, extra = '', shutdownTimeout = '3s') => `
server: { host: 127.0.0.1, port: 0, shutdownTimeout: ${shutdownTimeout} }
routes:
  - { name: slow, prefix: /slow, upstream: "${up}", rewritePrefix: /${version}, auth: none }
  - { name: ws, prefix: /ws, upstream: "${up}", auth: none, websocket: true }
${extra}`

/** The upstream connections requests arrived on, by request path. */
function delayUpstream(up: Upstream, delayMs: number): Map<string, Socket> {
  const sockets = new Map<string, Socket>()
  up.handle((req, res) => {
    sockets.set(req.url ?? '', req.socket)
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ url: req.url }))
    }
    if (req.url?.includes('/wait')) setTimeout(answer, delayMs).unref()
    else answer()
  })
  return sockets
}

const closedLog = (run: Running, generation: number) =>
  run.logged((l) => l['msg'] === 'generation drained and closed' && l['generation'] === generation, 10_000)

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}
const echo = (ws: WebSocket, text: string) =>
  new Promise<string>((resolve) => {
    ws.once('message', (d) => resolve(d.toString()))
    ws.send(text)
  })

async function until(test: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !test(); i++) await new Promise((r) => setTimeout(r, 10))
}

t.test('a slow request started before a reload completes on its old route config', async (t) => {
  const up = await startUpstream(t)
  const sockets = delayUpstream(up, 800)
  const run = await startRunning(t, config(up.url, 'v1'))
  const slow = send(run.gw.url, '/slow/wait')
  await until(() => up.seen.length === 1)
  await writeFile(run.file, config(up.url, 'v2'))
  t.equal((await run.gw.reload()).ok, true)

  const fresh = await send(run.gw.url, '/slow/now')
  t.equal(fresh.json()['url'], '/v2/now', 'a new request takes the new config at once')
  const answer = await slow
  const slowDone = Date.now()
  t.equal(answer.status, 200, 'the in-flight request did not fail')
  t.equal(answer.json()['url'], '/v1/wait', 'and it went where the old config sent it')
  const closed = await closedLog(run, 1)
  t.ok(Date.parse(String(closed['time'])) >= slowDone - 5, 'the old generation (and its upstream pool) closed only after it')
  t.equal(closed['cut'], 0)
  // Its keep-alive connection to the upstream goes with it, not at undici's idle timeout (4 s).
  const oldPool = sockets.get('/v1/wait')!
  const gone =
    oldPool.destroyed ||
    (await new Promise((r) => {
      oldPool.once('close', () => r(true))
      setTimeout(r, 1000, false).unref()
    }))
  t.ok(gone, 'the old generation closed its upstream connections')
  t.notOk(sockets.get('/v2/now')!.destroyed, 'the new generation keeps its own')
})

t.test('an open WebSocket keeps working after a reload; new ones open on the new config', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const run = await startRunning(t, config(up.url, 'v1'))
  const ws = await open(run.gw.url.replace('http', 'ws') + '/ws/chat')
  t.teardown(() => ws.terminate())
  t.equal(await echo(ws, 'before'), 'echo:before')
  await writeFile(run.file, config(up.url, 'v2'))
  t.equal((await run.gw.reload()).ok, true)
  t.equal(await echo(ws, 'after'), 'echo:after', 'the socket opened before the reload still works')
  const second = await open(run.gw.url.replace('http', 'ws') + '/ws/chat')
  t.equal(await echo(second, 'new'), 'echo:new')
  second.close()
  t.equal(ws.readyState, WebSocket.OPEN)
})

t.test('an old generation lives at most its shutdownTimeout: WebSockets then get a close frame', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const run = await startRunning(t, config(up.url, 'v1', '', '1s'))
  const ws = await open(run.gw.url.replace('http', 'ws') + '/ws/chat')
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })))
  await writeFile(run.file, config(up.url, 'v2', '', '1s'))
  const reloadedAt = Date.now()
  t.equal((await run.gw.reload()).ok, true)
  const { code, at } = await closed
  const after = at - reloadedAt
  t.ok(after >= 900 && after < 2500, `closed ${after} ms after the reload (shutdownTimeout 1s)`)
  t.not(code, 1006, `a close frame was sent (code ${code}), not a dropped connection`)
  const line = await closedLog(run, 1)
  t.equal(line['cut'], 1)
  t.ok((await run.logged((l) => l['msg'] === 'drain timeout: closing what this generation still serves'))['open'] === 1)
})

t.test('a WebSocket client that never answers the close frame is cut off a second later', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const run = await startRunning(t, config(up.url, 'v1', '', '500ms'))
  // A raw client: it completes the handshake, then reads and never answers anything.
  const { hostname, port } = new URL(run.gw.url)
  const socket = connect(Number(port), hostname)
  t.teardown(() => socket.destroy())
  let received = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])))
  const ended = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())))
  socket.write(
    'GET /ws/chat HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  )
  await until(() => received.includes('\r\n\r\n'))
  t.match(received.toString('latin1'), /^HTTP\/1\.1 101 /)
  const upgraded = received.indexOf('\r\n\r\n') + 4
  await writeFile(run.file, config(up.url, 'v2', '', '500ms'))
  const reloadedAt = Date.now()
  await run.gw.reload()
  const after = (await ended) - reloadedAt
  // The drain timeout (500 ms), then as long again for an answer to the close frame (the grace
  // is at most 1 s), then the socket is destroyed; the WebSocket library would wait 30 s.
  t.ok(after >= 900 && after < 2500, `cut off ${after} ms after the reload`)
  t.equal(received[upgraded], 0x88, 'a close frame came first')
  t.equal((await closedLog(run, 1))['cut'], 1)
})

t.test('a request still running at the drain timeout ends with 502, and the old generation closes in bounded time', async (t) => {
  const up = await startUpstream(t)
  delayUpstream(up, 10_000)
  const run = await startRunning(t, config(up.url, 'v1', '', '500ms'))
  const slow = send(run.gw.url, '/slow/wait')
  await until(() => up.seen.length === 1)
  await writeFile(run.file, config(up.url, 'v2', '', '500ms'))
  const reloadedAt = Date.now()
  await run.gw.reload()
  const answer = await slow
  t.equal(answer.status, 502)
  t.equal(answer.json()['code'], 'upstream_unavailable')
  const line = await closedLog(run, 1)
  t.ok(Number(line['ms']) < 1500, `closed ${String(line['ms'])} ms after the reload`)
  t.ok(Date.now() - reloadedAt < 2000)
  t.equal((await send(run.gw.url, '/slow/now')).status, 200, 'the new generation serves on')
})

t.test('shutdown cuts a generation retired by a reload at its own timeout, not the longer one it had', async (t) => {
  const up = await startUpstream(t)
  delayUpstream(up, 30_000)
  const run = await startRunning(t, config(up.url, 'v1', '', '20s'))
  const stuck = send(run.gw.url, '/slow/wait')
  await until(() => up.seen.length === 1)
  await writeFile(run.file, config(up.url, 'v2', '', '500ms'))
  await run.gw.reload()
  const started = Date.now()
  await run.gw.close()
  const took = Date.now() - started
  t.ok(took < 1500, `closed in ${took} ms (shutdownTimeout 500ms; the old generation had 20s)`)
  t.equal((await stuck).status, 502)
})

t.test('shutdown does not wait for an open WebSocket beyond shutdownTimeout', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const run = await startRunning(t, config(up.url, 'v1', '', '500ms'))
  const ws = await open(run.gw.url.replace('http', 'ws') + '/ws/chat')
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const started = Date.now()
  await run.gw.close()
  const took = Date.now() - started
  t.ok(took < 2000, `closed in ${took} ms with a WebSocket open (shutdownTimeout 500ms)`)
  t.not(await closed, 1006, 'the WebSocket got a close frame')
})

t.test('retiring generations leaves the shared Redis store and revocation sync working', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const hash = await hashPassword('pw')
  const extra = `store: { type: redis, url: "${redis.url}" }
auth:
  keys: { algorithm: HS256, signing: [{ kid: k1, secret: "0123456789abcdef0123456789abcdef" }] }
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${hash}", roles: [user] }] }]
`
  const yaml = (v: string) => config(up.url, v, extra).replace('auth: none }', 'auth: required }')
  const run = await startRunning(t, yaml('v1'))
  for (const v of ['v2', 'v3', 'v4']) {
    await writeFile(run.file, yaml(v))
    t.equal((await run.gw.reload()).ok, true)
  }
  await closedLog(run, 3)
  // Ready once the store answers and the first revocation sync is done (a start racing the
  // Redis connection retries it within a second): poll, bounded.
  let ready = 0
  for (let i = 0; i < 50 && ready !== 200; i++) {
    ready = (await send(run.gw.url, '/readyz')).status
    if (ready !== 200) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(ready, 200, 'the store still answers')

  const login = await send(run.gw.url, '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ username: 'ann', password: 'pw' }),
  })
  t.equal(login.status, 200, 'a session can be created')
  const token = String(login.json()['accessToken'])
  const auth = { authorization: `Bearer ${token}` }
  t.equal((await send(run.gw.url, '/slow/now', { headers: auth })).json()['url'], '/v4/now')
  t.equal((await send(run.gw.url, '/auth/logout', { method: 'POST', headers: auth })).status, 204)
  // The revocation comes back through the store's feed into this instance's set.
  await until(() => run.gw.revocations.size > 0)
  const refused = await send(run.gw.url, '/slow/now', { headers: auth })
  t.equal(refused.status, 401)
  t.equal(refused.json()['code'], 'token_revoked')
})
