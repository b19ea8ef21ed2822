/**
 * Contract, part 2: refresh rotation, the grace window and theft detection (SPEC.md "Refresh"),
 * and the per-session refresh limit the store counts with the rotation.
 */
import { deriveSuccessor } from '../../src/sessions/tokens.js'
import { GRACE, SECOND, T0, login, refresh, type ContractOptions, type TapTest } from './store-fixtures.js'

export function rotationContract(t: TapTest, { make }: ContractOptions): void {
  t.test('rotating the current token makes its successor current', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const r1 = refresh(id, secret, T0 + SECOND)
    const result = await store.rotate(r1.request)
    t.equal(result.kind, 'rotated')
    if (result.kind !== 'rotated') return
    t.equal(result.session.id, id)
    t.equal(result.session.lastUsedAt, T0 + SECOND)
    t.equal(result.session.userAgent, 'curl/8.5.0', 'the client facts are the latest ones')
    t.equal(result.session.ip, '198.51.100.2')
    t.same(await store.get(id, T0 + SECOND), result.session)
    const r2 = refresh(id, r1.successor, T0 + GRACE * 5)
    t.equal((await store.rotate(r2.request)).kind, 'rotated', 'the successor rotates in turn')
  })

  t.test('the just-rotated token within the grace window gets the same nonce back', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const first = refresh(id, secret, T0)
    await store.rotate(first.request)
    const again = refresh(id, secret, T0 + GRACE)
    const result = await store.rotate(again.request)
    t.equal(result.kind, 'grace')
    if (result.kind !== 'grace') return
    t.equal(result.nonce, first.request.nonce)
    t.equal(deriveSuccessor(secret, result.nonce), first.successor, 'both tabs converge on one token')
    t.equal((await store.rotate(refresh(id, first.successor, T0 + GRACE).request)).kind, 'rotated', 'and the session lives on with it')
  })

  t.test('many concurrent refreshes with one token rotate once and converge', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const attempts = Array.from({ length: 50 }, () => refresh(id, secret, T0 + SECOND))
    const results = await Promise.all(attempts.map((a) => store.rotate(a.request)))
    const rotated = results.flatMap((r, i) => (r.kind === 'rotated' ? [i] : []))
    t.equal(rotated.length, 1, 'exactly one rotation')
    const winner = attempts[rotated[0]!]!
    const graced = results.filter((r) => r.kind === 'grace')
    t.equal(graced.length, 49, 'every other one is in the grace window')
    t.ok(
      graced.every((r) => r.kind === 'grace' && r.nonce === winner.request.nonce),
      "all with the winner's nonce",
    )
    t.equal((await store.rotate(refresh(id, winner.successor, T0 + 2 * SECOND).request)).kind, 'rotated')
  })

  t.test('the just-rotated token after the grace window ends the session', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const r1 = refresh(id, secret, T0)
    await store.rotate(r1.request)
    const late = await store.rotate(refresh(id, secret, T0 + GRACE + 1).request)
    t.equal(late.kind, 'reused')
    if (late.kind === 'reused') t.equal(late.session.id, id)
    t.equal(await store.get(id, T0 + GRACE + 1), null, 'the session is gone')
    t.same(await store.rotate(refresh(id, r1.successor, T0 + GRACE + 2).request), { kind: 'unknown' }, 'its successor died with it')
    const snapshot = await store.revocations(T0 + GRACE + 2)
    t.ok(
      snapshot.sessions.some(([sid]) => sid === id),
      'and its access tokens are revoked',
    )
  })

  t.test('the grand-parent token ends the session even inside the grace window', async (t) => {
    const { store } = await make(t)
    const { id, secret: s0 } = await login(store, 'alice')
    const r1 = refresh(id, s0, T0)
    await store.rotate(r1.request)
    await store.rotate(refresh(id, r1.successor, T0 + 1).request)
    const result = await store.rotate(refresh(id, s0, T0 + 2).request)
    t.equal(result.kind, 'reused')
    t.equal(await store.get(id, T0 + 2), null)
  })

  t.test('a token from deep in the history still counts as theft', async (t) => {
    const { store } = await make(t)
    const { id, secret: s0 } = await login(store, 'alice')
    let secret = s0
    // historySize (4) rotated hashes are remembered: the predecessor and three before it.
    const seen: string[] = []
    for (let i = 0; i < 4; i++) {
      seen.push(secret)
      const step = refresh(id, secret, T0 + i * GRACE * 2)
      await store.rotate(step.request)
      secret = step.successor
    }
    t.equal((await store.rotate(refresh(id, seen[0]!, T0 + GRACE * 10).request)).kind, 'reused')
  })

  t.test('a token older than the remembered history is merely unknown', async (t) => {
    const { store } = await make(t)
    const { id, secret: s0 } = await login(store, 'alice')
    let secret = s0
    for (let i = 0; i < 5; i++) {
      const step = refresh(id, secret, T0 + i * GRACE * 2)
      await store.rotate(step.request)
      secret = step.successor
    }
    t.same(await store.rotate(refresh(id, s0, T0 + GRACE * 10).request), { kind: 'unknown' })
    t.ok(await store.get(id, T0 + GRACE * 10), 'the session lives on')
  })

  t.test('an unknown secret for a known session changes nothing', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const before = await store.get(id, T0)
    const stranger = refresh(id, 'A'.repeat(43), T0 + SECOND)
    t.same(await store.rotate(stranger.request), { kind: 'unknown' })
    t.same(await store.get(id, T0 + SECOND), before, 'not even last-used moved')
    t.equal((await store.rotate(refresh(id, secret, T0 + 2 * SECOND).request)).kind, 'rotated', 'the real token still works')
    const snapshot = await store.revocations(T0 + 2 * SECOND)
    t.notOk(
      snapshot.sessions.some(([sid]) => sid === id),
      'nothing was revoked',
    )
  })

  t.test('an unknown session id rotates to unknown', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    await store.end(id, 'logout', T0)
    t.same(await store.rotate(refresh(id, secret, T0).request), { kind: 'unknown' })
  })

  const LIMIT = { max: 2, window: 60 * SECOND }
  /** A refresh as the gateway makes it with rateLimits.refresh.perSession at 2 per minute. */
  const limited = (id: string, secret: string, now: number) => {
    const step = refresh(id, secret, now)
    return { ...step, request: { ...step.request, limit: LIMIT } }
  }

  t.test('a refresh past the per-session limit answers limited and changes nothing', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    const r1 = limited(id, secret, T0 + SECOND)
    t.equal((await store.rotate(r1.request)).kind, 'rotated')
    const r2 = limited(id, r1.successor, T0 + 2 * SECOND)
    t.equal((await store.rotate(r2.request)).kind, 'rotated')
    const before = await store.get(id, T0 + 3 * SECOND)
    t.same(
      await store.rotate(limited(id, r2.successor, T0 + 3 * SECOND).request),
      { kind: 'limited', retryAfterMs: 58 * SECOND },
      'until the window that began with the first refresh ends',
    )
    t.same(await store.get(id, T0 + 3 * SECOND), before, 'the session is as it was')
    t.equal(
      (await store.rotate(limited(id, secret, T0 + 4 * SECOND).request)).kind,
      'limited',
      'a rotated-away token too: the limit is checked first',
    )
    t.ok(await store.get(id, T0 + 4 * SECOND), 'so it ended nothing')
    t.equal(
      (await store.rotate(limited(id, r2.successor, T0 + 61 * SECOND).request)).kind,
      'rotated',
      'in the next window the refused token is still the current one',
    )
    t.equal((await store.rotate(limited(id, r2.successor, T0 + 62 * SECOND).request)).kind, 'grace', 'and it has now been rotated once')
  })

  t.test('grace answers count against the limit, secrets the session never issued do not', async (t) => {
    const { store } = await make(t)
    const { id, secret } = await login(store, 'alice')
    for (let i = 0; i < 5; i++) t.same(await store.rotate(limited(id, 'B'.repeat(43), T0).request), { kind: 'unknown' })
    const r1 = limited(id, secret, T0 + SECOND)
    t.equal((await store.rotate(r1.request)).kind, 'rotated', 'the unknown ones spent nothing')
    t.equal((await store.rotate(limited(id, secret, T0 + 2 * SECOND).request)).kind, 'grace')
    t.same(
      await store.rotate(limited(id, secret, T0 + 3 * SECOND).request),
      { kind: 'limited', retryAfterMs: 58 * SECOND },
      'the grace answer was the second refresh of the window',
    )
    t.equal(
      (await store.rotate(refresh(id, r1.successor, T0 + 3 * SECOND).request)).kind,
      'rotated',
      'a rotation asked without a limit is not limited',
    )
  })
}
