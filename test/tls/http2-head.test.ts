/**
 * An HTTP/2 request names its target's authority in `:authority`, not Host (RFC 9113 §8.3.1):
 * the head checks of src/request-head.ts hold for it as for HTTP/1.1, and what the gateway
 * does with the host (X-Forwarded-Host, the CSRF origin) reads the authority. Node's own
 * HTTP/2 client, which sends pseudo-headers as given.
 */
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { join } from 'node:path'
import { startGateway } from '../../src/main.js'
import { makeCa } from '../helpers/tls.js'
import { startUpstream } from '../helpers/upstream.js'

async function h2Gateway(t: Test) {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  await ca.issue('server')
  const up = await startUpstream(t)
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: 0, logLevel: silent, tls: { certFile: server.pem, keyFile: server.key } }\n` +
      `routes:\n  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n`,
  )
  const gw = await startGateway({ configPath: file, env: {} })
  t.teardown(() => gw.close())
  const session = connect(gw.url.replace('127.0.0.1', 'localhost'), { ca: ca.ca })
  t.teardown(() => session.close())
  return { session, up }
}

function request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
): Promise<{ status: number; code: string | null; headers: OutgoingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/pub/x', ...headers })
    let status = 0
    let head: OutgoingHttpHeaders = {}
    let body = ''
    stream.on('response', (h) => {
      status = Number(h[':status'])
      head = h
    })
    stream.setEncoding('utf8').on('data', (c: string) => (body += c))
    stream.on('end', () =>
      resolve({
        status,
        code: /problem\+json/.test(String(head['content-type'])) ? (JSON.parse(body) as { code: string }).code : null,
        headers: head,
      }),
    )
    stream.on('error', reject)
  })
}

t.test('an :authority that is not uri-host[:port] is refused and never forwarded', async (t) => {
  const { session, up } = await h2Gateway(t)
  // Refused either by the gateway (400) or, for some of them on newer Node lines (24 resets
  // `user@a.example` itself), by Node's HTTP/2 parser before the gateway sees them: both are
  // refusals, and neither reaches the upstream (checked below).
  for (const authority of ['user@a.example', 'a.example,b.example', '[::1', 'a:port', 'a%zz', '[fe80::1%eth0]']) {
    const answer = await request(session, { ':authority': authority }).then(
      (a) => ({ status: a.status, code: a.code }),
      (err: { code?: string }) => ({ status: 0, code: err.code }),
    )
    const refused = (answer.status === 400 && answer.code === 'invalid_request') || (answer.status === 0 && answer.code === 'ERR_HTTP2_STREAM_ERROR')
    t.ok(refused, `${JSON.stringify(authority)}: ${JSON.stringify(answer)}`)
  }
  // Characters no authority may hold: Node's HTTP/2 parser (nghttp2) resets the stream itself,
  // the HTTP/2 way to refuse a malformed request (RFC 9113 §8.1.1).
  for (const authority of ['evil.example/x', 'a b', '', 'caf\u00e9.example']) {
    await t.rejects(request(session, { ':authority': authority }), { code: 'ERR_HTTP2_STREAM_ERROR' }, JSON.stringify(authority))
  }
  t.equal(up.seen.length, 0)
  t.equal((await request(session, { ':authority': 'gw.example:8443' })).status, 200, 'a sound one is served on the same connection')
  t.equal(up.last().headers['x-forwarded-host'], 'gw.example:8443')
})

t.test('a Host that names another authority than :authority is refused; the same one, in any case, is served', async (t) => {
  const { session, up } = await h2Gateway(t)
  const refused = await request(session, { ':authority': 'gw.example', host: 'evil.example' })
  t.same({ status: refused.status, code: refused.code }, { status: 400, code: 'invalid_request' })
  t.equal(up.seen.length, 0)
  t.equal((await request(session, { ':authority': 'gw.example', host: 'GW.example' })).status, 200)
  t.equal(up.last().headers['x-forwarded-host'], 'GW.example', 'the client’s Host is what it sent')
})
