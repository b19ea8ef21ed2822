/**
 * server.bodyLimit on proxied bodies, maxHeaderSize (431), headersTimeout/requestTimeout (408)
 * and the per-route upstream timeouts, against real sockets, upstreams and the real process
 * wiring (src/main.ts).
 */
import { spawn } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { startGateway } from '../helpers/gateway.js'
import { send, statusOf } from '../helpers/http.js'
import { LISTEN, startRunning } from '../helpers/running.js'
import { startUpstream } from '../helpers/upstream.js'

const routes = (up: string) => `
routes:
  - { name: files, prefix: /files, upstream: "${up}", auth: none }
`

/** Opens a raw connection, writes `parts` (a part may be a pause in ms), collects the answer until close. */
function conversation(base: string, parts: Array<string | number>, timeoutMs = 5000): Promise<{ text: string; ms: number }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket: Socket = connect(Number(url.port), url.hostname)
    let text = ''
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    socket.on('data', (c) => (text += c.toString('utf8')))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, ms: Date.now() - started })
    })
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return
        if (typeof part === 'number') await new Promise((r) => setTimeout(r, part))
        else socket.write(part)
      }
    })
    socket.on('error', reject)
  })
}
const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>

t.test('a proxied body declaring more than server.bodyLimit gets 413 before the upstream is contacted', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `server: { bodyLimit: 1024 }\n${routes(up.url)}`)
  const headers = { 'content-type': 'application/octet-stream', 'content-length': '2000' }
  const res = await send(gw.url, '/files/upload', { method: 'POST', headers, body: 'x'.repeat(2000) })
  t.equal(res.status, 413)
  t.equal(res.json()['code'], 'payload_too_large')
  t.equal(res.headers['connection'], 'close', 'the rest of the body is not read')
  t.equal(up.seen.length, 0, 'the upstream never saw the request')
})

t.test('a chunked proxied body is cut with 413 once it grows past server.bodyLimit', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `server: { bodyLimit: 1024 }\n${routes(up.url)}`)
  const chunk = `258\r\n${'y'.repeat(600)}\r\n`
  const { text } = await conversation(gw.url, [
    'POST /files/upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n',
    chunk,
    50,
    chunk,
    50,
    chunk,
    50,
    chunk,
  ])
  t.equal(statusOf(text), 413)
  t.equal(bodyOf(text)['code'], 'payload_too_large')
  t.equal(up.seen.length, 0, 'the upstream never received a complete body')
})

t.test('bodies within the limit, declared or chunked, reach the upstream intact', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `server: { bodyLimit: 1024 }\n${routes(up.url)}`)
  const declared = await send(gw.url, '/files/a', {
    method: 'PUT',
    headers: { 'content-type': 'text/plain', 'content-length': '1024' },
    body: 'z'.repeat(1024),
  })
  t.equal(declared.status, 200)
  t.equal(up.last().body.length, 1024)
  const { text } = await conversation(gw.url, [
    'POST /files/b HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n',
    `200\r\n${'c'.repeat(512)}\r\n`,
    20,
    `200\r\n${'d'.repeat(512)}\r\n0\r\n\r\n`,
  ])
  t.equal(statusOf(text), 200)
  t.equal(up.last().body, 'c'.repeat(512) + 'd'.repeat(512))
})

t.test('a request head above server.maxHeaderSize gets 431 as JSON', async (t) => {
  const up = await startUpstream(t)
  const { gw } = await startRunning(t, `${LISTEN.replace('}', ', maxHeaderSize: 4096 }')}${routes(up.url)}`)
  const { text } = await conversation(gw.url, [`GET /files/x HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(6000)}\r\n\r\n`])
  t.equal(statusOf(text), 431)
  t.equal(bodyOf(text)['code'], 'request_header_too_large')
  t.equal(up.seen.length, 0)
  const fine = await send(gw.url, '/files/x', { headers: { 'x-big': 'b'.repeat(3000) } })
  t.equal(fine.status, 200, 'a head within the limit passes')
})

t.test('a client sending its head too slowly (slowloris) gets 408 after headersTimeout', async (t) => {
  const up = await startUpstream(t)
  const { gw } = await startRunning(t, `${LISTEN.replace('}', ', headersTimeout: 400ms, requestTimeout: 800ms }')}${routes(up.url)}`)
  const drip = Array.from({ length: 30 }, (_, i) => [`x-drip-${i}: 1\r\n`, 100]).flat()
  const { text, ms } = await conversation(gw.url, ['GET /files/x HTTP/1.1\r\nhost: x\r\n', ...drip])
  t.equal(statusOf(text), 408)
  t.equal(bodyOf(text)['code'], 'request_timeout')
  t.ok(ms >= 350 && ms < 1500, `closed after ${ms} ms (headersTimeout 400 ms)`)
  t.equal(up.seen.length, 0)
})

t.test('a body that trickles in slower than requestTimeout gets 408', async (t) => {
  const up = await startUpstream(t)
  const { gw } = await startRunning(t, `${LISTEN.replace('}', ', headersTimeout: 400ms, requestTimeout: 800ms }')}${routes(up.url)}`)
  const drip = Array.from({ length: 30 }, () => ['a', 100]).flat()
  const { text, ms } = await conversation(gw.url, [
    'POST /files/x HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 30\r\n\r\n',
    ...drip,
  ])
  t.equal(statusOf(text), 408)
  t.ok(ms >= 750 && ms < 2000, `closed after ${ms} ms (requestTimeout 800 ms)`)
})

t.test('an upstream that accepts but never answers gets 504 upstream_timeout after the route timeout', async (t) => {
  const accepted = new Set<Socket>()
  const silent = createServer((socket) => void accepted.add(socket))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of accepted) socket.destroy()
    silent.close()
  })
  const port = (silent.address() as { port: number }).port
  const gw = await startGateway(
    t,
    `
routes:
  - { name: slow, prefix: /slow, upstream: "http://127.0.0.1:${port}", auth: none, timeout: 300ms }
`,
  )
  const started = Date.now()
  const res = await send(gw.url, '/slow/x')
  const ms = Date.now() - started
  t.equal(res.status, 504)
  t.equal(res.json()['code'], 'upstream_timeout')
  // undici checks response timeouts on a coarse timer (about a second): 300 ms fires within ~1.5 s.
  t.ok(ms >= 280 && ms < 2500, `answered after ${ms} ms (timeout 300 ms)`)
  const metrics = await (await gw.fetch('/metrics')).text()
  t.match(metrics, /portcullis_upstream_errors_total\{route="slow",reason="timeout"\} 1/)
})

t.test('an upstream whose accept queue is full (connect hangs) gets 502 after connectTimeout', async (t) => {
  // A listener with a backlog of 1, stopped with SIGSTOP: once two connections fill its accept
  // queue the kernel drops further SYNs, so a connect hangs like one to a blackholed address,
  // without leaving loopback.
  const child = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => void child.kill('SIGKILL'))
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))))
  child.kill('SIGSTOP')
  const fillers = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
  t.teardown(() => {
    for (const s of fillers) s.destroy()
  })
  await new Promise((r) => setTimeout(r, 100))

  const gw = await startGateway(
    t,
    `
routes:
  - { name: stuck, prefix: /stuck, upstream: "http://127.0.0.1:${port}", auth: none, connectTimeout: 300ms, timeout: 5s }
`,
  )
  const started = Date.now()
  const res = await send(gw.url, '/stuck/x')
  const ms = Date.now() - started
  t.equal(res.status, 502)
  t.equal(res.json()['code'], 'upstream_unavailable')
  // undici checks connect timeouts on the same coarse timer; 5 s would be the response timeout.
  t.ok(ms >= 280 && ms < 2500, `answered after ${ms} ms (connectTimeout 300 ms, response timeout 5 s)`)
  t.match(gw.logText(), /UND_ERR_CONNECT_TIMEOUT/, 'the log names the connect timeout')
})

t.test('a headersTimeout longer than requestTimeout is a config problem, not a crash at start', async (t) => {
  const result = parseConfig('server:\n  requestTimeout: 10s\n  headersTimeout: 20s\n', { source: null, env: {} })
  t.equal(result.ok, false)
  if (!result.ok) t.match(result.problems, [{ path: 'server.headersTimeout', line: 3, message: /requestTimeout/ }])
})

t.test('the defaults are the documented safe ones', async (t) => {
  const result = parseConfig('routes:\n  - { name: a, prefix: /a, upstream: "http://127.0.0.1:1" }\n', { source: null, env: {} })
  if (!result.ok) throw new Error('the minimal config should load')
  const { server, routes } = result.config
  t.same(
    {
      bodyLimit: server.bodyLimit,
      maxHeaderSize: server.maxHeaderSize,
      requestTimeout: server.requestTimeout,
      headersTimeout: server.headersTimeout,
    },
    { bodyLimit: 1_048_576, maxHeaderSize: 16_384, requestTimeout: 60_000, headersTimeout: 20_000 },
  )
  t.same({ timeout: routes[0]!.timeout, connectTimeout: routes[0]!.connectTimeout }, { timeout: 30_000, connectTimeout: 5_000 })
})
