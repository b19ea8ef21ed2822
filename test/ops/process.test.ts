import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { buildCli, ROOT, startProcess } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { freePort } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

t.before(() => void buildCli())

const config = (up: string, extra = '', shutdownTimeout = '5s') => `
server: { host: 127.0.0.1, port: 0, shutdownTimeout: ${shutdownTimeout} }
routes:
  - { name: api, prefix: /api, upstream: "${up}", auth: none }
${extra}`

/** Answers `/…/slow*` after `ms`, everything else at once. */
function slowUpstream(up: Upstream, ms: number): void {
  up.handle((req, res) => {
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`done ${req.url}`)
    if (req.url?.includes('/slow')) setTimeout(answer, ms).unref()
    else answer()
  })
}

async function until(test: () => boolean, ms = 5000): Promise<void> {
  for (let i = 0; i < ms / 10 && !test(); i++) await new Promise((r) => setTimeout(r, 10))
}

t.test('npm start runs the shipped gateway.yaml: the demo signs in and proxies with nothing else running', async (t) => {
  const demoPort = await freePort()
  const gw = await startProcess(t, 'gateway.yaml', { cwd: ROOT, env: { PORT: '0', HOST: '127.0.0.1', DEMO_UPSTREAM_PORT: String(demoPort) } })
  t.ok(gw.startMs < 10_000, `listening ${Math.round(gw.startMs)} ms after spawn`)
  t.equal((await send(gw.url, '/healthz')).status, 200)
  t.equal((await send(gw.url, '/readyz')).status, 200)
  const login = await send(gw.url, '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ username: 'alice', password: 'wonderland' }),
  })
  t.equal(login.status, 200)
  const echo = await send(gw.url, '/api/echo/hi', { headers: { authorization: `Bearer ${String(login.json()['accessToken'])}` } })
  t.equal(echo.status, 200)
  t.match(echo.json(), { service: 'echo', path: '/api/echo/hi', user: 'alice', roles: ['user'] })
  t.ok(
    gw.logs().every((l) => !l['notJson']),
    'every stdout line is a JSON log line',
  )
  gw.child.kill('SIGINT')
  t.same(await gw.exited, { code: 0, signal: null }, 'SIGINT exits 0')
})

t.test('SIGTERM: readiness turns 503, in-flight requests finish, connections close, exit 0', async (t) => {
  const up = await startUpstream(t)
  slowUpstream(up, 1000)
  const dir = t.testdir({ 'gateway.yaml': config(up.url) })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const url = new URL(gw.url)

  // An idle kept-alive connection, and a request whose head is still arriving at SIGTERM.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const idle = await new Promise<Socket>((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: '/healthz', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(req.socket as Socket))
    })
    req.end()
  })
  const idleClosed = new Promise<boolean>((resolve) => idle.once('close', () => resolve(true)))
  const late = connect(Number(url.port), url.hostname)
  late.on('error', () => {}) // judged by what it received
  let lateAnswer = ''
  late.on('data', (c) => (lateAnswer += c.toString()))
  const lateClosed = new Promise<void>((resolve) => late.once('close', () => resolve()))
  late.write('GET /readyz HTTP/1.1\r\nHost: x\r\n')

  const slow = send(gw.url, '/api/slow')
  await until(() => up.seen.length === 1)
  const signalled = performance.now()
  gw.child.kill('SIGTERM')
  await gw.logged((l) => l['msg'] === 'shutting down: draining in-flight requests')

  t.equal(await idleClosed, true, 'the idle kept-alive connection is closed')
  late.write('\r\n')
  await lateClosed
  t.match(lateAnswer, /^HTTP\/1\.1 503 /, '/readyz answers 503 while draining')
  t.match(lateAnswer, /connection: close/i, 'and asks the client to go elsewhere')
  const refused = await send(gw.url, '/healthz').then(
    (a) => a.status,
    (err: NodeJS.ErrnoException) => err.code,
  )
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused')

  const answer = await slow
  t.equal(answer.status, 200, 'the in-flight request completed')
  t.equal(answer.body, 'done /api/slow')
  t.same(await gw.exited, { code: 0, signal: null })
  const took = performance.now() - signalled
  t.ok(took < 5000, `exited ${Math.round(took)} ms after SIGTERM (shutdownTimeout 5s, slow request 1s)`)
  // Logged just before the exit, well short of the 4 KiB a write waits for: only the flush on
  // the way out can have written it (src/ops/logger.ts).
  t.ok(await gw.logged((l) => l['msg'] === 'shut down', 2000), 'the last log line reached stdout')
})

/** A raw connection that has sent `head`; `answer()` is all it received once the gateway closed it. */
function rawClient(url: URL, head: string): { socket: Socket; answer: () => Promise<string> } {
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {}) // judged by what it received
  let received = ''
  socket.on('data', (c) => (received += c.toString()))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(head)
  return { socket, answer: () => closed.then(() => received) }
}

t.test('SIGTERM: a request whose head is still arriving when the in-flight ones are done is answered, not reset', async (t) => {
  const up = await startUpstream(t)
  slowUpstream(up, 300)
  const dir = t.testdir({ 'gateway.yaml': config(up.url, '', '2s') })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const url = new URL(gw.url)
  const late = rawClient(url, 'GET /readyz HTTP/1.1\r\nHost: x\r\n')
  const never = rawClient(url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
  const slow = send(gw.url, '/api/slow')
  await until(() => up.seen.length === 1)
  const signalled = performance.now()
  gw.child.kill('SIGTERM')

  // Nothing is in flight any more but the two heads: the process must wait for them.
  t.equal((await slow).status, 200, 'the in-flight request completed')
  late.socket.write('\r\n')
  const answer = await late.answer()
  t.match(answer, /^HTTP\/1\.1 503 /, 'the late /readyz is answered 503')
  t.match(answer, /connection: close/i, 'with Connection: close')
  t.same(await gw.exited, { code: 0, signal: null })
  const took = performance.now() - signalled
  t.ok(took < 3500, `a head that never ends holds the exit no longer than shutdownTimeout: exited ${Math.round(took)} ms after SIGTERM (2s)`)
  t.equal(await never.answer(), '', 'and is closed without an answer')
})

t.test('SIGTERM with a request that will not finish still exits 0 within shutdownTimeout', async (t) => {
  const up = await startUpstream(t)
  slowUpstream(up, 60_000)
  const dir = t.testdir({ 'gateway.yaml': config(up.url, '', '1s') })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const stuck = send(gw.url, '/api/slow').then(
    (a) => a.status,
    (err: NodeJS.ErrnoException) => err.code,
  )
  await until(() => up.seen.length === 1)
  const signalled = performance.now()
  gw.child.kill('SIGTERM')
  t.same(await gw.exited, { code: 0, signal: null })
  const took = performance.now() - signalled
  t.ok(took < 2500, `exited ${Math.round(took)} ms after SIGTERM (shutdownTimeout 1s)`)
  t.equal(await stuck, 502, 'the cut request got an answer, not a reset')
  t.ok(gw.logs().some((l) => l['msg'] === 'drain timeout: closing what this generation still serves'))
})

t.test('a second SIGTERM during the drain exits at once with status 1', async (t) => {
  const up = await startUpstream(t)
  slowUpstream(up, 60_000)
  const dir = t.testdir({ 'gateway.yaml': config(up.url, '', '20s') })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const stuck = send(gw.url, '/api/slow').catch(() => null)
  await until(() => up.seen.length === 1)
  gw.child.kill('SIGTERM')
  await gw.logged((l) => l['msg'] === 'shutting down: draining in-flight requests')
  const second = performance.now()
  gw.child.kill('SIGTERM')
  t.same(await gw.exited, { code: 1, signal: null })
  t.ok(performance.now() - second < 1000, 'without waiting for the 20 s drain')
  await stuck
})

t.test('SIGHUP reloads the config file in the running process', async (t) => {
  const up = await startUpstream(t)
  const dir = t.testdir({ 'gateway.yaml': config(up.url) })
  const file = join(dir, 'gateway.yaml')
  const gw = await startProcess(t, file)
  t.equal((await send(gw.url, '/more/x')).status, 404)

  await writeFile(file, config(up.url, '  - { name: more, prefix: /more, upstream: "' + up.url + '", auth: none }\n'))
  gw.child.kill('SIGHUP')
  const done = await gw.logged((l) => l['msg'] === 'reload finished' && l['trigger'] === 'SIGHUP')
  t.equal(done['ok'], true)
  t.equal((await send(gw.url, '/more/x')).status, 200, 'the new route serves')

  await writeFile(file, 'routes: [ { name: x, prefix: nope } ]\n')
  gw.child.kill('SIGHUP')
  const rejected = await gw.logged((l) => l['msg'] === 'config reload rejected; still serving the previous config')
  t.match(rejected['problems'], [/gateway\.yaml:1:\d+ routes\[0\]/])
  t.equal((await send(gw.url, '/more/x')).status, 200, 'the last good config keeps serving')
  t.equal(gw.child.exitCode, null, 'SIGHUP never stops the process')
})

t.test('a change to the config file reloads the running process by itself', async (t) => {
  const up = await startUpstream(t)
  const dir = t.testdir({ 'gateway.yaml': config(up.url) })
  const file = join(dir, 'gateway.yaml')
  const gw = await startProcess(t, file)
  await new Promise((r) => setTimeout(r, 100))
  const written = performance.now()
  await writeFile(file, config(up.url, '  - { name: more, prefix: /more, upstream: "' + up.url + '", auth: none }\n'))
  const done = await gw.logged((l) => l['msg'] === 'reload finished' && l['trigger'] === 'file change')
  t.equal(done['ok'], true)
  t.equal((await send(gw.url, '/more/x')).status, 200)
  t.ok(performance.now() - written < 2000, `reloaded ${Math.round(performance.now() - written)} ms after the write`)
})

t.test('start refuses a bad config or a taken port with a message and exit 1', async (t) => {
  const up = await startUpstream(t)
  const dir = t.testdir({ 'bad.yaml': 'server: { port: -1 }\n', 'taken.yaml': `server: { host: 127.0.0.1, port: ${up.port} }\n` })
  const { runCli } = await import('../helpers/cli.js')
  const bad = await runCli(['start', '--config', join(dir, 'bad.yaml')])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /bad\.yaml:1:\d+ server\.port: /)
  t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace')
  const taken = await runCli(['start', '--config', join(dir, 'taken.yaml')])
  t.equal(taken.code, 1, 'exits instead of hanging')
  t.match(taken.stderr, /127\.0\.0\.1:\d+ is already in use by another process: stop that process, or choose another server\.port in .*taken\.yaml/)
  // The shipped config starts the demo upstream before listening: it must not keep the process up.
  const demo = await runCli(['start'], { cwd: ROOT, env: { PORT: String(up.port), HOST: '127.0.0.1', DEMO_UPSTREAM_PORT: String(await freePort()) } })
  t.same([demo.code, demo.signal], [1, null], 'exits even with the demo upstream started')
})
