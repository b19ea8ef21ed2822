/**
 * Child process of bench/memory.ts (a fresh heap per measurement; run with --expose-gc).
 * Prints one JSON line.
 *
 *   fill <count>                        RevocationSet filled through apply(), with events
 *                                       parsed from feed messages as the gateway gets them
 *   resync <redis url> <timeout ms>     the revoked-session ZSET loaded from Redis: once
 *                                       through RevocationSync with the given command timeout
 *                                       (what a gateway does; the longest Redis call from the
 *                                       slow log, the event loop's delay), then timed step by
 *                                       step with a generous timeout, into an empty set and
 *                                       into a full one
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { createLogger } from '../src/ops/logger.js'
import { RevocationSet } from '../src/revocation/set.js'
import { RevocationSync } from '../src/revocation/sync.js'
import { createStore } from '../src/sessions/index.js'
import { parseRevocationMessage } from '../src/sessions/redis-feed.js'
import { newSessionId } from '../src/sessions/tokens.js'
import type { RevocationEvent } from '../src/sessions/types.js'
import { ready } from './redis-stats.js'

const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')

function memory() {
  gc!()
  gc!()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}
const delta = (a: { heap: number; rss: number }, b: { heap: number; rss: number }) => ({ heap: b.heap - a.heap, rss: b.rss - a.rss })
/** Peak RSS of this process so far, in bytes. */
const peakRss = () => process.resourceUsage().maxRSS * 1024

async function fill(count: number) {
  const before = memory()
  const set = new RevocationSet()
  const forgetAfter = Date.now() + 3_600_000
  let parsing = 0
  let applying = 0
  for (let i = 0; i < count; i += 1000) {
    const events: RevocationEvent[] = []
    for (let j = i; j < Math.min(count, i + 1000); j++) events.push({ type: 'session', sessionId: newSessionId(`u-${j % 5000}`), forgetAfter })
    const text = JSON.stringify({ seq: i, events })
    const t0 = performance.now()
    const message = parseRevocationMessage(text)!
    const t1 = performance.now()
    for (const event of message.events) set.apply(event)
    parsing += t1 - t0
    applying += performance.now() - t1
  }
  const after = memory()
  return { size: set.size, parsingMs: parsing, applyMs: applying, grew: delta(before, after), peakRss: peakRss() }
}

async function resync(url: string, timeout: number) {
  const log = createLogger('silent')
  const store = (commandTimeout: number) =>
    createStore({
      store: { type: 'redis', url, nodes: [], sentinels: [], name: 'mymaster', keyPrefix: 'portcullis:', commandTimeout },
      auth: { accessTokenTtl: 600_000, clockTolerance: 30_000, maxSessionsPerUser: 50 },
    })
  const stats = new Redis(url)
  // EVAL and EVALSHA both: a client may fall back to EVAL the first time on a connection.
  const scripts = async () => {
    let calls = 0
    let usec = 0
    for (const [, c, n] of (await stats.info('commandstats')).matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+),usec=(\d+)/gm)) {
      calls += Number(c)
      usec += Number(n)
    }
    return { calls, usec }
  }

  // As a gateway does it, with the configured command timeout.
  const configured = store(timeout)
  await ready(configured)
  const probe = new RevocationSync(configured, new RevocationSet(), { resyncInterval: 3_600_000, retryDelay: 3_600_000, now: Date.now, log })
  // Every call into the slow log, to find the longest; the event loop's delay meanwhile.
  await stats.config('SET', 'slowlog-log-slower-than', '0')
  await stats.config('SET', 'slowlog-max-len', '100000')
  await stats.slowlog('RESET')
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const t0 = performance.now()
  await probe.resync()
  const ms = performance.now() - t0
  delay.disable()
  const slow = (await stats.slowlog('GET', 100000)) as Array<[number, number, number, string[]]>
  const longestRedisMs = Math.max(0, ...slow.filter((e) => /^eval/i.test(String(e[3][0]))).map((e) => e[2] / 1000))
  await stats.config('SET', 'slowlog-log-slower-than', '10000')
  await stats.config('SET', 'slowlog-max-len', '128')
  const asConfigured = {
    synced: probe.synced,
    ms,
    longestRedisMs,
    loopDelayMaxMs: delay.max / 1e6,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    // maxRSS only grows: read now, it is what RevocationSync alone (merging page by page) needed.
    peakRss: peakRss(),
  }
  probe.stop()
  await configured.close()

  // Step by step, with time enough to finish.
  const patient = store(120_000)
  await ready(patient)
  const before = memory()
  const set = new RevocationSet()
  // In a function of its own: a snapshot held in this async function's frame would outlive it.
  const step = async (into: string) => {
    const busy = await scripts()
    const t0 = performance.now()
    const snapshot = await patient.revocations(Date.now())
    const fetchMs = performance.now() - t0
    const after = await scripts()
    const t1 = performance.now()
    set.merge(snapshot)
    return {
      into,
      entries: snapshot.sessions.length,
      fetchMs,
      calls: after.calls - busy.calls,
      redisMs: (after.usec - busy.usec) / 1000,
      mergeMs: performance.now() - t1,
    }
  }
  const steps = [await step('empty'), await step('full')]
  // ioredis keeps its last reply until the connection's next command; a running gateway sends
  // more soon enough (sign-ins, liveness checks), so measure after one.
  await patient.ping()
  const after = memory()
  await patient.close()
  stats.disconnect()
  return { asConfigured, steps, size: set.size, held: delta(before, after), peakRss: peakRss() }
}

const [mode, a, b] = process.argv.slice(2)
const result = mode === 'fill' ? await fill(Number(a)) : mode === 'resync' ? await resync(a!, Number(b)) : null
if (!result) throw new Error(`unknown mode ${mode}`)
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
