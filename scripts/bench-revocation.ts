/**
 * Measures revocation across instances (issue 4) and writes the figures into the
 * `revocation` section of docs/benchmarks.md:
 *
 *   node --import @tapjs/typescript/import scripts/bench-revocation.ts   (npm run bench:revocation)
 *
 * 1. Propagation: a redis-server on a free port and two gateway instances (src/main.ts, each
 *    with its own Redis connections, in this process). Each of REVOCATIONS sessions is signed
 *    in on A and logged out on A; the time runs from the moment A's logout answer arrives
 *    until B's RevocationSet holds the session (seen from a listener on B's feed, which runs
 *    right after the one that updates B's set).
 * 2. Resync cost: RESYNC_SIZE revoked sessions seeded straight into the revocation ZSET, then
 *    RevocationSync.resync() into an empty set (a starting instance) and into a full one (the
 *    periodic resync), timed; heap and RSS measured after a forced GC.
 *
 * BENCH_NO_WRITE=1 prints without touching docs/benchmarks.md.
 */
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { Redis } from 'ioredis'
import { machineFacts, writeSection } from '../bench/report.js'
import { createLogger } from '../src/ops/logger.js'
import { RevocationSet } from '../src/revocation/set.js'
import { RevocationSync } from '../src/revocation/sync.js'
import { newSessionId } from '../src/sessions/tokens.js'
import { startFleet } from '../test/helpers/fleet.js'
import { login, logout, until } from '../test/helpers/fleet-client.js'
import { send } from '../test/helpers/http.js'
import { startRedis } from '../test/helpers/redis.js'

const REVOCATIONS = Number(process.env['BENCH_REVOCATIONS'] ?? 500)
const RESYNC_SIZE = Number(process.env['BENCH_RESYNC_SIZE'] ?? 100_000)
const RESYNC_ROUNDS = 5

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}
const ms = (x: number) => x.toFixed(2)
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

const teardowns: Array<() => unknown> = []
const host = { teardown: (fn: () => unknown) => void teardowns.push(fn) }

async function main(): Promise<void> {
  const redis = await startRedis(host)
  const fleet = await startFleet(host, { store: 'type: redis\nurl: ${REDIS_URL}' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b])
    await until(
      () => send(gw.url, '/readyz'),
      (r) => r.status === 200,
      10_000,
    )

  // 1. Propagation.
  const waiting = new Map<string, (at: number) => void>()
  b.gw.store.subscribe({
    onEvent(event) {
      if (event.type !== 'session') return
      const done = waiting.get(event.sessionId)
      if (done && b.gw.revocations.isRevoked(event.sessionId, 'u-alice', 0)) done(performance.now())
    },
    onGap() {},
  })
  const seenOnB = (sid: string) =>
    new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`B never saw ${sid}`)), 5000)
      waiting.set(sid, (at) => {
        clearTimeout(timer)
        waiting.delete(sid)
        resolve(at)
      })
    })
  const afterAnswer: number[] = []
  const fromCall: number[] = []
  for (let i = 0; i < REVOCATIONS; i++) {
    const s = await login(a.url)
    const sent = performance.now()
    const seen = seenOnB(s.sessionId)
    const res = await logout(a.url, s.accessToken)
    const answered = performance.now()
    if (res.status !== 204) throw new Error(`logout answered ${res.status}`)
    const at = await seen
    // B may hold it before A's answer has arrived: PUBLISH runs inside the script A waits on.
    afterAnswer.push(Math.max(0, at - answered))
    fromCall.push(at - sent)
  }

  // 2. Resync cost.
  const seed = new Redis(redis.port, '127.0.0.1')
  teardowns.push(() => seed.quit())
  const forgetAfter = Date.now() + 3_600_000
  for (let i = 0; i < RESYNC_SIZE; i += 10_000) {
    const args: Array<string | number> = []
    for (let j = i; j < Math.min(RESYNC_SIZE, i + 10_000); j++) args.push(forgetAfter, newSessionId(`u-bench-${j % 5000}`))
    await seed.zadd('portcullis:{rev}:s', ...args)
  }
  const zsetBytes = Number(await seed.call('MEMORY', 'USAGE', 'portcullis:{rev}:s', 'SAMPLES', '0'))
  const log = createLogger('silent')
  const usec = async () => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(await seed.info('commandstats'))?.[1] ?? 0)
  const cold: number[] = []
  const warm: number[] = []
  const redisBusy: number[] = []
  let heapDelta = 0
  let rssDelta = 0
  let size = 0
  for (let round = 0; round < RESYNC_ROUNDS; round++) {
    gc()
    const before = process.memoryUsage()
    const set = new RevocationSet()
    const sync = new RevocationSync(b.gw.store, set, { resyncInterval: 3_600_000, now: Date.now, log })
    const busy = await usec()
    let t0 = performance.now()
    await sync.resync()
    cold.push(performance.now() - t0)
    redisBusy.push(((await usec()) - busy) / 1000)
    t0 = performance.now()
    await sync.resync()
    warm.push(performance.now() - t0)
    gc()
    const after = process.memoryUsage()
    heapDelta = Math.max(heapDelta, after.heapUsed - before.heapUsed)
    rssDelta = Math.max(rssDelta, after.rss - before.rss)
    size = set.size
    sync.stop()
  }

  // The machine may be shared: the load says how much the figures may owe to neighbours.
  const facts = `${machineFacts()} 1-minute load average at the end: ${loadavg()[0]!.toFixed(1)}.`
  const body = [
    '## Revocation across instances',
    '',
    facts,
    'Command: `npm run bench:revocation` (`node --import @tapjs/typescript/import scripts/bench-revocation.ts`).',
    'Setup: one redis-server on loopback, two gateway instances (src/main.ts) in one Node process, each with its own Redis connections; revocation.mode cached.',
    '',
    `**Propagation** over ${REVOCATIONS} logouts on instance A, until instance B's in-memory set holds the session:`,
    '',
    '| measured from | median ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: |',
    `| A's logout answer received | ${ms(quantile(afterAnswer, 0.5))} | ${ms(quantile(afterAnswer, 0.99))} | ${ms(Math.max(...afterAnswer))} |`,
    `| logout request sent to A | ${ms(quantile(fromCall, 0.5))} | ${ms(quantile(fromCall, 0.99))} | ${ms(Math.max(...fromCall))} |`,
    '',
    `B already held ${afterAnswer.filter((x) => x === 0).length} of the ${REVOCATIONS} sessions when A's answer arrived (counted as 0 ms): Redis publishes inside the script A waits on, before it replies.`,
    '',
    `**Resync** of ${size.toLocaleString('en')} revoked sessions (seeded into the ZSET), ${RESYNC_ROUNDS} rounds:`,
    '',
    '| | median ms | max ms |',
    '| --- | ---: | ---: |',
    `| into an empty set (a starting instance) | ${ms(quantile(cold, 0.5))} | ${ms(Math.max(...cold))} |`,
    `| into a full set (periodic resync) | ${ms(quantile(warm, 0.5))} | ${ms(Math.max(...warm))} |`,
    `| Redis time in the snapshot script | ${ms(quantile(redisBusy, 0.5))} | ${ms(Math.max(...redisBusy))} |`,
    '',
    `Memory held by the full set: heap +${mib(heapDelta)} MiB, RSS +${mib(rssDelta)} MiB (after a forced GC; the largest of the rounds; RSS also keeps the allocator's share of the transient reply buffers).`,
    `In Redis the revoked-session ZSET takes ${mib(zsetBytes)} MiB (MEMORY USAGE).`,
  ].join('\n')
  console.log(body)
  if (!process.env['BENCH_NO_WRITE']) writeSection(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), 'revocation', body)
}

try {
  await main()
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
