import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startGateway } from '../../src/main.js'
import { raw, statusOf } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'

// Through the real GenerationServer (src/main.ts), which owns the 'upgrade' event.
async function gateway(t: Test, routes: string) {
  const dir = t.testdir({})
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, `server: { host: 127.0.0.1, port: 0, logLevel: silent }\nroutes:\n${routes}`)
  const gw = await startGateway({ configPath: file, env: {} })
  t.teardown(() => gw.close())
  return gw
}

const upgrade = (path: string, protocol: string) =>
  `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n` +
  (protocol === 'websocket'
    ? 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
    : 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n') +
  '\r\n'

t.test('an h2c upgrade offer is declined by answering the request in HTTP/1.1', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, `  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n`)
  const answer = await raw(gw.url, upgrade('/pub/x', 'h2c'))
  t.equal(statusOf(answer), 200)
  t.equal(up.last().headers['upgrade'], undefined, 'the upgrade offer is hop-by-hop')
  t.equal(statusOf(await raw(gw.url, upgrade('/healthz', 'h2c'))), 200)
})

t.test('a WebSocket upgrade to a route that does not take WebSockets is refused at once, not left hanging', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await gateway(
    t,
    `  - { name: ws, prefix: /ws, upstream: "${up.url}", auth: none, websocket: true }\n  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n`,
  )
  const started = Date.now()
  t.equal(statusOf(await raw(gw.url, upgrade('/pub/x', 'websocket'))), 400)
  t.equal(statusOf(await raw(gw.url, upgrade('/ws/../pub/x', 'websocket'))), 400, 'after normalisation too')
  t.ok(Date.now() - started < 1500, 'answered, not timed out')
  t.equal(statusOf(await raw(gw.url, upgrade('/ws/x', 'websocket'))), 101)
})

t.test('a WebSocket upgrade when no route takes WebSockets gets 404 JSON', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, `  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }\n`)
  const answer = await raw(gw.url, upgrade('/pub/x', 'websocket'))
  t.equal(statusOf(answer), 404)
  t.match(answer, /"code":"not_found"/)
})
