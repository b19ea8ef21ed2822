/**
 * server.tls across config reloads (src/main.ts, src/ops/restart-only.ts): new file names apply
 * at once, even before the files exist; HTTPS on or off and HTTP/2 on or off wait for a
 * restart, saying so. And a pair that cannot be served stops the start, and `check-config`,
 * naming the file.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startGateway } from '../../src/main.js'
import { runCli } from '../helpers/cli.js'
import { curl, fingerprintOf, makeCa, servedFingerprint } from '../helpers/tls.js'

const yaml = (tls: string) => `server:\n  host: 127.0.0.1\n  port: 0\n  logLevel: info\n${tls}routes: []\n`
const tlsBlock = (cert: string, key: string, more = '') => `  tls: { certFile: ${cert}, keyFile: ${key}${more} }\n`

async function running(t: Test) {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  const first = await ca.issue('first')
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, yaml(tlsBlock('first.pem', 'first.key')))
  const lines: Record<string, unknown>[] = []
  const logDestination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Record<string, unknown>)
      cb()
    },
  })
  const gw = await startGateway({ configPath: file, env: {}, logDestination })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const logged = async (test: (l: Record<string, unknown>) => boolean) => {
    for (let i = 0; i < 200 && !lines.some(test); i++) await new Promise((r) => setTimeout(r, 25))
    return lines.find(test)
  }
  return { dir, ca, first, file, gw, port, lines, logged }
}

t.test('a reload that names other files serves them at once', async (t) => {
  const r = await running(t)
  const second = await r.ca.issue('second')
  await writeFile(r.file, yaml(tlsBlock('second.pem', 'second.key')))
  t.match(await r.gw.reload(), { ok: true })
  t.equal(await servedFingerprint(r.port, r.ca.ca), fingerprintOf(second.pem))
  t.equal(r.gw.config().server.tls?.certFile, join(r.dir, 'second.pem'))
})

t.test('a reload naming files not there yet keeps the old pair, and loads the new one when it appears', async (t) => {
  const r = await running(t)
  await writeFile(r.file, yaml(tlsBlock('later.pem', 'later.key')))
  t.match(await r.gw.reload(), { ok: true }, 'the rest of the file applies')
  const refused = await r.logged((l) => String(l['msg']).startsWith('TLS certificate not loaded'))
  t.match(refused, { file: join(r.dir, 'later.pem'), msg: /later\.pem: cannot read the certificate: no such file/ })
  t.equal(await servedFingerprint(r.port, r.ca.ca), fingerprintOf(r.first.pem))

  const later = await r.ca.issue('later-src')
  await copyFile(later.keyFile, join(r.dir, 'later.key'))
  await copyFile(later.certFile, join(r.dir, 'later.pem'))
  const line = await r.logged((l) => l['msg'] === 'TLS certificate loaded' && l['fingerprint'] === fingerprintOf(later.pem))
  t.equal(line?.['trigger'], 'file change', 'the new files are watched')
  t.equal(await servedFingerprint(r.port, r.ca.ca), fingerprintOf(later.pem))
})

t.test('turning HTTPS off, or HTTP/2 off, waits for a restart and says so', async (t) => {
  const r = await running(t)
  await writeFile(r.file, yaml(''))
  await r.gw.reload()
  t.ok(await r.logged((l) => l['setting'] === 'server.tls' && l['msg'] === 'this setting only takes effect after a restart'))
  t.equal(await servedFingerprint(r.port, r.ca.ca), fingerprintOf(r.first.pem), 'still HTTPS')
  t.ok(r.gw.config().server.tls, 'the running config says so too')

  await writeFile(r.file, yaml(tlsBlock('first.pem', 'first.key', ', http2: false')))
  await r.gw.reload()
  t.ok(await r.logged((l) => l['setting'] === 'server.tls.http2'))
  t.equal((await curl(`https://localhost:${r.port}/healthz`, r.ca.caFile, ['--http2'])).version, '2', 'HTTP/2 is still offered')
  t.equal(r.gw.config().server.tls?.http2, true)
})

t.test('a start with a pair that cannot be served fails naming the file; check-config says the same at the setting', async (t) => {
  const dir = t.testdir({})
  const ca = await makeCa(dir)
  const a = await ca.issue('a')
  const b = await ca.issue('b')
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, yaml(tlsBlock('a.pem', 'b.key')))
  await t.rejects(startGateway({ configPath: file, env: {}, logDestination: new Writable({ write: (_c, _e, cb) => cb() }) }), {
    name: 'CertificateError',
    file: b.keyFile,
    message: /b\.key: this private key does not belong to the certificate in .*a\.pem/,
  })

  const start = await runCli(['start', '--config', file])
  t.equal(start.code, 1)
  t.match(start.stderr, `portcullis start: ${b.keyFile}: this private key does not belong`)

  const check = await runCli(['check-config', '--config', file])
  t.equal(check.code, 1)
  t.match(
    check.stdout,
    new RegExp(`gateway\\.yaml:5:\\d+ server\\.tls\\.keyFile: ${b.keyFile.replaceAll('.', '\\.')}: this private key does not belong`),
  )

  await writeFile(file, yaml(tlsBlock('a.pem', 'a.key')))
  t.equal((await runCli(['check-config', '--config', file])).stdout, 'ok\n')
  t.equal(a.keyFile, join(dir, 'a.key'))
})
