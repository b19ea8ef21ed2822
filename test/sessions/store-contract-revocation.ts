/**
 * Contract, part 3: revocation entries, their feed, and (for Redis) what lies in the store.
 */
import { GatewayError } from '../../src/errors.js'
import { hashRefresh } from '../../src/sessions/tokens.js'
import {
  OPTIONS,
  SECOND,
  T0,
  login,
  newSession,
  recorder,
  refresh,
  secretsSeen,
  sessionEvent,
  userEvent,
  type ContractOptions,
  type TapTest,
} from './store-fixtures.js'

const FORGET = OPTIONS.revocationTtl

export function revocationContract(t: TapTest, { make }: ContractOptions): void {
  t.test('an ended session is revoked until forgetAfter, then forgotten', async (t) => {
    const { store } = await make(t)
    const { id } = await login(store, 'alice')
    await store.end(id, 'logout', T0 + SECOND)
    const snapshot = await store.revocations(T0 + 2 * SECOND)
    t.same(
      snapshot.sessions.filter(([sid]) => sid === id),
      [[id, T0 + SECOND + FORGET]],
    )
    const later = await store.revocations(T0 + SECOND + FORGET)
    t.same(later, { sessions: [], users: [] }, 'pruned once forgetAfter has passed')
  })

  t.test('endAll sets a not-before mark on the subject and revokes each session', async (t) => {
    const { store } = await make(t)
    const a = await login(store, 'alice')
    const now = T0 + 5 * SECOND
    await store.endAll('alice', 'logout_all', now)
    const snapshot = await store.revocations(now)
    t.same(snapshot.users, [['alice', now, now + FORGET]])
    t.same(snapshot.sessions, [[a.id, now + FORGET]])
    t.same(await store.revocations(now + FORGET), { sessions: [], users: [] })
  })

  t.test('subscribers on another instance receive every kind of revocation', async (t) => {
    const { store, peer = store } = await make(t)
    const feed = recorder(store)
    t.teardown(feed.stop)
    t.ok(await feed.until(() => feed.gaps() >= 1), 'the feed reports a gap once it is live')
    const ended = await login(peer, 'alice')
    await peer.end(ended.id, 'admin', T0)
    const event = await feed.waitFor(sessionEvent(ended.id))
    t.same(event, { type: 'session', sessionId: ended.id, forgetAfter: T0 + FORGET })
    const stolen = await login(peer, 'bob')
    const r1 = refresh(stolen.id, stolen.secret, T0)
    await peer.rotate(r1.request)
    await peer.rotate(refresh(stolen.id, stolen.secret, T0 + 60 * SECOND).request)
    t.ok(await feed.waitFor(sessionEvent(stolen.id)), 'reuse detection is announced')
    await login(peer, 'carol')
    await peer.endAll('carol', 'logout_all', T0 + SECOND)
    t.same(await feed.waitFor(userEvent('carol')), { type: 'user', subject: 'carol', notBefore: T0 + SECOND, forgetAfter: T0 + SECOND + FORGET })
  })

  t.test('an instance hears its own revocations at once', async (t) => {
    const { store } = await make(t)
    const feed = recorder(store)
    t.teardown(feed.stop)
    const { id } = await login(store, 'alice')
    await store.end(id, 'logout', T0)
    t.ok(feed.events.some(sessionEvent(id)), 'delivered before end() resolved')
  })

  t.test('unsubscribing stops the feed', async (t) => {
    const { store, peer = store } = await make(t)
    const other = recorder(store)
    t.teardown(other.stop)
    await other.until(() => other.gaps() >= 1)
    const feed = recorder(store)
    feed.stop()
    const { id } = await login(peer, 'alice')
    await peer.end(id, 'logout', T0)
    t.ok(await other.waitFor(sessionEvent(id)), 'a listener still subscribed hears it')
    t.same(feed.events, [], 'the one that left does not')
  })

  t.test('ping resolves while the store answers', async (t) => {
    const { store } = await make(t)
    await t.resolves(store.ping())
  })
}

/** Redis only: what the store leaves in the database. */
export function storageContract(t: TapTest, { make, inspects }: ContractOptions): void {
  if (!inspects) return
  t.test('every key the store writes has a TTL', async (t) => {
    const { store, inspect } = await make(t)
    if (!inspect) throw new Error('this fixture cannot inspect its store')
    await workload(store)
    const keys = await inspect()
    t.ok(keys.length >= 4, `${keys.length} keys written`)
    for (const { key, pttl } of keys) t.ok(pttl > 0, `${key} expires (PTTL ${pttl})`)
  })

  t.test('no refresh secret is ever stored, only hashes and nonces', async (t) => {
    const { store, inspect } = await make(t)
    if (!inspect) throw new Error('this fixture cannot inspect its store')
    await workload(store)
    const content = (await inspect()).map((k) => `${k.key} ${k.content}`).join('\n')
    // Values are compared byte for byte (latin1): a secret must not appear as text or as raw bytes.
    const raw = (base64url: string, bytes?: number) => Buffer.from(base64url, 'base64url').subarray(0, bytes).toString('latin1')
    t.ok(secretsSeen.size > 5)
    const leaked = [...secretsSeen].filter((secret) => content.includes(secret) || content.includes(raw(secret)))
    t.same(leaked, [], 'no secret appears in any key or value')
    t.ok(
      [...secretsSeen].some((s) => content.includes(raw(hashRefresh(s), 16))),
      'hashes (their first 128 bits) are what is kept',
    )
  })
}

/** Touches every kind of key: sessions, rotations, index, revocations, user marks. */
async function workload(store: import('../../src/sessions/types.js').SessionStore): Promise<void> {
  const a = await login(store, 'alice')
  const r1 = refresh(a.id, a.secret, T0 + SECOND)
  await store.rotate(r1.request)
  await store.rotate(refresh(a.id, r1.successor, T0 + 2 * SECOND).request)
  await login(store, 'alice')
  const b = await login(store, 'bob')
  await store.end(b.id, 'logout', T0 + 3 * SECOND)
  await login(store, 'carol')
  await store.endAll('carol', 'logout_all', T0 + 4 * SECOND)
}

/** Runs last: the backend goes down for good. Every call must fail fast with 503. */
export function unavailableContract(t: TapTest, { make, stopBackend }: ContractOptions): void {
  if (!stopBackend) return
  t.test('every store call fails fast with store_unavailable when the backend is down', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    await stopBackend()
    const calls: Record<string, () => Promise<unknown>> = {
      create: () => store.create(newSession('alice').session, T0),
      rotate: () => store.rotate(refresh(id, secret, T0).request),
      get: () => store.get(id, T0),
      list: () => store.list('alice', T0),
      end: () => store.end(id, 'logout', T0),
      endByRefresh: () => store.endByRefresh(id, hashRefresh(secret), T0),
      endAll: () => store.endAll('alice', 'logout_all', T0),
      revocations: () => store.revocations(T0),
      ping: () => store.ping(),
      putNew: () => store.putNew('k', 'v', SECOND, T0),
      take: () => store.take('k', T0),
      link: () => store.link('k', 'm', T0 + SECOND, T0),
      linked: () => store.linked('k', T0),
    }
    for (const [name, call] of Object.entries(calls)) {
      const started = Date.now()
      const error = await call().then(
        () => null,
        (err: unknown) => err,
      )
      const took = Date.now() - started
      t.ok(error instanceof GatewayError && error.code === 'store_unavailable', `${name} rejects with store_unavailable`)
      t.ok(took < 1000, `${name} failed in ${took} ms`)
    }
  })
}
