import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { buildCli } from '../helpers/cli.js'
import { freePort } from '../helpers/redis.js'
import { startRunning } from '../helpers/running.js'

/** `node dist/ops/healthcheck.js [args]`, exactly the Dockerfile's HEALTHCHECK command. */
function healthcheck(args: string[], env: Record<string, string>, cwd?: string): Promise<{ code: number | null; ms: number }> {
  const started = performance.now()
  const child = spawn(process.execPath, [join(buildCli(), 'ops', 'healthcheck.js'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    ...(cwd ? { cwd } : {}),
    stdio: 'ignore',
  })
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, ms: performance.now() - started })))
}

t.before(() => void buildCli())

t.test('the healthcheck finds the port in the config the gateway runs, and says 0 while it is up', async (t) => {
  const port = await freePort()
  const run = await startRunning(t, `server: { host: 127.0.0.1, port: ${port} }\n`)
  const viaEnv = await healthcheck([], { PORTCULLIS_CONFIG: run.file })
  t.equal(viaEnv.code, 0, `PORTCULLIS_CONFIG (took ${Math.round(viaEnv.ms)} ms)`)
  t.equal((await healthcheck(['--config', run.file], {})).code, 0, '--config')
  t.equal((await healthcheck([], {}, run.dir)).code, 0, './gateway.yaml')

  await run.gw.close()
  t.equal((await healthcheck([], { PORTCULLIS_CONFIG: run.file })).code, 1, 'and 1 once it is gone')
})

t.test('a ${PORT} in server.port is expanded as the gateway expands it', async (t) => {
  const port = await freePort()
  // Block style: a plain ${...} is read as a number once expanded (in { } it would need quotes, and stay a string).
  const run = await startRunning(t, 'server:\n  host: 127.0.0.1\n  port: ${PORT:-8080}\n', { env: { PORT: String(port) } })
  t.equal((await healthcheck([], { PORTCULLIS_CONFIG: run.file, PORT: String(port) })).code, 0)
  t.equal((await healthcheck([], { PORTCULLIS_CONFIG: run.file, PORT: String(await freePort()) })).code, 1, 'another port finds nothing')
})

t.test('a gateway that answers /healthz with anything but 200 is unhealthy', async (t) => {
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => res.writeHead(503).end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const port = (server.address() as { port: number }).port
  const dir = t.testdir({ 'gateway.yaml': `server: { host: 127.0.0.1, port: ${port} }\n` })
  t.equal((await healthcheck(['--config', join(dir, 'gateway.yaml')], {})).code, 1)
})
