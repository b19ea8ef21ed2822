/**
 * A request's head as RFC 9112 wants it (src/request-head.ts): one valid Host, an HTTP/1.x
 * request line. Raw sockets, since an HTTP client library would not send these requests, and
 * the real GenerationServer (src/main.ts), which answers them before any generation does.
 */
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startGateway } from '../../src/main.js'
import { validHost } from '../../src/request-head.js'
import { raw, statusOf } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'

async function gateway(t: Test, upstream: string) {
  const dir = t.testdir({})
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: 0, logLevel: silent }\nroutes:\n` +
      `  - { name: pub, prefix: /pub, upstream: "${upstream}", auth: none }\n` +
      `  - { name: ws, prefix: /ws, upstream: "${upstream}", auth: none, websocket: true }\n`,
  )
  const gw = await startGateway({ configPath: file, env: {} })
  t.teardown(() => gw.close())
  return gw
}

const get = (head: string) => `GET /pub/x HTTP/1.1\r\n${head}Connection: close\r\n\r\n`

/** The status, and the problem's code when the answer is a JSON problem. */
function answerOf(text: string): { status: number; code: string | null } {
  const [head = '', body = ''] = text.split('\r\n\r\n')
  const json = /content-type: application\/problem\+json/i.test(head) ? (JSON.parse(body) as { code: string }) : null
  return { status: statusOf(text), code: json?.code ?? null }
}

t.test('two Host header lines are answered 400 invalid_request and never forwarded', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, up.url)
  t.same(answerOf(await raw(gw.url, get('Host: a.example\r\nHost: b.example\r\n'))), { status: 400, code: 'invalid_request' })
  t.same(
    answerOf(await raw(gw.url, get('Host: a.example\r\nhOsT: a.example\r\n'))),
    { status: 400, code: 'invalid_request' },
    'in any case, even the same value',
  )
  t.equal(up.seen.length, 0)
})

t.test('a Host that is not uri-host[:port] is answered 400 invalid_request and never forwarded; one that is, is served', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, up.url)
  for (const host of [
    'evil.example/x',
    'a b',
    '[::1',
    'a:port',
    '',
    ':8080',
    'user@a.example',
    'a.example,b.example',
    'a\tb',
    '[fe80::1%eth0]',
    '[::1]x',
    'caf\u00e9.example',
  ]) {
    const answer = answerOf(await raw(gw.url, get(`Host: ${host}\r\n`)))
    t.same(answer, { status: 400, code: 'invalid_request' }, JSON.stringify(host))
  }
  t.equal(up.seen.length, 0)
  for (const host of [
    'gw.example',
    'gw.example:8080',
    '127.0.0.1:80',
    '[::1]:8080',
    '[::1]',
    'xn--bcher-kva.example',
    'b%C3%BCcher.example',
    'gw.example:',
  ]) {
    t.equal(statusOf(await raw(gw.url, get(`Host: ${host}\r\n`))), 200, host)
    t.equal(up.last().headers['x-forwarded-host'], host)
  }
})

t.test('an HTTP/1.1 request without Host gets a 400 JSON problem; HTTP/1.0 may omit it', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, up.url)
  t.same(answerOf(await raw(gw.url, get(''))), { status: 400, code: 'invalid_request' })
  t.equal(up.seen.length, 0)
  t.equal(statusOf(await raw(gw.url, 'GET /pub/x HTTP/1.0\r\n\r\n')), 200)
})

t.test('a request line without an HTTP version, or with one other than 1.x, is answered 400 and never forwarded', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, up.url)
  t.same(answerOf(await raw(gw.url, 'GET /pub/x\r\n\r\n')), { status: 400, code: 'invalid_request' }, 'HTTP/0.9 style')
  t.same(answerOf(await raw(gw.url, 'GET /pub/x\r\nHost: gw.example\r\n\r\n')), { status: 400, code: 'invalid_request' }, 'with headers after it')
  t.same(answerOf(await raw(gw.url, 'GET /pub/x HTTP/0.9\r\n\r\n')), { status: 400, code: 'invalid_request' })
  t.same(answerOf(await raw(gw.url, get('Host: gw.example\r\n').replace('HTTP/1.1', 'HTTP/2.0'))), { status: 400, code: 'invalid_request' })
  t.equal(up.seen.length, 0)
})

t.test('a WebSocket upgrade with two Hosts or an invalid one is refused before it reaches the upstream', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await gateway(t, up.url)
  const upgrade = (hosts: string) =>
    `GET /ws/x HTTP/1.1\r\n${hosts}Connection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  t.same(answerOf(await raw(gw.url, upgrade('Host: a.example\r\nHost: b.example\r\n'))), { status: 400, code: 'invalid_request' })
  t.same(answerOf(await raw(gw.url, upgrade('Host: a b\r\n'))), { status: 400, code: 'invalid_request' })
  t.same(answerOf(await raw(gw.url, upgrade(''))), { status: 400, code: 'invalid_request' })
  t.equal(up.seen.length, 0)
  t.equal(statusOf(await raw(gw.url, upgrade('Host: a.example\r\n'))), 101)
})

t.test('a request expecting 100-continue with a bad Host gets its 400 without a 100', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, up.url)
  const answer = await raw(gw.url, 'POST /pub/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n')
  t.same(answerOf(answer), { status: 400, code: 'invalid_request' })
  t.notMatch(answer, /100 Continue/)
  t.equal(up.seen.length, 0)
})

t.test('validHost follows RFC 9110 §7.2 without its comma', async (t) => {
  for (const ok of ['a', 'a.b-c_d~e', "!$&'()*+;=", '%41', '1.2.3.4:65535', '[2001:db8::1]:443', 'a:']) t.ok(validHost(ok), ok)
  for (const bad of ['', '%4', '%zz', 'a,b', '[2001:db8::1', '[v1.x]', 'a:-1', 'a:1a', 'a/b', 'a?b', 'a#b', 'a@b', '\u00e9'])
    t.notOk(validHost(bad), bad)
})
