/**
 * Contract, part 1: creating, reading, listing, ending and expiring sessions.
 */
import { DAY, IDLE, MAX_AGE, OPTIONS, SECOND, T0, login, newSession, refresh, type ContractOptions, type TapTest } from './store-fixtures.js'

export function lifecycleContract(t: TapTest, { make }: ContractOptions): void {
  t.test('a created session reads back exactly as it was stored', async (t) => {
    const { store } = await make(t)
    const { session } = newSession('alice')
    t.same(await store.create(session, T0), { evicted: [] })
    t.same(await store.get(session.record.id, T0 + SECOND), session.record)
  })

  t.test('a store keeps at most 512 characters of a client-chosen user agent', async (t) => {
    const { store } = await make(t)
    const { session, secret } = newSession('alice')
    session.record.userAgent = 'A'.repeat(20_000)
    await store.create(session, T0)
    t.equal((await store.get(session.record.id, T0))?.userAgent, 'A'.repeat(512))
    const step = refresh(session.record.id, secret, T0 + SECOND)
    const result = await store.rotate({ ...step.request, userAgent: 'B'.repeat(600), ip: 'C'.repeat(600) })
    t.match(result, { kind: 'rotated', session: { userAgent: 'B'.repeat(512), ip: 'C'.repeat(512) } })
  })

  t.test('an unknown session id reads as null', async (t) => {
    const { store } = await make(t)
    const { session } = newSession('alice')
    t.equal(await store.get(session.record.id, T0), null)
  })

  t.test('a session id that does not carry its subject tag is refused', async (t) => {
    const { store } = await make(t)
    const { session } = newSession('alice')
    session.record.subject = 'bob'
    await t.rejects(store.create(session, T0), TypeError)
  })

  t.test("list returns only that user's live sessions, newest first", async (t) => {
    const { store } = await make(t)
    const a1 = await login(store, 'alice', T0)
    const a2 = await login(store, 'alice', T0 + SECOND)
    const a3 = await login(store, 'alice', T0 + 2 * SECOND)
    await login(store, 'bob', T0)
    const listed = await store.list('alice', T0 + 3 * SECOND)
    t.same(
      listed.map((s) => s.id),
      [a3.id, a2.id, a1.id],
    )
    t.ok(listed.every((s) => s.subject === 'alice'))
    t.same(await store.list('nobody', T0), [])
  })

  t.test('end removes a session and returns what it was', async (t) => {
    const { store } = await make(t)
    const { id } = await login(store, 'alice')
    const ended = await store.end(id, 'logout', T0 + SECOND)
    t.equal(ended?.id, id)
    t.equal(await store.get(id, T0 + SECOND), null)
    t.same(await store.list('alice', T0 + SECOND), [])
    t.equal(await store.end(id, 'logout', T0 + SECOND), null, 'ending twice finds nothing')
  })

  t.test("a user can never end another user's session", async (t) => {
    const { store } = await make(t)
    const { id } = await login(store, 'alice')
    t.equal(await store.end(id, 'deleted', T0, 'mallory'), null)
    t.ok(await store.get(id, T0), 'the session is untouched')
    t.equal((await store.end(id, 'deleted', T0, 'alice'))?.id, id, 'its owner can')
  })

  t.test('endAll ends every session of one subject and only those', async (t) => {
    const { store } = await make(t)
    const a1 = await login(store, 'alice', T0)
    const a2 = await login(store, 'alice', T0 + SECOND)
    const b = await login(store, 'bob', T0)
    const ended = await store.endAll('alice', 'logout_all', T0 + 2 * SECOND)
    t.same([...ended].sort(), [a1.id, a2.id].sort())
    t.same(await store.list('alice', T0 + 2 * SECOND), [])
    t.ok(await store.get(b.id, T0 + 2 * SECOND), 'another user keeps their session')
    t.same(await store.endAll('alice', 'logout_all', T0 + 3 * SECOND), [], 'nothing left to end')
  })

  t.test('endAll ends the sessions created by its time and spares one created after (a replayed logout-all)', async (t) => {
    const { store } = await make(t)
    const before = await login(store, 'alice', T0)
    const after = await login(store, 'alice', T0 + 2 * SECOND)
    t.same(await store.endAll('alice', 'logout_all', T0 + SECOND), [before.id])
    t.equal(await store.get(before.id, T0 + 3 * SECOND), null)
    t.ok(await store.get(after.id, T0 + 3 * SECOND), 'the later session lives on')
    t.same(
      (await store.list('alice', T0 + 3 * SECOND)).map((s) => s.id),
      [after.id],
      'and is still listed',
    )
  })

  t.test('create evicts the oldest sessions beyond the per-user limit', async (t) => {
    const { store } = await make(t)
    const ids: string[] = []
    for (let i = 0; i < OPTIONS.maxSessionsPerUser; i++) ids.push((await login(store, 'alice', T0 + i * SECOND)).id)
    const newest = newSession('alice', T0 + 10 * SECOND)
    const { evicted } = await store.create(newest.session, T0 + 10 * SECOND)
    t.same(evicted, [ids[0]])
    t.equal(await store.get(ids[0]!, T0 + 10 * SECOND), null)
    const listed = await store.list('alice', T0 + 10 * SECOND)
    t.equal(listed.length, OPTIONS.maxSessionsPerUser)
    t.equal(listed[0]?.id, newest.session.record.id)
    const snapshot = await store.revocations(T0 + 10 * SECOND)
    t.ok(
      snapshot.sessions.some(([sid]) => sid === ids[0]),
      'the evicted session is revoked',
    )
  })

  t.test('the new session is never evicted, even when its clock is behind', async (t) => {
    const { store } = await make(t)
    for (let i = 0; i < OPTIONS.maxSessionsPerUser; i++) await login(store, 'alice', T0 + 60 * SECOND + i)
    const late = newSession('alice', T0)
    const { evicted } = await store.create(late.session, T0)
    t.equal(evicted.length, 1)
    t.not(evicted[0], late.session.record.id)
    t.ok(await store.get(late.session.record.id, T0))
  })

  t.test('a session unused for the idle lifetime has expired', async (t) => {
    const { store } = await make(t)
    const { id } = await login(store, 'alice')
    t.ok(await store.get(id, T0 + IDLE - 1))
    t.equal(await store.get(id, T0 + IDLE), null, 'get hides it')
    t.same(await store.list('alice', T0 + IDLE), [], 'list hides it')
    t.equal(await store.end(id, 'logout', T0 + IDLE), null, 'there is nothing to end')
  })

  t.test('refreshing a session past its idle lifetime answers expired and ends it', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    t.same(await store.rotate(refresh(id, secret, T0 + IDLE).request), { kind: 'expired' })
    t.same(await store.rotate(refresh(id, secret, T0 + IDLE).request), { kind: 'unknown' }, 'it is gone')
    t.equal(await store.get(id, T0), null, 'even for a clock that is behind')
  })

  t.test('rotation slides the idle expiry but never past the absolute expiry', async (t) => {
    const { store } = await make(t)
    const { id, secret: first } = await login(store, 'alice')
    let secret = first
    let now = T0
    for (let i = 0; i < 2; i++) {
      now += IDLE - DAY // used again just before it would have expired
      const step = refresh(id, secret, now)
      const result = await store.rotate(step.request)
      t.equal(result.kind, 'rotated')
      if (result.kind !== 'rotated') return
      t.equal(result.session.lastUsedAt, now)
      t.equal(result.session.idleExpiresAt, Math.min(now + IDLE, T0 + MAX_AGE))
      t.equal(result.session.absoluteExpiresAt, T0 + MAX_AGE, 'the absolute expiry never moves')
      secret = step.successor
    }
    t.same(
      await store.rotate(refresh(id, secret, T0 + MAX_AGE).request),
      { kind: 'expired' },
      'a session past its absolute lifetime has expired even though it is in use',
    )
    t.equal(await store.get(id, T0 + MAX_AGE - 1), null)
  })

  t.test('endByRefresh accepts the current or the previous token only', async (t) => {
    const { store } = await make(t)
    const { id, secret: s0 } = await login(store, 'alice')
    const r1 = refresh(id, s0, T0 + SECOND)
    await store.rotate(r1.request)
    const r2 = refresh(id, r1.successor, T0 + 2 * SECOND)
    await store.rotate(r2.request)
    const grandParent = refresh(id, s0, T0).request.presentedHash
    t.equal(await store.endByRefresh(id, grandParent, T0 + 3 * SECOND), null, 'not two rotations back')
    t.equal(await store.endByRefresh(id, 'x'.repeat(43), T0 + 3 * SECOND), null, 'not an unknown hash')
    t.ok(await store.get(id, T0 + 3 * SECOND), 'and those changed nothing')
    const previous = r2.request.presentedHash
    t.equal((await store.endByRefresh(id, previous, T0 + 3 * SECOND))?.id, id, 'the previous one ends it')
    t.equal(await store.get(id, T0 + 3 * SECOND), null)
  })

  t.test('endByRefresh with the current token ends the session', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const current = refresh(id, secret, T0).request.presentedHash
    t.equal((await store.endByRefresh(id, current, T0 + SECOND))?.id, id)
    t.same(await store.list('alice', T0 + SECOND), [])
  })
}
