/**
 * server.tls: the gateway terminates HTTPS itself, with HTTP/2 and HTTP/1.1 offered by ALPN.
 * A real gateway (src/main.ts) with a certificate from a CA made here, and the curl CLI
 * trusting only that CA.
 */
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:http2'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startGateway } from '../../src/main.js'
import { makeToken } from '../helpers/tokens.js'
import { curl, makeCa } from '../helpers/tls.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

async function httpsGateway(t: Test, opts: { http2?: boolean; bodyLimit?: number } = {}) {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  await ca.issue('server')
  const up = await startUpstream(t, { websocket: true })
  const file = join(dir, 'gateway.yaml')
  // The files are named relative to the config file, as an operator would.
  await writeFile(
    file,
    `server:\n  host: 127.0.0.1\n  port: 0\n  logLevel: silent\n  bodyLimit: ${opts.bodyLimit ?? 1048576}\n  tls: { certFile: server.pem, keyFile: server.key${opts.http2 === false ? ', http2: false' : ''} }\n` +
      `routes:\n  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n  - { name: api, prefix: /api, upstream: "${up.url}" }\n` +
      `  - { name: ws, prefix: /ws, upstream: "${up.url}", websocket: true }\n`,
  )
  const gw = await startGateway({ configPath: file, env: {} })
  t.teardown(() => gw.close())
  return { gw, ca, up, base: gw.url.replace('127.0.0.1', 'localhost') }
}

const seenBy = (up: Upstream) => up.last().headers

t.test('curl speaks HTTP/2 and HTTP/1.1 to the gateway over TLS, trusting only the test CA', async (t) => {
  const { gw, ca, up, base } = await httpsGateway(t)
  t.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the gateway says where it listens with https')

  const h2 = await curl(`${base}/pub/x?a=1`, ca.caFile, ['--http2'])
  t.equal(h2.version, '2', 'h2 chosen by ALPN')
  t.equal(h2.status, 200)
  t.equal(JSON.parse(h2.body).url, '/pub/x?a=1')
  const forwarded = seenBy(up)
  t.equal(forwarded['x-forwarded-proto'], 'https', 'the upstream is told the client used https')
  t.equal(forwarded['x-forwarded-host'], new URL(base).host, 'the HTTP/2 :authority travels as X-Forwarded-Host')
  t.equal(forwarded['host'], `127.0.0.1:${up.port}`)
  t.same(
    Object.keys(forwarded).filter((name) => name.startsWith(':')),
    [],
    'no pseudo-header reaches the upstream',
  )

  const h1 = await curl(`${base}/pub/y`, ca.caFile, ['--http1.1'])
  t.equal(h1.version, '1.1')
  t.equal(h1.status, 200)
  t.equal(seenBy(up)['x-forwarded-proto'], 'https')
  t.equal(seenBy(up)['x-forwarded-host'], new URL(base).host)

  t.equal((await curl(`https://127.0.0.1:${new URL(base).port}/healthz`, ca.caFile, ['--http2'])).status, 200, 'by IP address too')
})

t.test('a protected route authenticates over HTTP/2 and sends the identity headers', async (t) => {
  const { gw, ca, up, base } = await httpsGateway(t)
  const refused = await curl(`${base}/api/orders`, ca.caFile, ['--http2'])
  t.equal(refused.version, '2')
  t.equal(refused.status, 401)
  t.equal(JSON.parse(refused.body).code, 'missing_token')
  t.equal(up.seen.length, 0)
  const token = await makeToken(gw.keyring(), { sub: 'u-h2' })
  const ok = await curl(`${base}/api/orders`, ca.caFile, ['--http2', '-H', `authorization: Bearer ${token}`, '-H', 'x-user-id: root'])
  t.equal(ok.status, 200)
  t.equal(seenBy(up)['x-user-id'], 'u-h2', 'the spoofed identity header is replaced')
  t.equal(seenBy(up)['authorization'], undefined)
})

t.test('a POST body travels over HTTP/2 to the upstream', async (t) => {
  const { ca, up, base } = await httpsGateway(t)
  const body = 'x'.repeat(100_000)
  const answer = await curl(`${base}/pub/upload`, ca.caFile, ['--http2', '-H', 'content-type: text/plain', '--data-binary', body])
  t.equal(answer.status, 200)
  t.equal(up.last().body.length, body.length)
  t.equal(up.last().method, 'POST')
})

t.test('an HTTP/2 upload over the body limit gets 413, the stream is reset with NO_ERROR, and the connection serves on', async (t) => {
  const { ca, up, base } = await httpsGateway(t, { bodyLimit: 4096 })
  const session = connect(base, { ca: ca.ca })
  t.teardown(() => session.destroy())
  // No Content-Length, as HTTP/2 allows: the body is counted as it arrives. Far more than the
  // stream's flow-control window, so the client cannot send it all unless told to stop.
  const big = session.request({ ':method': 'POST', ':path': '/pub/upload', 'content-type': 'application/octet-stream' })
  big.end(Buffer.alloc(4 * 1024 * 1024))
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    let status = 0
    let body = ''
    big.on('response', (h) => (status = Number(h[':status'])))
    big.setEncoding('utf8').on('data', (c: string) => (body += c))
    big.on('end', () => resolve({ status, body }))
    big.on('error', reject)
  })
  t.equal(answer.status, 413)
  t.match(answer.body, /"code":"payload_too_large"/)
  // Node's client marks the stream closed on the RST_STREAM, though it holds its 'close' event
  // while its own unsent writes are pending.
  for (let i = 0; i < 100 && !big.closed; i++) await new Promise((r) => setTimeout(r, 20))
  t.ok(big.closed, 'the gateway reset the stream: the client may stop sending (RFC 9113 §8.1)')
  t.equal(big.rstCode, 0, 'with NO_ERROR, so the answer stands')
  t.equal(up.seen.filter((s) => s.url === '/pub/upload').length, 0, 'the upload never reached the upstream whole')
  const next = session.request({ ':path': '/pub/after' })
  const status = await new Promise<number>((resolve) => next.on('response', (h) => resolve(Number(h[':status']))))
  next.resume()
  t.equal(status, 200, 'the same connection takes the next request')
})

t.test('TLS 1.1 and older are refused; TLS 1.2 and 1.3 are served', async (t) => {
  const { ca, base } = await httpsGateway(t)
  t.equal((await curl(`${base}/healthz`, ca.caFile, ['--tlsv1.2', '--tls-max', '1.2'])).status, 200, 'TLS 1.2')
  t.equal((await curl(`${base}/healthz`, ca.caFile, ['--tlsv1.3'])).status, 200, 'TLS 1.3')
  // OpenSSL 3's default security level will not even offer TLS 1.1: lower it on the client only.
  await t.rejects(curl(`${base}/healthz`, ca.caFile, ['--tlsv1.0', '--tls-max', '1.1', '--ciphers', 'DEFAULT@SECLEVEL=0']), /protocol version/)
})

t.test('a client that does not trust the CA is refused at the handshake', async (t) => {
  const { base } = await httpsGateway(t)
  const other = await makeCa(t.testdir({}), 'Some Other CA')
  await t.rejects(curl(`${base}/healthz`, other.caFile), /certificate/i)
})

t.test('with http2: false only HTTP/1.1 is offered, and a client asking for h2 gets HTTP/1.1', async (t) => {
  const { ca, up, base } = await httpsGateway(t, { http2: false })
  const answer = await curl(`${base}/pub/x`, ca.caFile, ['--http2'])
  t.equal(answer.version, '1.1')
  t.equal(answer.status, 200)
  t.equal(seenBy(up)['x-forwarded-proto'], 'https')
})

t.test('plain HTTP to the HTTPS port gets no answer in HTTP', async (t) => {
  const { base } = await httpsGateway(t)
  await t.rejects(curl(base.replace('https:', 'http:') + '/healthz', '/dev/null', ['--max-time', '3']))
})

t.test('a WebSocket over wss:// reaches its upstream through the gateway, authenticated, and learns the client used https', async (t) => {
  const { gw, ca, up, base } = await httpsGateway(t)
  const token = await makeToken(gw.keyring(), { sub: 'u-wss' })
  const ws = new WebSocket(`${base.replace('https:', 'wss:')}/ws/chat`, { ca: ca.ca, headers: { authorization: `Bearer ${token}` } })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())))
  ws.send('over tls')
  t.equal(await reply, 'echo:over tls')
  t.match(up.last(), { method: 'WS', url: '/ws/chat', headers: { 'x-user-id': 'u-wss', 'x-forwarded-proto': 'https' } })

  const anonymous = new WebSocket(`${base.replace('https:', 'wss:')}/ws/chat`, { ca: ca.ca })
  const status = await new Promise<number>((resolve) => anonymous.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  t.equal(status, 401, 'without a token the upgrade is refused, as over plain HTTP')
})
