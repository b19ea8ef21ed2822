/**
 * The Dockerfile and docker-compose.yml cannot be run here (no Docker engine), so they are
 * checked by reading, and every command they run is run for real: the compose stack as
 * processes (keygen, Redis with noeviction, the echo upstream, the gateway on the compose
 * config found through $PORTCULLIS_CONFIG).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { buildCli, ROOT, runCli, startProcess } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { freePort, startRedis } from '../helpers/redis.js'

interface Service {
  build?: string
  image?: string
  command?: string[]
  entrypoint?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  stop_grace_period?: string
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> }
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))

t.test('the Dockerfile copies only what exists and is let through .dockerignore, and ships what start needs', async (t) => {
  const allowed = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1))
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '))
  t.ok(sources.length >= 6)
  for (const source of sources) {
    t.ok(existsSync(join(ROOT, source)), `${source} exists`)
    t.ok(allowed.includes(source), `${source} is in the build context`)
  }
  // What `node dist/cli.js start` reads at run time besides dist/ and node_modules/.
  t.match(runtimeStage, /^COPY package\.json \.\/$/m, 'package.json (dist/ is ESM through it)')
  t.match(runtimeStage, /^COPY client \.\/client$/m, 'client/ (the sign-in and fetch scripts it serves)')
  t.match(runtimeStage, /^USER node$/m, 'runs as the unprivileged node user')
  t.match(dockerfile, /^RUN npm run build$/m)
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts['build'], 'tsc -p tsconfig.build.json', 'the build the tests run too (test/helpers/cli.ts)')
  const built = buildCli()
  for (const [, file] of runtimeStage.matchAll(/"node", "(dist\/[^"]+)"/g)) {
    t.ok(existsSync(join(built, file!.slice('dist/'.length))), `${file} is produced by the build`)
  }
})

t.test('docker-compose.yml wires a key made by keys generate, Redis with noeviction, and the echo upstream', async (t) => {
  const { gateway, keygen, redis, upstream } = compose.services
  t.ok(gateway && keygen && redis && upstream)
  t.same(keygen!.command!.slice(0, 2), ['keys', 'generate'])
  t.ok(keygen!.command!.includes('--if-missing'), 'a second `up` keeps the key')
  t.equal(gateway!.depends_on!['keygen']!.condition, 'service_completed_successfully')
  t.match(redis!.command!.join(' '), /--maxmemory-policy noeviction/)
  t.same(upstream!.entrypoint, ['node', 'dist/demo/echo-server.js'])
  t.ok(gateway!.volumes!.includes('./examples/compose:/etc/portcullis:ro'), 'the config directory is mounted (reload follows renames)')
  t.equal(gateway!.environment!['PORTCULLIS_CONFIG'], '/etc/portcullis/gateway.yaml')
  t.ok(Number.parseInt(gateway!.stop_grace_period!, 10) > 25, 'docker waits longer than server.shutdownTimeout')
})

t.test('the compose stack, run as processes: keygen, Redis, echo upstream, gateway on examples/compose', async (t) => {
  const keys = t.testdir()
  const keygen = ['keys', 'generate', '--alg', 'ES256', '--kid', 'compose-1', '--out', keys, '--if-missing']
  const first = await runCli(keygen)
  t.same([first.code, first.stdout.trim()], [0, join(keys, 'compose-1.pem')])
  t.equal((await runCli(keygen)).code, 0, 'the keygen step can run at every `up`')

  const redis = await startRedis(t, ['--maxmemory-policy', 'noeviction'])
  const echoPort = await freePort()
  const echo = spawn(process.execPath, [join(buildCli(), 'demo', 'echo-server.js')], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(echoPort) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const echoExit = new Promise<number | null>((resolve) => echo.once('exit', (code) => resolve(code)))
  t.teardown(() => void echo.kill('SIGKILL'))
  await new Promise((resolve) => echo.stdout!.once('data', resolve))

  const env = {
    PORTCULLIS_CONFIG: join(ROOT, 'examples', 'compose', 'gateway.yaml'),
    HOST: '127.0.0.1',
    PORT: '0',
    REDIS_URL: redis.url,
    UPSTREAM_URL: `http://127.0.0.1:${echoPort}`,
    PORTCULLIS_KEYS_DIR: keys,
  }
  t.same(await runCli(['check-config'], { env }).then((r) => [r.code, r.stdout]), [0, 'ok\n'])
  const gw = await startProcess(t, '', { env, args: ['start'] })
  t.equal((await send(gw.url, '/readyz')).status, 200, 'ready: Redis answers')
  const jwks = (await send(gw.url, '/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>()
  t.same(
    jwks.keys.map((k) => k.kid),
    ['compose-1'],
    'signs with the generated key',
  )
  const login = await send(gw.url, '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ username: 'alice', password: 'wonderland' }),
  })
  t.equal(login.status, 200)
  const answer = await send(gw.url, '/api/echo/x', { headers: { authorization: `Bearer ${String(login.json()['accessToken'])}` } })
  t.match(answer.json(), { service: 'echo', path: '/api/echo/x', user: 'alice' })

  gw.child.kill('SIGTERM')
  t.same(await gw.exited, { code: 0, signal: null })
  echo.kill('SIGTERM')
  t.equal(await echoExit, 0, 'the echo upstream stops cleanly on SIGTERM')
})
