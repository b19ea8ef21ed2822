import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisClients, whenReady } from '../../src/sessions/redis-client.js'
import { createRedisStore } from '../../src/sessions/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/redis-process.js'
import { inspectKeys, redisContract, redisStore, storeConfig } from './redis-fixture.js'
import { storeContract } from './store-contract.js'
import { OPTIONS, SECOND, T0, login, newSession, recorder, refresh, sessionEvent } from './store-fixtures.js'

const server = await startRedis(t)
const config = storeConfig({ url: server.url })

t.test('the shared store contract holds on a single Redis server', async (t) => {
  storeContract(
    t,
    redisContract(config, () => server.stop()),
  )
})

t.test('a session costs at most 560 bytes of Redis memory, indexes included', async (t) => {
  const redis = await startRedis(t)
  const { store, client } = await redisStore(t, storeConfig({ url: redis.url }), 'portcullis:', { historySize: 5 })
  const chrome = newSession('x').session.record.userAgent
  // The profile of `npm run bench:memory`: a browser, roles ["user"], no claims; ~20-byte subjects.
  const measure = async (prefix: string, users: number, perUser: number) => {
    for (let u = 0; u < users; u++) {
      for (let s = 0; s < perUser; s++) {
        const { session, secret: first } = newSession(`${prefix}${u}@example.com`, T0 + s)
        session.record.claims = {}
        await store.create(session, T0 + s)
        let secret = first
        // Enough rotations to fill the remembered history, each counted against a refresh limit.
        for (let i = 0; i < 7; i++) {
          const step = refresh(session.record.id, secret, T0 + i * 60 * SECOND)
          const rotated = await store.rotate({ ...step.request, userAgent: chrome, limit: { max: 30, window: 60 * SECOND } })
          if (rotated.kind !== 'rotated') throw new Error(`rotation answered ${rotated.kind}`)
          secret = step.successor
        }
      }
    }
    const keys = (await inspectKeys(client, 'portcullis:')).filter((k) => k.key.includes(`}${prefix}`) || k.key.includes(':s:'))
    t.equal(keys.length, users + users * perUser, 'a session key for each session and an index for each user, nothing else')
    return { keys, bytes: Math.round(keys.reduce((sum, k) => sum + k.bytes, 0) / (users * perUser)) }
  }
  const one = await measure('solo-', 200, 1)
  const value = one.keys.find((k) => k.key.includes(':s:'))!
  t.comment(
    `MEMORY USAGE, one session per user: ${one.bytes} bytes per session ` +
      `(session key ${value.bytes} bytes holding a ${value.content.length}-byte value, plus the user index)`,
  )
  // A lone session also carries a whole index. The value fits a 320-byte allocation up to ~314
  // bytes: a user agent ~17 bytes longer, or claims, take it to the next one (+64 bytes).
  t.ok(one.bytes <= 560, `${one.bytes} bytes per session for a user with one session`)
  await client.flushdb()
  const three = await measure('trio-', 100, 3)
  t.comment(`MEMORY USAGE, three sessions per user: ${three.bytes} bytes per session`)
  t.ok(three.bytes <= 500, `${three.bytes} bytes per session for a user with three`)
})

t.test('calls to a hanging Redis fail within the command timeout', async (t) => {
  const redis = await startRedis(t)
  const { store } = await redisStore(t, storeConfig({ url: redis.url, commandTimeout: 300 }), 'p:')
  const { id } = await login(store, 'alice')
  redis.pause()
  t.teardown(() => redis.resume())
  const started = Date.now()
  await t.rejects(store.get(id, T0), { code: 'store_unavailable' })
  t.ok(Date.now() - started < 1000, `failed after ${Date.now() - started} ms`)
  redis.resume()
})

t.test('after Redis restarts, the store works again and the feed reports a gap', async (t) => {
  const redis = await startRedis(t)
  const cfg = storeConfig({ url: redis.url })
  const { store } = await redisStore(t, cfg, 'p:')
  const { store: peer } = await redisStore(t, cfg, 'p:')
  const feed = recorder(store)
  t.teardown(feed.stop)
  t.ok(await feed.until(() => feed.gaps() === 1), 'one gap when the feed goes live')
  const kept = await login(store, 'alice')
  await redis.restart({ keepData: true })
  t.ok(await feed.until(() => feed.gaps() === 2, 10_000), 'another gap after the reconnect')
  await waitFor('the command connection', () => store.ping().then(() => true))
  t.ok(await store.get(kept.id, T0), 'sessions survive a Redis restart that keeps its data')
  const { id } = await login(peer, 'bob')
  await peer.end(id, 'logout', T0)
  t.ok(await feed.waitFor(sessionEvent(id)), 'events flow again after the resubscription')
})

t.test('a new store instance finds the sessions another one created', async (t) => {
  const cfg = storeConfig({ url: (await startRedis(t)).url })
  const first = await redisStore(t, cfg, 'p:')
  const { id, secret } = await login(first.store, 'alice')
  await first.store.close()
  const { store } = await redisStore(t, cfg, 'p:')
  t.equal((await store.rotate(refresh(id, secret, T0 + SECOND).request)).kind, 'rotated')
})

t.test('garbage on the revocation channel is ignored, and a skipped number means a gap', async (t) => {
  const redis = await startRedis(t)
  const { store } = await redisStore(t, storeConfig({ url: redis.url }), 'p:')
  const feed = recorder(store)
  t.teardown(feed.stop)
  await feed.until(() => feed.gaps() === 1)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const event = (n: number) => ({ type: 'session', sessionId: `s${n}`, forgetAfter: n })
  for (const junk of ['', 'nope', '[]', '{"seq":"1","events":[]}', '{"seq":1}', JSON.stringify({ seq: 1.5, events: [event(0)] })]) {
    await raw.publish('p:revocations', junk)
  }
  await raw.publish('p:revocations', JSON.stringify({ seq: 7, events: [event(1), null, { type: 'session', sessionId: 5 }] }))
  await raw.publish('p:revocations', JSON.stringify({ seq: 8, events: [event(2), { type: 'user', subject: 'a' }] }))
  t.ok(await feed.until(() => feed.events.length === 2))
  t.same(feed.events, [event(1), event(2)], 'only the well-formed events of well-formed messages')
  t.equal(feed.gaps(), 1, 'consecutive numbers are no gap')
  await raw.publish('p:revocations', JSON.stringify({ seq: 10, events: [event(3)] }))
  t.ok(await feed.until(() => feed.gaps() === 2), 'number 9 went missing: resync')
})

t.test('revocations from the store carry consecutive sequence numbers', async (t) => {
  const redis = await startRedis(t)
  const { store } = await redisStore(t, storeConfig({ url: redis.url }), 'p:')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const seen: number[] = []
  raw.on('message', (_channel: string, message: string) => seen.push(JSON.parse(message).seq))
  await raw.subscribe('p:revocations')
  for (let i = 0; i < 3; i++) await store.end((await login(store, 'alice')).id, 'logout', T0)
  await store.endAll('alice', 'logout_all', T0)
  await waitFor('four messages', async () => seen.length === 4)
  t.same(seen, [seen[0], seen[0]! + 1, seen[0]! + 2, seen[0]! + 3])
})

t.test('a key prefix with braces is refused, since it would move the hash tags', async (t) => {
  const { client, subscriber } = createRedisClients(config)
  t.teardown(() => client.disconnect())
  t.throws(() => createRedisStore(client, subscriber, { ...OPTIONS, keyPrefix: '{x}:' }), TypeError)
})

t.test('the client factory gives up waiting when nothing listens', async (t) => {
  const { client } = createRedisClients(storeConfig({ url: 'redis://127.0.0.1:1' }))
  t.teardown(() => client.disconnect())
  await t.rejects(whenReady(client, 200))
})
