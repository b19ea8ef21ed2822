import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { writeKey } from '../../src/cli/keys-generate.js'
import { hashPassword } from '../../src/auth/passwords.js'
import { writeFile } from 'node:fs/promises'
import { buildCli, startProcess, type GatewayProcess } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { waitFor } from '../helpers/redis-process.js'
import { startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'

t.before(() => void buildCli())

/** A gateway.yaml for two workers sharing `redisUrl`, with user ann (password pw) and these routes. */
async function workersConfig(t: Test, redisUrl: string, routes: string[]): Promise<string> {
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'w1', dir)
  const hash = await hashPassword('pw')
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `
server: { host: 127.0.0.1, port: 0, workers: 2, shutdownTimeout: 3s }
auth:
  keys: { algorithm: ES256, signing: [{ kid: w1, privateKeyFile: "${key}" }] }
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${hash}" }] }]
store: { type: redis, url: "${redisUrl}" }
routes:
${routes.map((r) => `  - ${r}`).join('\n')}
`,
  )
  return file
}

/** Waits until both workers say they listen; returns their pids. */
async function bothListening(gw: GatewayProcess): Promise<unknown[]> {
  const first = await gw.logged((l) => l['msg'] === 'portcullis listening')
  const second = await gw.logged((l) => l['msg'] === 'portcullis listening' && l['pid'] !== first['pid'])
  return [first['pid'], second['pid']]
}

t.test('server.workers runs several processes on one port that share sessions and revocations, and all drain on SIGTERM', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  // Answers after 800 ms: requests still in flight when the signal comes.
  const slow = createServer((req, res) => {
    req.resume()
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow'), 800)
  })
  slow.listen(0, '127.0.0.1')
  await once(slow, 'listening')
  t.teardown(() => {
    slow.closeAllConnections()
    slow.close()
  })
  const file = await workersConfig(t, redis.url, [
    `{ name: api, prefix: /api, upstream: "${up.url}" }`,
    `{ name: slow, prefix: /slow, upstream: "http://127.0.0.1:${(slow.address() as AddressInfo).port}", auth: none }`,
  ])
  const gw = await startProcess(t, file, { ownGroup: true })
  await bothListening(gw)
  const login = await send(gw.url, '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ username: 'ann', password: 'pw' }),
  })
  t.equal(login.status, 200)
  const auth = { authorization: `Bearer ${String(login.json()['accessToken'])}` }
  // A new connection per request: the primary hands connections to the workers in turn.
  for (let i = 0; i < 12; i++) t.equal((await send(gw.url, '/api/x', { headers: auth })).status, 200)
  // Workers write their log lines at least once a second (src/ops/logger.ts).
  const first = await gw.logged((l) => l['route'] === 'api')
  await gw.logged((l) => l['route'] === 'api' && l['pid'] !== first['pid'], 3000).catch(() => undefined)
  const servedBy = new Set(
    gw
      .logs()
      .filter((l) => l['route'] === 'api')
      .map((l) => l['pid']),
  )
  t.equal(servedBy.size, 2, 'both workers served proxied requests')

  t.equal((await send(gw.url, '/auth/logout', { method: 'POST', headers: auth })).status, 204)
  await new Promise((r) => setTimeout(r, 200))
  for (let i = 0; i < 6; i++) {
    const res = await send(gw.url, '/api/x', { headers: auth })
    t.equal(res.json()['code'], 'token_revoked', `request ${i + 1} after logout, whichever worker takes it`)
  }

  // In flight on both workers (a new connection each), then SIGTERM to the whole process group,
  // as Ctrl-C in a terminal or systemd's default KillMode send it: every worker gets it from
  // the kernel, and none may take its primary's request to stop as a second signal.
  const inFlight = Array.from({ length: 4 }, () => send(gw.url, '/slow/x'))
  await new Promise((r) => setTimeout(r, 300)) // time to reach the upstream
  process.kill(-gw.child.pid!, 'SIGTERM')
  const answers = await Promise.all(inFlight)
  t.same(
    answers.map((a) => [a.status, a.body]),
    Array(4).fill([200, 'slow']),
    'requests in flight when the signal came were answered',
  )
  t.same(await gw.exited, { code: 0, signal: null }, 'the primary exits 0 once every worker has drained')
  t.notOk(
    gw.logs().some((l) => String(l['msg']).startsWith('second ')),
    'no worker took it for a second signal',
  )
})

t.test('workers do not outlive a primary killed outright', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const file = await workersConfig(t, redis.url, [`{ name: api, prefix: /api, upstream: "${up.url}" }`])
  const gw = await startProcess(t, file)
  const pids = (await bothListening(gw)) as number[]
  gw.child.kill('SIGKILL')
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  // Real waiting: two processes shutting down on their own (Node's cluster module ends a worker
  // whose IPC channel closes; nothing of ours may keep one alive without a supervisor).
  await waitFor('both workers to exit', async () => !pids.some(alive), 10_000).catch(() => undefined)
  t.same(pids.filter(alive), [], 'no worker is left behind, serving with nobody to supervise it')
})

t.test('the memory store is refused with more than one worker', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'server: { workers: 2 }\n' })
  const { runCli } = await import('../helpers/cli.js')
  const res = await runCli(['check-config', '--config', join(dir, 'gateway.yaml')])
  t.equal(res.code, 1)
  t.match(res.stdout, /server\.workers: .*shared store/)
})
