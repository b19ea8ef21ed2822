/**
 * The HTTP leg to the upstream (src/proxy/forward.ts): what a client gets back, byte for byte,
 * whether the upstream answers small, large, slowly, or not at all.
 */
import { once } from 'node:events'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { BUFFERED_RESPONSE_LIMIT } from '../../src/proxy/forward.js'
import { gatewayLocation } from '../../src/proxy/headers.js'
import { startGateway } from '../helpers/gateway.js'
import { raw, send, statusOf } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'
import { value } from '../ops/prometheus.js'

const config = (up: string) => `
routes:
  - { name: public, prefix: /public, upstream: "${up}", auth: none }
  - { name: moved, prefix: /shop, upstream: "${up}/internal", rewritePrefix: /v1, auth: none }
`

/** The access line of the request to `url`, once written (a cut-short one follows the close). */
async function accessLine(gw: { logs(): Record<string, unknown>[] }, url: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 50; i++) {
    const line = gw.logs().find((l) => l['msg'] === 'request' && (l['req'] as { url?: string } | undefined)?.url === url)
    if (line) return line
    await new Promise((r) => setTimeout(r, 20))
  }
  return undefined
}

/** A bare upstream whose handler sees each request as it arrives (before its body). */
async function liveUpstream(t: { teardown(fn: () => unknown): void }, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('Location on the upstream path space is mapped back behind the route prefix', async (t) => {
  const map = { prefix: '/shop', upstreamPrefix: '/internal/v1' }
  t.equal(gatewayLocation('/internal/v1/cart?id=1', map), '/shop/cart?id=1')
  t.equal(gatewayLocation('/internal/v1', map), '/shop')
  t.equal(gatewayLocation('/internal/v10/cart', map), '/internal/v10/cart', 'only on a segment boundary')
  t.equal(gatewayLocation('/elsewhere', map), '/elsewhere')
  t.equal(gatewayLocation('https://idp.example/login', map), 'https://idp.example/login')
  t.equal(gatewayLocation('//cdn.example/x', map), '//cdn.example/x', 'a scheme-relative URL is another host')
  t.equal(gatewayLocation('/x', { prefix: '/api', upstreamPrefix: '/' }), '/api/x', 'an upstream mounted at its root')
  t.equal(gatewayLocation('/api/x', { prefix: '/api', upstreamPrefix: '/api' }), '/api/x')

  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  up.handle((_req, res) => res.writeHead(302, { location: '/internal/v1/cart?id=1' }).end())
  const res = await send(gw.url, '/shop/checkout')
  t.equal(up.last().url, '/internal/v1/checkout')
  t.equal(res.status, 302)
  t.equal(res.headers.location, '/shop/cart?id=1')
})

t.test('small and large bodies, with and without a length, arrive byte for byte with their headers', async (t) => {
  const big = Buffer.alloc(BUFFERED_RESPONSE_LIMIT * 4 + 17, 'abcdefghij')
  const up = await liveUpstream(t, (req, res) => {
    if (req.url === '/public/small') return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5, 'x-up': 'yes' }).end('small')
    if (req.url === '/public/big') return res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length }).end(big)
    if (req.url === '/public/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('one,')
      return setTimeout(() => res.end('two'), 20)
    }
    if (req.url === '/public/untyped') return res.writeHead(200, { 'content-length': 3 }).end('raw')
    res.writeHead(404).end()
  })
  const gw = await startGateway(t, config(up))
  const small = await send(gw.url, '/public/small')
  t.equal(small.body, 'small')
  t.equal(small.headers['x-up'], 'yes')
  t.equal(small.headers['content-length'], '5')

  const whole = await fetch(`${gw.url}/public/big`)
  t.equal(whole.headers.get('content-length'), String(big.length))
  t.ok(Buffer.from(await whole.arrayBuffer()).equals(big), 'the large body is intact')
  t.match(whole.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'a streamed answer carries the gateway’s own headers too')
  const logged = gw.logs().find((l) => l['msg'] === 'request' && (l['req'] as { url?: string })?.url === '/public/big')
  t.match(logged, { status: 200, route: 'public' }, 'and is in the access log like any other')

  const chunked = await send(gw.url, '/public/chunked')
  t.equal(chunked.body, 'one,two')
  t.equal(chunked.headers['transfer-encoding'], 'chunked')

  const untyped = await send(gw.url, '/public/untyped')
  t.equal(untyped.body, 'raw')
  t.equal(untyped.headers['content-type'], undefined, 'the gateway does not invent a Content-Type')
})

t.test('a streamed response reaches the client as it is produced, not when it ends', async (t) => {
  let finish: () => void = () => {}
  const up = await liveUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: first\n\n')
    finish = () => res.end('data: last\n\n')
  })
  const gw = await startGateway(t, config(up))
  const res = await fetch(`${gw.url}/public/events`)
  const reader = res.body!.getReader()
  const first = await reader.read()
  t.equal(Buffer.from(first.value!).toString(), 'data: first\n\n', 'the first event arrives while the upstream is still open')
  finish()
  let rest = ''
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString()
  t.equal(rest, 'data: last\n\n')
})

t.test('a slow client holds the upstream back instead of filling the gateway memory', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 'x')
  let written = 0
  let paused = false
  const up = await liveUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const pump = () => {
      while (written < 64 * 1024 * 1024) {
        written += chunk.length
        if (!res.write(chunk)) {
          paused = true
          return void res.once('drain', pump)
        }
      }
      res.end()
    }
    pump()
  })
  const gw = await startGateway(t, config(up))
  const url = new URL(gw.url)
  const req = httpRequest({ host: url.hostname, port: url.port, path: '/public/huge', agent: false })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.pause() // a client that reads nothing
  await new Promise((r) => setTimeout(r, 300))
  t.ok(paused, 'the upstream met backpressure')
  t.ok(written < 16 * 1024 * 1024, `the upstream wrote ${written} bytes of 64 MiB, not all of them`)
  res.destroy()
})

t.test('a client that leaves before the answer cancels the upstream request', async (t) => {
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>((r) => (upstreamClosed = r))
  const up = await liveUpstream(t, (req, res) => {
    res.on('close', () => upstreamClosed()) // never answered: only the gateway can end it
    req.resume()
  })
  const gw = await startGateway(t, config(up))
  const url = new URL(gw.url)
  const req = httpRequest({ host: url.hostname, port: url.port, path: '/public/slow', agent: false })
  req.on('error', () => {})
  req.end()
  await new Promise((r) => setTimeout(r, 100))
  req.destroy()
  await closed
  t.pass('the upstream saw its request closed')
  const line = await accessLine(gw, '/public/slow')
  t.match(line, { status: 499, cutShort: 'client', route: 'public' }, 'the access log has it, as nginx logs a client that left')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.equal(value(metrics, 'portcullis_requests_total', { route: 'public', method: 'GET', status_class: '4xx' }), 1, 'and the metrics count it')
})

t.test('requests whose framing undici would refuse are still forwarded cleanly', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  // A GET with a body: Fastify ignores it, so no stale Content-Length may go upstream.
  const get = await raw(gw.url, 'GET /public/a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  t.equal(statusOf(get), 200)
  t.equal(up.last().headers['content-length'], undefined)
  // Expect: 100-continue is answered by the gateway and not forwarded (undici refuses it).
  const posted = await raw(
    gw.url,
    'POST /public/b HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi',
  )
  t.match(posted, /HTTP\/1\.1 200/)
  t.equal(up.last().body, 'hi')
  t.equal(up.last().headers['expect'], undefined)
})

t.test('an upstream 503 is passed on once, not retried behind the client', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  up.handle((_req, res) => res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end('busy'))
  const res = await send(gw.url, '/public/x')
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '5')
  t.equal(res.body, 'busy')
  t.equal(up.seen.length, 1)
})

t.test('HEAD, 204 and 304 answers keep their headers and carry no body', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  up.handle((req, res) => {
    if (req.method === 'HEAD') return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1234' }).end()
    if (req.url === '/public/none') return res.writeHead(204, { 'x-n': '1' }).end()
    res.writeHead(304, { etag: '"v1"' }).end()
  })
  const head = await send(gw.url, '/public/x', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '1234')
  t.equal(head.body, '')
  const none = await send(gw.url, '/public/none')
  t.equal(none.status, 204)
  t.equal(none.headers['x-n'], '1')
  const same = await send(gw.url, '/public/cached', { headers: { 'if-none-match': '"v1"' } })
  t.equal(same.status, 304)
  t.equal(same.headers.etag, '"v1"')
  t.equal(same.body, '')
})

t.test('an upstream that dies mid-body cuts the client off instead of sending a short body as whole', async (t) => {
  const up = await liveUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
    res.write('only part')
    setTimeout(() => res.destroy(), 20)
  })
  const gw = await startGateway(t, config(up))
  const answer = await raw(gw.url, 'GET /public/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  // A buffered body never got its end: the client gets a 502 problem, not 100 bytes promised and 9 sent.
  t.equal(statusOf(answer), 502)
  t.notMatch(answer, /only part/)
})

t.test('an upstream that dies mid-way through a streamed body cuts the client off, and the gateway serves on', async (t) => {
  const part = Buffer.alloc(BUFFERED_RESPONSE_LIMIT + 1000, 'p')
  const up = await liveUpstream(t, (req, res) => {
    if (req.url === '/public/ok') return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok')
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(part.length * 3) })
    res.write(part)
    setTimeout(() => res.destroy(), 50)
  })
  const gw = await startGateway(t, config(up))
  const sent = performance.now()
  const answer = await raw(gw.url, 'GET /public/big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  // raw() gives up after 2 s: a gateway that left the client hanging would get here too.
  t.ok(performance.now() - sent < 1500, 'the client connection was closed, not left hanging')
  t.ok(
    gw.logs().some((l) => l['msg'] === 'upstream failed mid-response' && l['level'] === 40),
    'and the failure is logged',
  )
  t.match(await accessLine(gw, '/public/big'), { status: 200, cutShort: 'upstream' }, 'the access line says the answer was cut short')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.equal(
    value(metrics, 'portcullis_requests_total', { route: 'public', method: 'GET', status_class: '5xx' }),
    1,
    'the metrics count it as a failure',
  )
  t.equal(statusOf(answer), 200, 'the headers had gone out before the upstream failed')
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
  t.ok(body.length >= part.length && body.length < part.length * 3, `the client got the ${body.length} bytes there were and then a closed connection`)
  t.equal((await send(gw.url, '/public/ok')).body, 'ok')
})

t.test('an upstream status outside 100–599 (600 here) becomes a 502 problem, not a crash', async (t) => {
  const server = createNetServer((socket) => {
    socket.on('error', () => {}) // the gateway drops the connection of an answer it refuses
    socket.once('data', (data) => {
      if (!data.toString().startsWith('GET /public/big '))
        return void socket.end('HTTP/1.1 600 Strange\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nhi')
      socket.end(
        `HTTP/1.1 600 Strange\r\ncontent-type: text/plain\r\ncontent-length: ${BUFFERED_RESPONSE_LIMIT + 1}\r\n\r\n${'x'.repeat(BUFFERED_RESPONSE_LIMIT + 1)}`,
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const gw = await startGateway(t, config(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  const res = await send(gw.url, '/public/x')
  t.equal(res.status, 502)
  t.equal(res.json()['code'], 'upstream_unavailable')
  const again = await send(gw.url, '/public/x')
  t.equal(again.status, 502, 'the gateway keeps serving')
  // A large answer takes the streamed path, which checks the status itself.
  const streamed = await send(gw.url, '/public/big')
  t.equal(streamed.status, 502)
  t.equal(streamed.json()['code'], 'upstream_unavailable')
})
