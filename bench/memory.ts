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
import { redisKeys } from '../src/sessions/redis-layout.js'
import { deriveSuccessor, hashRefresh, newNonce, newRefreshSecret, newSessionId } from '../src/sessions/tokens.js'
import type { SessionStore } from '../src/sessions/types.js'
import { BROWSER_UA } from './http-client.js'
import { machineFacts, writeSection } from './report.js'
import { ready, usedMemory } from './redis-stats.js'
import { startRedisServer } from './setup.js'
import { fixed, mib, whole } from './stats.js'

const SESSIONS = 1000
const ROTATIONS = 7
const REVOKED = Number(process.env['BENCH_REVOKED'] ?? 1_000_000)
const PREFIX = 'portcullis:'
const DAY = 86_400_000
const FIELDS = ['version', 'current hash', 'previous hash', 'rotation nonce', 'lastUsedAt', 'idleExpiresAt', 'absoluteExpiresAt', 'createdAt', 'history of older hashes', 'client [user agent, IP]', '[roles, claims]', 'subject']

/** Sessions for `users` users, SESSIONS in all; returns what a refresh needs for each. */
async function createSessions(store: SessionStore, users: number, now: number) {
  const sessions: Array<{ id: string; secret: string }> = []
  for (let i = 0; i < SESSIONS; i++) {
    const subject = `user-${String(i % users).padStart(4, '0')}@example.com`
    const id = newSessionId(subject)
    const secret = newRefreshSecret()
    const record = {
      id, subject, roles: ['user'], claims: {}, createdAt: now, lastUsedAt: now,
      idleExpiresAt: now + 14 * DAY, absoluteExpiresAt: now + 30 * DAY, userAgent: BROWSER_UA, ip: '203.0.113.45',
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
      sessionId: s.id, presentedHash: hashRefresh(s.secret), successorHash: hashRefresh(successor), nonce, now,
      refreshTokenTtl: 14 * DAY, refreshReuseGrace: 10_000, userAgent: BROWSER_UA, ip: '203.0.113.45',
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

async function sessionBytes(redis: Redis, store: SessionStore) {
  const rows: string[] = []
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
      rows.push(`| ${whole(users)} users × ${SESSIONS / users} sessions | ${round === 0 ? 'just created' : `after ${ROTATIONS} refreshes`} | ${whole(used)} | ${whole(total)} | ${whole(total - index)} | ${whole(index)} |`)
    }
  }
  // Where one session's bytes go (the last layout measured, rotated).
  const keys = redisKeys(PREFIX)
  const [key, value] = [keys.session(sample!.id), (await redis.get(keys.session(sample!.id)))!]
  const own = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  const fields = value.split('\n').map((f, i) => `${FIELDS[i] ?? `field ${i + 1}`} ${f.length}`)
  return {
    rows,
    anatomy: `One session key after ${ROTATIONS} refreshes: MEMORY USAGE ${own} B for a ${key.length}-byte key and a ${value.length}-byte value (${fields.join(', ')}; plus ${FIELDS.length - 1} newlines). The rest of MEMORY USAGE (${own - key.length - value.length} B) is Redis's own per-key overhead (dict entry, object header, string headers, allocator rounding); the expiry entry is not in MEMORY USAGE but is in used_memory.`,
  }
}

interface Memory { heap: number; rss: number }
interface Filled { size: number; parsingMs: number; applyMs: number; grew: Memory; peakRss: number }
interface Step { into: string; entries: number; fetchMs: number; redisMs: number; mergeMs: number }
interface Synced { asConfigured: { synced: boolean; ms: number }; steps: Step[]; size: number; held: Memory; peakRss: number }

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
  process.on('exit', () => children.forEach((c) => c.kill()))
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
    `**Bytes per session in Redis**, ${whole(SESSIONS)} sessions created through the Redis store with a 110-byte browser user agent, roles ["user"], no extra claims, a 21-byte subject; the history of older refresh hashes is full after ${ROTATIONS} refreshes (target: ≤ 600 B, indexes included):`,
    '',
    '| layout | state | used_memory delta / session | MEMORY USAGE / session (all keys) | session key | per-user index share |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...sessions.rows,
    '',
    sessions.anatomy,
    '',
    'The layout is not changed here. Savings per session it could still make, each estimated from the figures above: the user agent is the largest field (stored up to 256 bytes because GET /auth/sessions shows it; capping or normalising it to 64 bytes saves ~46 B for this one); keeping the three 22-character hashes/nonce and the 16-character history entries as raw bytes instead of base64url saves ~34 B; times as base-36 seconds instead of milliseconds, ~8 B; and a shorter `store.keyPrefix` (a setting: `pc:` instead of `portcullis:`) saves 8 B in each session key and in each index key.',
    '',
    `**${whole(REVOKED)} revoked sessions in the gateway's RevocationSet** (src/revocation/set.ts, a Map of session id → forgetAfter):`,
    '',
    '| measurement | figure |',
    '| --- | ---: |',
    `| filled through apply() from parsed feed messages: heap after GC | +${mib(filled.grew.heap)} MiB (${whole(filled.grew.heap / REVOKED)} B per entry) |`,
    `| same: RSS after GC | +${mib(filled.grew.rss)} MiB |`,
    `| same: time to parse ${whole(REVOKED / 1000)} feed messages of 1,000 events / to apply the events | ${whole(filled.parsingMs)} ms / ${whole(filled.applyMs)} ms |`,
    `| the revocation ZSET in Redis (MEMORY USAGE) | ${mib(zsetBytes)} MiB |`,
    `| resync through RevocationSync with the default store.commandTimeout (500 ms) | ${synced.asConfigured.synced ? `completed in ${whole(synced.asConfigured.ms)} ms` : `**failed** after ${whole(synced.asConfigured.ms)} ms (the snapshot call timed out; the gateway would log it and retry)`} |`,
    ...steps.flatMap((s) => [
      `| resync into ${s.into === 'empty' ? 'an empty set (a starting instance)' : 'the full set (the periodic resync)'}: snapshot call (Redis script + transfer + parsing) | ${whole(s.fetchMs)} ms for ${whole(s.entries)} entries |`,
      `| same: of which Redis ran the snapshot script (Redis serves nothing else meanwhile) | ${whole(s.redisMs)} ms |`,
      `| same: merge into the set | ${whole(s.mergeMs)} ms |`,
    ]),
    `| after both resyncs and one more store call, after GC: heap / RSS held (${whole(synced.size)} entries) | +${mib(synced.held.heap)} MiB / +${mib(synced.held.rss)} MiB |`,
    `| peak RSS of the resyncing process | ${mib(synced.peakRss)} MiB (the fill-only process: ${mib(filled.peakRss)} MiB) |`,
    '',
    `Where a resync's cost goes: the store reads the revocation ZSETs in pages (src/sessions/redis-scripts.ts, REVOCATION_PAGE: ZSCAN, 10,000 entries per call), so no single Redis call or event-loop turn is long, and RevocationSync merges each page as it arrives. The total still grows linearly with the set and is repeated by every instance at every \`revocation.resyncInterval\` (30 s by default) and after every gap; reading only what changed since the last sync would remove that.${synced.asConfigured.synced ? '' : ' This run could not finish its first resync within \`store.commandTimeout\`: the instance would stay not ready.'}`,
  ].join('\n')
  console.log('\n' + body)
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/benchmarks.md'), 'memory', body)
  children.forEach((c) => c.kill())
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
