/**
 * A full resync reads the revocation ZSETs in pages (issue 6 point 5, issue 4 point 2): a real
 * Redis seeded with pipelined ZADDs, a real store with a small page size so that a test goes
 * through many pages quickly, and a real RevocationSync filling a RevocationSet.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { GatewayError } from '../../src/errors.js'
import { createLogger } from '../../src/ops/logger.js'
import { RevocationSet } from '../../src/revocation/set.js'
import { RevocationSync } from '../../src/revocation/sync.js'
import { createRedisClients, whenReady } from '../../src/sessions/redis-client.js'
import { redisKeys } from '../../src/sessions/redis-layout.js'
import { createRedisStore } from '../../src/sessions/redis-store.js'
import { newSessionId } from '../../src/sessions/tokens.js'
import type { SessionStore } from '../../src/sessions/types.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { waitFor } from '../helpers/redis-process.js'
import { storeConfig } from '../sessions/redis-fixture.js'
import { OPTIONS, type TapTest } from '../sessions/store-fixtures.js'

const log = createLogger(process.env['DEBUG_LOG'] ? 'warn' : 'silent')
const PREFIX = 'p:'
const [SESSIONS, USERS, NOT_BEFORE] = redisKeys(PREFIX).revoked
const HOUR = 3_600_000

async function makeStore(t: TapTest, redis: RedisServer, commandTimeout: number, revocationPageSize: number): Promise<SessionStore> {
  const { client, subscriber } = createRedisClients(storeConfig({ url: redis.url, commandTimeout }))
  await whenReady(client, 10_000)
  const store = createRedisStore(client, subscriber, { ...OPTIONS, keyPrefix: PREFIX, ownsClient: true, revocationPageSize })
  t.teardown(() => store.close())
  return store
}

/**
 * `count` live revoked sessions, half of them sharing one forgetAfter (as an endAll or a burst
 * writes them), the rest each its own; plus `expired` dead ones and `users` logout-all marks.
 */
async function seed(redis: RedisServer, now: number, count: number, expired: number, users: number) {
  const client = new Redis(redis.url)
  const live: string[] = []
  for (let i = 0; i < count; i += 5000) {
    const pipeline = client.pipeline()
    for (let j = i; j < Math.min(count, i + 5000); j += 500) {
      const args: Array<string | number> = []
      for (let k = j; k < Math.min(count, j + 500); k++) {
        const sid = newSessionId(`u-${k % 997}`)
        live.push(sid)
        args.push(k % 2 === 0 ? now + HOUR : now + HOUR + k, sid)
      }
      pipeline.zadd(SESSIONS, ...args)
    }
    await pipeline.exec()
  }
  const dead: Array<string | number> = []
  for (let k = 0; k < expired; k++) dead.push(now - 1 - k, newSessionId(`gone-${k}`))
  if (expired > 0) await client.zadd(SESSIONS, ...dead)
  const subjects = Array.from({ length: users }, (_, k) => `user-${k}@example.com`)
  if (users > 0) {
    await client.zadd(USERS, ...subjects.flatMap((s) => [now + HOUR, s]))
    await client.hset(NOT_BEFORE, Object.fromEntries(subjects.map((s, k) => [s, now - k])))
  }
  return { live, subjects, dead: dead.filter((_, i) => i % 2 === 1) as string[], client }
}

/** The store with each page counted, and `during` run once after the page numbered `at`. */
function counting(store: SessionStore, at = -1, during: () => Promise<void> = async () => {}) {
  const state = { pages: 0, largest: 0 }
  const wrapped: SessionStore = {
    ...store,
    async *revocationPages(now) {
      for await (const page of store.revocationPages!(now)) {
        state.pages++
        state.largest = Math.max(state.largest, page.sessions.length + page.users.length)
        yield page
        if (state.pages === at) await during()
      }
    },
  }
  return { store: wrapped, state }
}

t.test('a paged resync brings every live entry and no dead one, a bounded page at a time', async (t) => {
  const redis = await startRedis(t)
  const now = Date.now()
  const { live, subjects, dead, client } = await seed(redis, now, 60_000, 500, 400)
  t.teardown(() => client.disconnect())
  const { store, state } = counting(await makeStore(t, redis, 500, 1000))
  const set = new RevocationSet()
  const sync = new RevocationSync(store, set, { resyncInterval: 600_000, now: () => now, log })
  t.teardown(() => sync.stop())
  await sync.start()

  t.ok(sync.synced, 'the instance is synced')
  t.ok(state.pages >= 50, `in ${state.pages} pages`)
  t.ok(state.largest <= 3000, `of at most ${state.largest} entries each (a COUNT of 1,000 is a hint)`)
  t.equal(set.size, live.length + subjects.length, 'every live session and mark, once each')
  t.equal(live.filter((sid, k) => !set.isRevoked(sid, `u-${k % 997}`, 0)).length, 0, 'all 60,000 sessions are revoked')
  t.equal(dead.filter((sid) => set.isRevoked(sid, 'nobody', 0)).length, 0, 'no expired entry came back')
  t.ok(
    subjects.every((s, k) => set.isRevoked('no-such-session', s, (now - k) / 1000 - 2)),
    'each mark with its own notBefore',
  )
  t.notOk(set.isRevoked('no-such-session', subjects[5]!, (now - 5) / 1000), 'and not a later one')
})

t.test('a resync with a 200 ms commandTimeout succeeds in pages where one reply times out', async (t) => {
  const redis = await startRedis(t)
  const now = Date.now()
  const { live, client } = await seed(redis, now, 200_000, 0, 0)
  t.teardown(() => client.disconnect())

  // The whole ZSET in one call, as the snapshot used to read it.
  const oneReply = await makeStore(t, redis, 200, 1_000_000)
  const error = await oneReply.revocations(now).then(
    () => null,
    (err: unknown) => err,
  )
  t.ok(error instanceof GatewayError && error.code === 'store_unavailable', 'one reply outlives the timeout')
  // The abandoned call still runs in Redis, and its reply still reaches this process and is
  // parsed on its event loop: a ping on the same connection answers once both are over.
  await waitFor(
    'the abandoned reply to be consumed',
    () =>
      oneReply.ping().then(
        () => true,
        () => false,
      ),
    10_000,
  )

  const set = new RevocationSet()
  const sync = new RevocationSync(await makeStore(t, redis, 200, 10_000), set, { resyncInterval: 600_000, retryDelay: 600_000, now: () => now, log })
  t.teardown(() => sync.stop())
  await sync.start()
  t.ok(sync.synced, 'the first resync, in pages of 10,000, completed')
  t.equal(set.size, live.length, `with all ${live.length} entries`)
})

t.test('entries added, raised and pruned while pages are read lose no live entry', async (t) => {
  const redis = await startRedis(t)
  const now = Date.now()
  const { live, client } = await seed(redis, now, 60_000, 2000, 0)
  t.teardown(() => client.disconnect())
  const peer = await makeStore(t, redis, 500, 1000)
  const fresh = newSessionId('u-new')
  const unpublished = newSessionId('u-quiet')
  const { store, state } = counting(await makeStore(t, redis, 500, 1000), 10, async () => {
    // Another instance ends a session: its entry lands behind or ahead of the cursor.
    await peer.revoke!([fresh], now)
    // ZADD GT moves entries (read or not) to a higher score; a pruning REVOKE drops the dead.
    await client.zadd(SESSIONS, 'GT', ...live.filter((_, k) => k % 7 === 0).flatMap((sid) => [now + 2 * HOUR, sid]))
    await client.zremrangebyscore(SESSIONS, '-inf', now)
    // Written without a message: only a later resync can bring it (the gap's follow-up).
    await client.zadd(SESSIONS, now + HOUR, unpublished)
  })
  const set = new RevocationSet()
  const sync = new RevocationSync(store, set, { resyncInterval: 600_000, now: () => now, log })
  t.teardown(() => sync.stop())
  await sync.start()

  t.ok(state.pages > 10, `the changes came mid-resync (after page 10 of ${state.pages})`)
  t.equal(live.filter((sid, k) => !set.isRevoked(sid, `u-${k % 997}`, 0)).length, 0, 'every seeded live entry arrived')
  await waitFor('the new revocation', async () => set.isRevoked(fresh, 'u-new', 0), 2000)
  t.pass('the revocation made mid-resync is enforced (from its page or from its event)')
  await sync.resync()
  t.ok(set.isRevoked(unpublished, 'u-quiet', 0), 'a silent entry missed by a resync is in the next one')
})
