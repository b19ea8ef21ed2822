import t from 'tap'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeKey } from '../../src/cli/keys-generate.js'
import { DEFAULT_NODE_FLAGS, missingNodeFlags, wantedNodeFlags } from '../../src/cli/node-flags.js'
import { buildCli, runCli, startProcess, type GatewayProcess } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { freePort, startRedis } from '../helpers/redis.js'
import { value } from '../ops/prometheus.js'

t.before(() => void buildCli())

const MiB = 2 ** 20
/** Whether the Node running these tests (and the CLI they start) can replace its own process. */
const canReexecute = typeof (process as { execve?: unknown }).execve === 'function' && process.platform !== 'win32'

/** The young generation's size as the process reports it in /metrics (prom-client's default metrics). */
async function newSpaceBytes(url: string): Promise<number> {
  const text = (await send(url, '/metrics')).body
  const bytes = value(text, 'nodejs_heap_space_size_total_bytes', { space: 'new' })
  if (bytes === undefined) throw new Error('no new-space size in /metrics')
  return bytes
}

const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')

const notApplied = (gw: GatewayProcess) => gw.logs().find((l) => String(l['msg']).startsWith('running without these V8 flags'))

t.test('the default flags are wanted unless PORTCULLIS_NODE_FLAGS says otherwise; empty means none', async (t) => {
  t.same(wantedNodeFlags({}), DEFAULT_NODE_FLAGS)
  t.same(wantedNodeFlags({ PORTCULLIS_NODE_FLAGS: '' }), [])
  t.same(wantedNodeFlags({ PORTCULLIS_NODE_FLAGS: ' --min-semi-space-size=8  --max-semi-space-size=64 ' }), [
    '--min-semi-space-size=8',
    '--max-semi-space-size=64',
  ])
})

t.test("a flag the operator gave node, in any spelling or in NODE_OPTIONS, is never added again: the operator's value wins", async (t) => {
  const wanted = ['--min-semi-space-size=16', '--max-semi-space-size=64']
  t.same(missingNodeFlags(wanted, []), wanted)
  t.same(missingNodeFlags(wanted, ['--min-semi-space-size=4']), ['--max-semi-space-size=64'])
  t.same(missingNodeFlags(wanted, ['--min_semi_space_size=4']), ['--max-semi-space-size=64'], 'underscores name the same flag')
  t.same(missingNodeFlags(wanted, ['--min-semi-space-size', '4']), ['--max-semi-space-size=64'], 'a value as the next argument')
  t.same(missingNodeFlags(wanted, [], '--max-semi-space-size=32 --enable-source-maps'), ['--min-semi-space-size=16'])
})

// V8 grows the young generation to its maximum while the gateway loads (32 MiB with or without
// the default flag, which only stops it shrinking back later): a lower maximum is what shows in
// /metrics whether a flag is in effect (4 MiB semispaces: 8 MiB of young generation).
const SMALL = '--max-semi-space-size=4'

t.test('portcullis start runs with --min-semi-space-size=16 in its own process: same pid, on its command line, SIGTERM exits 0', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'server: { host: 127.0.0.1, port: 0 }\nroutes: []\n' })
  const gw = await startProcess(t, join(dir, 'gateway.yaml'))
  const listening = await gw.logged((l) => l['msg'] === 'portcullis listening')
  t.equal(listening['pid'], gw.child.pid, 'the process that serves is the one started: replaced in place, no parent in between')
  if (canReexecute) {
    t.ok(commandLine(gw.child.pid!).includes('--min-semi-space-size=16'), 'on its command line')
    t.notOk(notApplied(gw), 'no warning')
  } else {
    // This Node (before 22.15) cannot re-execute itself: the gateway says so and runs on.
    t.notOk(commandLine(gw.child.pid!).includes('--min-semi-space-size=16'))
    t.match(notApplied(gw), { level: 40, flags: ['--min-semi-space-size=16'] })
  }
  gw.child.kill('SIGTERM')
  t.same(await gw.exited, { code: 0, signal: null }, 'the signal reached the gateway itself, which drained and exited 0')
})

t.test('PORTCULLIS_NODE_FLAGS replaces the flags: empty runs node as started, a list of its own is what V8 runs with', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'server: { host: 127.0.0.1, port: 0 }\nroutes: []\n' })
  const none = await startProcess(t, join(dir, 'gateway.yaml'), { env: { PORTCULLIS_NODE_FLAGS: '' } })
  t.notOk(notApplied(none), 'nothing wanted, nothing to warn about')
  t.notOk(commandLine(none.child.pid!).some((a) => a.includes('semi-space')))
  t.ok((await newSpaceBytes(none.url)) >= 16 * MiB, 'V8 grew its young generation while loading the gateway')
  const own = await startProcess(t, join(dir, 'gateway.yaml'), { env: { PORTCULLIS_NODE_FLAGS: SMALL } })
  if (canReexecute) {
    t.ok((await newSpaceBytes(own.url)) <= 12 * MiB, 'the young generation held to 4 MiB semispaces: the flag is in effect')
    t.ok(commandLine(own.child.pid!).includes(SMALL))
  } else {
    t.match(notApplied(own), { flags: [SMALL] })
  }
})

t.test('every worker runs with the flags, whether or not the primary could re-execute itself', async (t) => {
  const redis = await startRedis(t)
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'k1', dir)
  const file = join(dir, 'gateway.yaml')
  const adminPort = await freePort()
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: 0, workers: 2, admin: { port: ${adminPort} } }
auth: { keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: "${key}" }] } }
store: { type: redis, url: "${redis.url}" }
routes: []
`,
  )
  // Three processes starting on a busy 2-core machine: as start-messages.test.ts allows.
  const gw = await startProcess(t, file, { env: { PORTCULLIS_NODE_FLAGS: SMALL }, startTimeoutMs: 60_000 })
  const workers = async () => [...new Set(gw.logs().flatMap((l) => (l['msg'] === 'portcullis listening' ? [Number(l['pid'])] : [])))]
  for (let i = 0; i < 600 && (await workers()).length < 2; i++) await new Promise((r) => setTimeout(r, 100))
  const pids = await workers()
  t.equal(pids.length, 2)
  for (const pid of pids) t.ok(commandLine(pid).includes(SMALL), `worker ${pid} was started with the flags`)
  // The admin listener sums both workers' young generations: each held to 4 MiB semispaces.
  const summed = await newSpaceBytes(`http://127.0.0.1:${adminPort}`)
  t.ok(summed <= 24 * MiB, `young generations ${summed / MiB} MiB in all: the flags are in effect in both`)
  t.equal(commandLine(gw.child.pid!).includes(SMALL), canReexecute, 'the primary too, where Node can re-execute')
  gw.child.kill('SIGTERM')
  t.same(await gw.exited, { code: 0, signal: null })
})

t.test('a flag node does not know in PORTCULLIS_NODE_FLAGS stops the start with node’s own message and exit 9', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'server: { host: 127.0.0.1, port: 0 }\nroutes: []\n' })
  const env = { PORTCULLIS_NODE_FLAGS: '--no-such-flag' }
  if (canReexecute) {
    const run = await runCli(['start', '--config', join(dir, 'gateway.yaml')], { env })
    t.equal(run.code, 9)
    t.match(run.stderr, /bad option: --no-such-flag/)
  } else {
    // A Node that cannot re-execute never hands the flag to node: it is named in the warning.
    const gw = await startProcess(t, join(dir, 'gateway.yaml'), { env })
    t.match(notApplied(gw), { level: 40, flags: ['--no-such-flag'] })
  }
})
