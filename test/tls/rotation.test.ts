/**
 * Certificate rotation on a running `portcullis start` process: SIGHUP, and a change to the
 * files (here as Kubernetes swaps a mounted Secret: one symlink renamed over another). New
 * connections get the new certificate; an open HTTP/2 connection, a keep-alive HTTP/1.1 one,
 * a WebSocket and a request in flight keep going on the old one. A bad pair is refused with
 * the file named, and the pair in service stays.
 */
import t, { type Test } from 'tap'
import { copyFile, mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import { Agent, request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import WebSocket from 'ws'
import { startProcess, type GatewayProcess } from '../helpers/cli.js'
import { fingerprintOf, makeCa, servedFingerprint, type Issued, type TestCa } from '../helpers/tls.js'
import { startUpstream } from '../helpers/upstream.js'

interface Setup {
  gw: GatewayProcess
  ca: TestCa
  port: number
  dir: string
  base: string
  first: Issued
  /** Responses of /pub/slow requests the upstream holds until the test releases them. */
  held: ServerResponse[]
  heldArrived(): Promise<void>
}

/**
 * `layout: 'secret'` mounts the pair as Kubernetes does: server.pem -> ..data/server.pem,
 * ..data -> a timestamped directory, swapped by renaming a new ..data link over the old one.
 * `'unwatched'` links tls/server.pem to store/current/server.pem with store/current a link to
 * a version directory: swapping store/current changes no directory the gateway watches (the
 * config's, and the one the link resolves to), so only a SIGHUP can load the new pair.
 */
async function start(t: Test, layout: 'files' | 'secret' | 'unwatched'): Promise<Setup> {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  const first = await ca.issue('first')
  const tlsDir = join(dir, 'tls')
  await mkdir(tlsDir)
  if (layout === 'files') {
    await copyFile(first.certFile, join(tlsDir, 'server.pem'))
    await copyFile(first.keyFile, join(tlsDir, 'server.key'))
  } else if (layout === 'unwatched') {
    await mountSecret(join(dir, 'store'), first, 'v1', 'current')
    await symlink('../store/current/server.pem', join(tlsDir, 'server.pem'))
    await symlink('../store/current/server.key', join(tlsDir, 'server.key'))
  } else {
    await mountSecret(tlsDir, first, 'v1')
    await symlink('..data/server.pem', join(tlsDir, 'server.pem'))
    await symlink('..data/server.key', join(tlsDir, 'server.key'))
  }
  const held: ServerResponse[] = []
  let arrived: () => void = () => {}
  const up = await startUpstream(t, { websocket: true })
  up.handle((req, res, body) => {
    if (req.url?.startsWith('/pub/slow')) {
      held.push(res)
      arrived()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ url: req.url, body }))
  })
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server:\n  host: 127.0.0.1\n  port: 0\n  logLevel: debug\n  tls: { certFile: tls/server.pem, keyFile: tls/server.key }\n` +
      `routes:\n  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none, websocket: true }\n`,
  )
  const gw = await startProcess(t, file)
  const port = Number(new URL(gw.url).port)
  return {
    gw,
    ca,
    port,
    dir,
    base: `https://localhost:${port}`,
    first,
    held,
    heldArrived: () => new Promise<void>((resolve) => (arrived = resolve)),
  }
}

/** Writes the pair into a new version directory and points the `link` at it in one rename. */
async function mountSecret(dir: string, pair: Issued, version: string, link = '..data'): Promise<void> {
  const data = join(dir, `..${version}`)
  await mkdir(data, { recursive: true })
  await copyFile(pair.certFile, join(data, 'server.pem'))
  await copyFile(pair.keyFile, join(data, 'server.key'))
  await symlink(`..${version}`, join(dir, `${link}_tmp`))
  await rename(join(dir, `${link}_tmp`), join(dir, link))
}

function h2get(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path })
    let status = 0
    let body = ''
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.setEncoding('utf8').on('data', (c: string) => (body += c))
    stream.on('end', () => resolve({ status, body }))
    stream.on('error', reject)
  })
}

/** An HTTP/1.1 request through `agent`; resolves with the status and the socket it went over. */
function h1get(agent: Agent, s: Setup, path: string): Promise<{ status: number; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${s.base}${path}`, { agent, ca: s.ca.ca }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }))
    })
    req.on('error', reject)
    req.end()
  })
}

function openSocket(s: Setup): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://localhost:${s.port}/pub/chat`, { ca: s.ca.ca })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve(data.toString()))
    ws.send(text)
  })
}

const loaded = (trigger: string) => (line: Record<string, unknown>) => line['msg'] === 'TLS certificate loaded' && line['trigger'] === trigger

/** Opens everything that must survive a rotation, with a request in flight; returns a check to run after it. */
async function longLived(t: Test, s: Setup) {
  const session = h2connect(s.base, { ca: s.ca.ca })
  t.teardown(() => session.close())
  t.equal((await h2get(session, '/pub/warm')).status, 200)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const firstH1 = await h1get(agent, s, '/pub/warm')
  const ws = await openSocket(s)
  t.teardown(() => ws.terminate())
  t.equal(await echo(ws, 'before'), 'echo:before')
  const arrived = s.heldArrived()
  const inFlight = h2get(session, '/pub/slow')
  await arrived

  return async () => {
    s.held[0]!.end('slow answer')
    t.same(await inFlight, { status: 200, body: 'slow answer' }, 'the request in flight during the rotation finished')
    t.equal((await h2get(session, '/pub/after')).status, 200, 'the open HTTP/2 connection takes new requests')
    t.equal(
      (session.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate().fingerprint256,
      fingerprintOf(s.first.pem),
      'on the session it negotiated with the old certificate',
    )
    const again = await h1get(agent, s, '/pub/after')
    t.equal(again.status, 200)
    t.equal(again.socket, firstH1.socket, 'the keep-alive HTTP/1.1 connection was reused, not dropped')
    t.equal(await echo(ws, 'after'), 'echo:after', 'the WebSocket is still open')
  }
}

t.test('SIGHUP puts a new certificate in service for new connections; open ones and a request in flight carry on', async (t) => {
  const s = await start(t, 'unwatched')
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(s.first.pem))
  const survived = await longLived(t, s)

  const second = await s.ca.issue('second')
  await mountSecret(join(s.dir, 'store'), second, 'v2', 'current')
  s.gw.child.kill('SIGHUP')
  const line = await s.gw.logged(loaded('reload'))
  t.match(line, { certFile: join(s.dir, 'tls', 'server.pem'), subject: /O=second/, fingerprint: fingerprintOf(second.pem) })
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(second.pem), 'a new connection is shown the new certificate')
  await survived()
})

t.test('a Secret-style symlink swap is picked up without a signal', async (t) => {
  const s = await start(t, 'secret')
  const survived = await longLived(t, s)
  const second = await s.ca.issue('second')
  await mountSecret(join(s.dir, 'tls'), second, 'v2')
  const line = await s.gw.logged(loaded('file change'))
  t.equal(line['fingerprint'], fingerprintOf(second.pem))
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(second.pem))
  await survived()
  t.notOk(
    s.gw.logs().some((l) => l['msg'] === 'TLS certificate loaded' && l['trigger'] === 'reload'),
    'no config reload was involved',
  )
})

t.test('a bad certificate or a key of another certificate is refused with the file named, and the old pair stays in service', async (t) => {
  const s = await start(t, 'files')
  const certFile = join(s.dir, 'tls', 'server.pem')
  const keyFile = join(s.dir, 'tls', 'server.key')

  await writeFile(certFile, '-----BEGIN CERTIFICATE-----\ntruncated')
  s.gw.child.kill('SIGHUP')
  const garbled = await s.gw.logged((l) => l['msg'] !== undefined && String(l['msg']).startsWith('TLS certificate not loaded'))
  t.equal(garbled['level'], 50, 'logged as an error')
  t.equal(garbled['file'], certFile)
  t.match(String(garbled['msg']), `${certFile}: not a PEM certificate`)
  t.match(String(garbled['msg']), /still serving the previous one \(CN=localhost, O=first, expires/)
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(s.first.pem), 'the previous certificate is still served')

  const second = await s.ca.issue('second')
  const third = await s.ca.issue('third')
  await copyFile(second.certFile, certFile)
  await copyFile(third.keyFile, keyFile)
  s.gw.child.kill('SIGHUP')
  const mismatched = await s.gw.logged((l) => String(l['msg']).includes('does not belong to the certificate'))
  t.equal(mismatched['file'], keyFile, 'the key is the file named')
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(s.first.pem))

  const metrics = await fetchText(s, '/metrics')
  t.match(metrics, /portcullis_tls_certificate_reloads_total\{result="rejected"\} [2-9]/, 'refusals are counted')
  t.match(metrics, /portcullis_tls_certificate_expiry_timestamp_seconds\{subject="CN=localhost, O=first"\} \d+/)

  await copyFile(second.keyFile, keyFile)
  s.gw.child.kill('SIGHUP')
  await s.gw.logged((l) => l['msg'] === 'TLS certificate loaded' && l['fingerprint'] === fingerprintOf(second.pem))
  t.equal(await servedFingerprint(s.port, s.ca.ca), fingerprintOf(second.pem), 'once the pair is sound it is served')
  t.match(await fetchText(s, '/metrics'), /portcullis_tls_certificate_reloads_total\{result="ok"\} [1-9]/)
})

function fetchText(s: Setup, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpsRequest(`${s.base}${path}`, { ca: s.ca.ca, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => (text += c))
      res.on('end', () => resolve(text))
    })
      .on('error', reject)
      .end()
  })
}
