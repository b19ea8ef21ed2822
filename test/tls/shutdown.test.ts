/**
 * A shutdown over HTTP/2: there is no `Connection: close` to send, so open sessions get a
 * GOAWAY (no new requests), requests in flight on them still finish, and idle sessions do not
 * hold the exit up.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { connect } from 'node:http2'
import { join } from 'node:path'
import { startGateway } from '../../src/main.js'
import { makeCa } from '../helpers/tls.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('a shutdown sends GOAWAY, lets the request in flight finish, and does not wait on idle sessions', async (t) => {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  await ca.issue('server')
  const up = await startUpstream(t)
  let held: ServerResponse | null = null
  let arrived: () => void = () => {}
  const arrival = new Promise<void>((resolve) => (arrived = resolve))
  up.handle((_req, res) => {
    held = res
    arrived()
  })
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: 0, logLevel: silent, shutdownTimeout: 10s, tls: { certFile: server.pem, keyFile: server.key } }\n` +
      `routes:\n  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n`,
  )
  const gw = await startGateway({ configPath: file, env: {} })
  const base = gw.url.replace('127.0.0.1', 'localhost')
  const busy = connect(base, { ca: ca.ca })
  const idle = connect(base, { ca: ca.ca })
  t.teardown(() => {
    busy.destroy()
    idle.destroy()
  })
  await new Promise((resolve) => idle.once('remoteSettings', resolve))
  const goaways = { busy: false, idle: false }
  busy.once('goaway', () => (goaways.busy = true))
  idle.once('goaway', () => (goaways.idle = true))
  const idleClosed = new Promise((resolve) => idle.once('close', resolve))

  const stream = busy.request({ ':path': '/pub/slow' })
  let status = 0
  let body = ''
  stream.on('response', (h) => (status = Number(h[':status'])))
  stream.setEncoding('utf8').on('data', (c: string) => (body += c))
  const done = new Promise((resolve) => stream.once('close', resolve))
  await arrival

  const started = Date.now()
  const closing = gw.close()
  await idleClosed
  t.ok(goaways.idle, 'the idle session was told to go away')
  t.ok(Date.now() - started < 5_000, 'and closed before the drain timeout')
  held!.writeHead(200, { 'content-type': 'text/plain' })
  held!.end('finished')
  await done
  t.same({ status, body }, { status: 200, body: 'finished' }, 'the request in flight finished')
  t.ok(goaways.busy, 'its session was told to go away too')
  await closing
  t.ok(Date.now() - started < 10_000, 'the shutdown did not wait for its timeout')
})
