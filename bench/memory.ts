/**
 * `npm run bench:memory`: what sessions and revocations weigh.
 *
 * (a) Bytes per session in Redis, indexes included: SESSIONS sessions created through the Redis
 *     store (src/sessions/redis-store.ts) from a browser (110-byte user agent), measured fresh
 *     and after ROTATIONS refreshes (which fill the remembered hash history), as the INFO
 *     used_memory delta and as the sum of MEMORY USAGE over the keys, each divided by the count.
 * (b) The in-memory RevocationSet with REVOKED ended sessions, in a child process each
 *     (./memory-revocations.ts): heap and RSS after filling it through apply(), and the time
 *     and memory to resync it from a revocation ZSET of that size seeded with pipelined ZADDs.
 * Environment: BENCH_REVOKED (1000000), BENCH_NO_WRITE=1.
 */
import { execFile } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { createStore } from '../src/sessions/index.js'
import { AT, HEAD_BYTES, OLDER_HASH_BYTES, redisKeys } from '../src/sessions/redis-layout.js'
import { deriveSuccessor, hashRefresh, newNonce, newRefreshSecret, newSessionId } from '../src/sessions/tokens.js'
import type { SessionStore } from '../src/sessions/types.js'
import { BROWSER_UA } from './http-client.js'
import { machineFacts, writeSection } from './report.js'
import { ready, usedMemory } from './redis-stats.js'
import { startRedisServer } from './setup.js'
import { mib, whole } from './stats.js'

const SESSIONS = 1000
const ROTATIONS = 7
const REVOKED = Number(process.env['BENCH_REVOKED'] ?? 1_000_000)
const PREFIX = 'portcullis:'
const DAY = 86_400_000
/** rateLimits.refresh.perSession's default, counted in the session as the gateway does. */
const REFRESH_LIMIT = { max: 30, window: 60_000 }

/** Sessions for `users` users, SESSIONS in all; returns what a refresh needs for each. */
async function createSessions(store: SessionStore, users: number, now: number) {
  const sessions: Array<{ id: string; secret: string }> = []
  for (let i = 0; i < SESSIONS; i++) {
    const subject = `user-${String(i % users).padStart(4, '0')}@example.com`
    const id = newSessionId(subject)
    const secret = newRefreshSecret()
    const record = {
      id,
      subject,
      roles: ['user'],
      claims: {},
      createdAt: now,
      lastUsedAt: now,
      idleExpiresAt: now + 14 * DAY,
      absoluteExpiresAt: now + 30 * DAY,
      userAgent: BROWSER_UA,
      ip: '203.0.113.45',
    }
    await store.create({ record, refreshHash: hashRefresh(secret) }, now)
    sessions.push({ id, secret })
  }
  return sessions
}

async function rotateAll(store: SessionStore, sessions: Array<{ id: string; secret: string }>, now: number) {
  for (const s of sessions) {
    const nonce = newNonce()
    const successor = deriveSuccessor(s.secret, nonce)
    const r = await store.rotate({
      sessionId: s.id,
      presentedHash: hashRefresh(s.secret),
      successorHash: hashRefresh(successor),
      nonce,
      now,
      refreshTokenTtl: 14 * DAY,
      refreshReuseGrace: 10_000,
      userAgent: BROWSER_UA,
      ip: '203.0.113.45',
      limit: REFRESH_LIMIT,
    })
    if (r.kind !== 'rotated') throw new Error(`rotation answered ${r.kind}`)
    s.secret = successor
  }
}

async function keyBytes(redis: Redis): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000)
    for (const key of keys) sizes.set(key, Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')))
    cursor = next
  } while (cursor !== '0')
  return sizes
}

/**
 * The allocation Redis (jemalloc) makes for a string value of `length` bytes: its sds header
 * (3 bytes under 256, else 5) and a NUL, rounded up to a size class (16-byte steps to 128, then
 * four classes per doubling).
 */
function valueAllocation(length: number): { bytes: number; spare: number } {
  const need = length + (length < 256 ? 3 : 5) + 1
  let group = 128
  while (need > group * 2) group *= 2
  const bytes = need <= 128 ? Math.ceil(need / 16) * 16 : Math.ceil(need / (group / 4)) * (group / 4)
  return { bytes, spare: bytes - need }
}

async function sessionBytes(redis: Redis, store: SessionStore) {
  const rows: string[] = []
  /** The largest figures per session over every layout and state: [used_memory delta, MEMORY USAGE]. */
  const worst = { used: 0, usage: 0 }
  /** What used_memory counts beyond MEMORY USAGE, per key: [least, most] over the rows. */
  const perKey = [Infinity, 0]
  let sample: { id: string; users: number } | null = null
  for (const users of [1000, 100]) {
    await redis.flushall()
    const base = await usedMemory(redis)
    const now = Date.now()
    const sessions = await createSessions(store, users, now)
    sample = { id: sessions[0]!.id, users }
    for (let round = 0; round <= ROTATIONS; round++) {
      if (round > 0) await rotateAll(store, sessions, now + round * 60_000)
      if (round !== 0 && round !== ROTATIONS) continue
      const used = ((await usedMemory(redis)) - base) / SESSIONS
      const sizes = await keyBytes(redis)
      const total = [...sizes.values()].reduce((a, b) => a + b, 0) / SESSIONS
      const index = [...sizes].filter(([k]) => k.startsWith(`${PREFIX}u:`)).reduce((a, [, b]) => a + b, 0) / SESSIONS
      const beyond = ((used - total) * SESSIONS) / sizes.size
      perKey[0] = Math.min(perKey[0]!, beyond)
      perKey[1] = Math.max(perKey[1]!, beyond)
      worst.used = Math.max(worst.used, used)
      worst.usage = Math.max(worst.usage, total)
      rows.push(
        `| ${whole(users)} users × ${SESSIONS / users} sessions | ${round === 0 ? 'just created' : `after ${ROTATIONS} refreshes`} | ${whole(used)} | ${whole(total)} | ${whole(total - index)} | ${whole(index)} |`,
      )
    }
  }
  // Where one session's bytes go (the last layout measured, rotated).
  const keys = redisKeys(PREFIX)
  const key = keys.session(sample!.id)
  const value = (await redis.getBuffer(key))!
  const own = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  const older = value[AT.olderCount]! * OLDER_HASH_BYTES
  const [client, claims, subject] = value
    .subarray(HEAD_BYTES + older)
    .toString()
    .split('\n')
    .map((f) => Buffer.byteLength(f))
  const fields = [
    ['version', AT.current],
    ['current hash', AT.previous - AT.current],
    ['previous hash', AT.nonce - AT.previous],
    ['rotation nonce', AT.lastUsedAt - AT.nonce],
    ['lastUsedAt, idleExpiresAt, absoluteExpiresAt, createdAt', AT.windowEnd - AT.lastUsedAt],
    ['refresh-limit window end and count', AT.olderCount - AT.windowEnd],
    ['count of older hashes', 1],
    [`${older / OLDER_HASH_BYTES} older hashes`, older],
    ['client JSON [user agent, IP]', client],
    ['JSON [roles, claims]', claims],
    ['subject', subject],
    ['2 newlines', 2],
  ] as const
  const allocation = valueAllocation(value.length)
  return {
    rows,
    worst,
    perKey,
    allocation,
    anatomy: `One session key after ${ROTATIONS} refreshes: MEMORY USAGE ${own} B for a ${key.length}-byte key and a ${value.length}-byte value (layout version 2, src/sessions/redis-layout.ts: ${fields.map(([name, n]) => `${name} ${n}`).join(', ')}). The rest of MEMORY USAGE (${own - key.length - value.length} B) is Redis's own per-key overhead (dict entry, object header, string headers, allocator rounding: Redis allocates in size classes, …, 256, 320, 384, …, and this value takes a ${allocation.bytes}-byte one, ${allocation.spare} bytes of it unused); the expiry entry is not in MEMORY USAGE but is in used_memory.`,
  }
}

interface Memory {
  heap: number
  rss: number
}
interface Filled {
  size: number
  parsingMs: number
  applyMs: number
  grew: Memory
  peakRss: number
}
interface Step {
  into: string
  entries: number
  fetchMs: number
  calls: number
  redisMs: number
  mergeMs: number
}
interface AsConfigured {
  synced: boolean
  ms: number
  longestRedisMs: number
  loopDelayMaxMs: number
  loopDelayP99Ms: number
  peakRss: number
}
interface Synced {
  asConfigured: AsConfigured
  steps: Step[]
  size: number
  held: Memory
  peakRss: number
}

const child = promisify(execFile)
async function inChild<T>(args: string[]): Promise<T> {
  const script = join(new URL('.', import.meta.url).pathname, 'memory-revocations.ts')
  const { stdout } = await child('node', ['--expose-gc', '--import', '@tapjs/typescript/import', script, ...args], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T
}

async function seedRevocations(redis: Redis): Promise<number> {
  await redis.flushall()
  const key = redisKeys(PREFIX).revoked[0]
  const forgetAfter = Date.now() + 3_600_000
  for (let i = 0; i < REVOKED; i += 10_000) {
    const pipeline = redis.pipeline()
    for (let j = i; j < Math.min(REVOKED, i + 10_000); j += 500) {
      const args: Array<string | number> = []
      for (let k = j; k < Math.min(REVOKED, j + 500); k++) args.push(forgetAfter, newSessionId(`u-${k % 5000}`))
      pipeline.zadd(key, ...args)
    }
    await pipeline.exec()
  }
  return Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const redisUrl = await startRedisServer(children)
  if (!redisUrl) throw new Error('bench:memory needs redis-server')
  const redis = new Redis(redisUrl)
  const store = createStore({
    store: { type: 'redis', url: redisUrl, nodes: [], sentinels: [], name: 'mymaster', keyPrefix: PREFIX, commandTimeout: 5000 },
    auth: { accessTokenTtl: 600_000, clockTolerance: 30_000, maxSessionsPerUser: 50 },
  })
  await ready(store)
  // Loads the scripts into Redis's script cache first, so that cache is not counted below.
  await rotateAll(store, await createSessions(store, 100, Date.now()), Date.now() + 60_000)

  const sessions = await sessionBytes(redis, store)
  await store.close()
  console.log(sessions.rows.join('\n'))
  const filled = await inChild<Filled>(['fill', String(REVOKED)])
  console.log('fill', filled)
  const zsetBytes = await seedRevocations(redis)
  const synced = await inChild<Synced>(['resync', redisUrl, '500'])
  console.log('resync', JSON.stringify(synced))
  redis.disconnect()

  const steps = synced.steps
  const body = [
    '## Memory: sessions in Redis, revoked sessions in the gateway',
    '',
    `${machineFacts()} 1-minute load average at the end: ${loadavg()[0]!.toFixed(1)} (the machine is shared with other work: timings are noisy, sizes are not).`,
    'Command: `npm run bench:memory` (bench/memory.ts; the revocation figures come from a child process each, bench/memory-revocations.ts).',
    '',
    `**Bytes per session in Redis**, ${whole(SESSIONS)} sessions created through the Redis store with a 110-byte browser user agent, roles ["user"], no extra claims, a 21-byte subject; the history of older refresh hashes is full after ${ROTATIONS} refreshes (target: ≤ 600 B, indexes included; every refresh counted against the default refresh limit, as the gateway does):`,
    '',
    '| layout | state | used_memory delta / session | MEMORY USAGE / session (all keys) | session key | per-user index share |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...sessions.rows,
    '',
    sessions.anatomy,
    '',
    `The largest figure above: ${whole(sessions.worst.usage)} B by MEMORY USAGE, the target's measure (layout version 1 took 608 B for a lone session after 7 refreshes, 526 B with 10 per user). Version 2 keeps the hashes and the nonce as raw bytes instead of base64url and the four times as 6-byte binary milliseconds instead of base-36 digits, and drops the newlines between fixed fields; it also holds the per-session refresh count (rateLimits.refresh.perSession, 10 bytes), which used to be a key of its own for a minute after each refresh. Nothing lost precision: times stay in milliseconds, which the grace window (a repeat at exactly \`refreshReuseGrace\` is grace, a millisecond later is theft) and a session that reads back exactly as created rely on; base-36 seconds would have taken as many bytes. The used_memory delta is larger (${whole(sessions.worst.used)} B at most): it also counts what MEMORY USAGE leaves out, each key's expiry entry, both dictionaries' buckets and the allocator's rounding of dict entries, ${whole(sessions.perKey[0]!)}–${whole(sessions.perKey[1]!)} B per key here, and a lone session has two keys (itself and its user's index).`,
    '',
    `Headroom: the value can grow by ${sessions.allocation.spare} bytes before it takes the next size class (+64 B per session): a longer user agent (an iPhone's Safari sends ~136 bytes, this one is 110) or a user's claims, which the session keeps, do that. Still possible: capping the stored user agent (the gateway keeps up to 256 characters because GET /auth/sessions shows it). A shorter \`store.keyPrefix\` saves nothing here: key names are allocated in size classes too, and the 43-byte session key would have to shrink to 28 bytes to leave its 48-byte class (without any prefix it is 32).`,
    '',
    `**${whole(REVOKED)} revoked sessions in the gateway's RevocationSet** (src/revocation/set.ts, a Map of session id → forgetAfter):`,
    '',
    '| measurement | figure |',
    '| --- | ---: |',
    `| filled through apply() from parsed feed messages: heap after GC | +${mib(filled.grew.heap)} MiB (${whole(filled.grew.heap / REVOKED)} B per entry) |`,
    `| same: RSS after GC | +${mib(filled.grew.rss)} MiB |`,
    `| same: time to parse ${whole(REVOKED / 1000)} feed messages of 1,000 events / to apply the events | ${whole(filled.parsingMs)} ms / ${whole(filled.applyMs)} ms |`,
    `| the revocation ZSET in Redis (MEMORY USAGE) | ${mib(zsetBytes)} MiB |`,
    `| resync through RevocationSync with the default store.commandTimeout (500 ms) | ${synced.asConfigured.synced ? `completed in ${whole(synced.asConfigured.ms)} ms` : `**failed** after ${whole(synced.asConfigured.ms)} ms (a page call timed out; the gateway would log it and retry)`} |`,
    `| same: the longest Redis call (slow log) / the event loop's longest delay (p99) in the resyncing process | ${whole(synced.asConfigured.longestRedisMs)} ms / ${whole(synced.asConfigured.loopDelayMaxMs)} ms (p99 ${whole(synced.asConfigured.loopDelayP99Ms)} ms) |`,
    ...steps.flatMap((s) => [
      `| resync into ${s.into === 'empty' ? 'an empty set (a starting instance)' : 'the full set (the periodic resync)'}: snapshot call, revocations() collecting every page (Redis scripts + transfer + parsing) | ${whole(s.fetchMs)} ms for ${whole(s.entries)} entries |`,
      `| same: of which Redis ran the page scripts (${whole(s.calls)} calls; Redis serves other clients between them) | ${whole(s.redisMs)} ms |`,
      `| same: merge into the set | ${whole(s.mergeMs)} ms |`,
    ]),
    `| after both resyncs and one more store call, after GC: heap / RSS held (${whole(synced.size)} entries) | +${mib(synced.held.heap)} MiB / +${mib(synced.held.rss)} MiB |`,
    `| peak RSS of the resyncing process | after RevocationSync alone, merging page by page: ${mib(synced.asConfigured.peakRss)} MiB; at the end: ${mib(synced.peakRss)} MiB (this process also builds the two whole snapshots the rows above time); the fill-only process: ${mib(filled.peakRss)} MiB |`,
    '',
    `Where a resync's cost goes: RevocationSync reads the revocation ZSETs in pages (src/sessions/redis-scripts.ts, REVOCATION_PAGE: ZSCAN with COUNT 10,000, live entries only), merging each page into the set and yielding to the event loop before the next, so no call comes near \`store.commandTimeout\`, Redis is never held for more than a page, and the gateway holds one page at a time. The whole resync still grows linearly with the set (Redis time, transfer, parsing, merging) and is repeated by every instance at every \`revocation.resyncInterval\` (30 s by default) and after every gap; a resync of only what changed since the last one would remove that, and is not done here.${synced.asConfigured.synced ? '' : ' This run could not finish its first resync within `store.commandTimeout`: the instance would stay not ready.'}`,
  ].join('\n')
  console.log('\n' + body)
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/benchmarks.md'), 'memory', body)
  for (const c of children) c.kill()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
