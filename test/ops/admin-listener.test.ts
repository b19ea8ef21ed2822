import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { writeKey } from '../../src/cli/keys-generate.js'
import { buildCli, ROOT, runCli, startProcess, type GatewayProcess } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { freePort } from '../helpers/redis-process.js'
import { startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'
import { total, value } from './prometheus.js'

t.before(() => void buildCli())

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

async function configFile(t: Test, yaml: string): Promise<string> {
  const file = join(t.testdir({}), 'gateway.yaml')
  await writeFile(file, yaml)
  return file
}

/** The admin listener's address, from its start line. */
async function adminUrl(gw: GatewayProcess): Promise<string> {
  return String((await gw.logged((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('admin listener')))['url'])
}

t.test('with server.admin, /metrics is served on the admin listener only, and /healthz and /readyz on both', async (t) => {
  const up = await startUpstream(t)
  const port = await freePort()
  // A root route: /metrics must not be proxied to it once it has left the public listener.
  const file = await configFile(
    t,
    `
server: { host: 127.0.0.1, port: 0, admin: { port: ${port} } }
routes: [{ name: all, prefix: /, upstream: "${up.url}", auth: none }]
`,
  )
  const gw = await startProcess(t, file)
  const admin = await adminUrl(gw)
  t.equal(admin, `http://127.0.0.1:${port}`, 'on 127.0.0.1 by default')

  const scraped = await send(admin, '/metrics')
  t.equal(scraped.status, 200)
  t.match(scraped.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(
    value(scraped.body, 'portcullis_build_info', { version: VERSION, node: process.version }),
    1,
    'build info with the package version and Node',
  )

  const hidden = await send(gw.url, '/metrics')
  t.equal(hidden.status, 404)
  t.equal(hidden.json()['code'], 'not_found')
  t.equal(up.seen.length, 0, 'the root route never saw /metrics')

  for (const base of [gw.url, admin]) {
    t.same((await send(base, '/healthz')).json(), { status: 'ok' }, `${base}/healthz`)
    const ready = await send(base, '/readyz')
    t.equal(ready.status, 200, `${base}/readyz`)
    t.same(ready.json(), { status: 'ready' })
  }
  const other = await send(admin, '/auth/login', { method: 'POST' })
  t.equal(other.status, 404, 'nothing else on the admin listener')
  t.equal(other.json()['code'], 'not_found')
  t.equal((await send(admin, '/metrics', { method: 'POST' })).status, 404)

  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)
  await t.rejects(send(admin, '/healthz'), 'the admin listener closed with the process')
})

t.test('a taken admin port stops the start with a message naming server.admin.port', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = (taken.address() as { port: number }).port
  const file = await configFile(t, `server: { host: 127.0.0.1, port: 0, admin: { port: ${port} } }\n`)
  const run = await runCli(['start', '--config', file])
  t.equal(run.code, 1)
  t.match(run.stderr, `127.0.0.1:${port} is already in use by another process: stop that process, or choose another server.admin.port in ${file}`)
})

t.test('with two workers, the admin listener of the primary reports what every worker served', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'w1', dir)
  const port = await freePort()
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `
server: { host: 127.0.0.1, port: 0, workers: 2, shutdownTimeout: 3s, admin: { port: ${port} } }
auth:
  keys: { algorithm: ES256, signing: [{ kid: w1, privateKeyFile: "${key}" }] }
store: { type: redis, url: "${redis.url}" }
routes: [{ name: open, prefix: /open, upstream: "${up.url}", auth: none }]
`,
  )
  const gw = await startProcess(t, file, { ownGroup: true, startTimeoutMs: 30_000 })
  const admin = await adminUrl(gw)
  const first = await gw.logged((l) => l['msg'] === 'portcullis listening')
  await gw.logged((l) => l['msg'] === 'portcullis listening' && l['pid'] !== first['pid'], 30_000)

  // A new connection per request: the primary hands connections to the workers in turn.
  for (let i = 0; i < 10; i++) t.equal((await send(gw.url, '/open/x')).status, 200)
  t.equal((await send(gw.url, '/metrics')).status, 404, 'no worker serves /metrics publicly')

  const text = (await send(admin, '/metrics')).body
  t.equal(total(text, 'portcullis_requests_total', { route: 'open' }), 10, "both workers' requests, summed")
  t.equal(value(text, 'portcullis_build_info', { version: VERSION, node: process.version }), 1, 'one build, not one per worker')
  t.equal(value(text, 'portcullis_store_up'), 1)
  t.same((await send(admin, '/readyz')).json(), { status: 'ready' })
  t.same((await send(admin, '/healthz')).json(), { status: 'ok' })

  process.kill(-gw.child.pid!, 'SIGTERM')
  t.equal((await gw.exited).code, 0)
  await t.rejects(send(admin, '/healthz'), 'the primary closed the admin listener on its way out')
})
