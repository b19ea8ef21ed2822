import t from 'tap'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeKey } from '../../src/cli/keys-generate.js'
import { openUrl } from '../../src/listen.js'
import { buildCli, runCli, spawnCli, startProcess } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'

t.before(() => void buildCli())

const at = (address: string, port = 8080): AddressInfo => ({ address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' })

t.test('the start line names localhost for a wildcard or loopback address, where the __Host- cookie works', async (t) => {
  t.equal(openUrl(at('0.0.0.0'), 'http'), 'http://localhost:8080')
  t.equal(openUrl(at('::'), 'http'), 'http://localhost:8080')
  t.equal(openUrl(at('127.0.0.1', 9000), 'https'), 'https://localhost:9000')
  t.equal(openUrl(at('10.1.2.3'), 'http'), 'http://10.1.2.3:8080', 'any other address as it is')
  t.equal(openUrl(at('fd00::1'), 'http'), 'http://[fd00::1]:8080')
})

t.test('portcullis start logs a localhost URL and the address it is bound to', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'server: { host: 127.0.0.1, port: 0 }\n' })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const line = gw.logs().find((l) => l['msg'] === 'portcullis listening')!
  const port = Number(String(line['address']).split(':')[1])
  t.same([line['url'], line['address']], [`http://localhost:${port}`, `127.0.0.1:${port}`])
  const health = await fetch(`${String(line['url'])}/healthz`)
  t.equal(health.status, 200, 'the URL it prints answers')
})

t.test('a taken port stops start with one line naming the address and server.port in the config file, and exit 1', async (t) => {
  const taken = createServer()
  taken.listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  const { port } = taken.address() as AddressInfo
  const dir = t.testdir({ 'gateway.yaml': `server: { host: 127.0.0.1, port: ${port} }\n` })
  const file = join(dir, 'gateway.yaml')

  const run = await runCli(['start', '--config', file])
  t.equal(run.code, 1)
  t.equal(
    run.stderr,
    `portcullis start: 127.0.0.1:${port} is already in use by another process: stop that process, or choose another server.port in ${file}\n`,
  )
})

t.test('with workers, a taken port is said once by the primary, which stops instead of forking again', async (t) => {
  const redis = await startRedis(t)
  const taken = createServer()
  taken.listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  const { port } = taken.address() as AddressInfo
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'k1', dir)
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: ${port}, workers: 2 }
auth: { keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: "${key}" }] } }
store: { type: redis, url: "${redis.url}" }
`,
  )
  // Not runCli: four processes starting on a busy machine can take longer than its 20 s.
  const child = spawnCli(['start', '--config', file])
  const run = { stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (run.stdout += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (run.stderr += c))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)
  t.equal(code, 1)
  t.equal(
    run.stderr,
    `portcullis start: 127.0.0.1:${port} is already in use by another process: stop that process, or choose another server.port in ${file}\n`,
  )
  t.notMatch(run.stdout, /worker exited; starting another/, 'no worker is forked again')
  t.match(run.stdout, /"msg":"workers cannot listen: giving up"/)
})
