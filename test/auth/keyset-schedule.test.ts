import t from 'tap'
import { byActivation, plan, signerIndex, type Schedule, type ScheduledKey } from '../../src/auth/keyset-schedule.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const T0 = Date.UTC(2026, 10, 1)
// The defaults (30d, 1d) and a 10-minute access token with 30 s of tolerance.
const schedule: Schedule = { rotateEvery: 30 * DAY, publishAhead: DAY, retainFor: 10 * 60_000 + 30_000 }
const key = (kid: string, activatesAt: number): ScheduledKey => ({ kid, activatesAt })

t.test('an empty keyset gets a key that signs at once', async (t) => {
  t.same(plan([], T0, schedule), { drop: [], add: T0 })
})

t.test('the signer is the newest key already activated, whatever order the store lists them in', async (t) => {
  const keys = byActivation([key('c', T0 + 60 * DAY), key('a', T0), key('b', T0 + 30 * DAY)])
  t.same(
    keys.map((k) => k.kid),
    ['a', 'b', 'c'],
  )
  t.equal(keys[signerIndex(keys, T0)]!.kid, 'a')
  t.equal(keys[signerIndex(keys, T0 + 30 * DAY - 1)]!.kid, 'a', 'one millisecond before the switch')
  t.equal(keys[signerIndex(keys, T0 + 30 * DAY)]!.kid, 'b', 'at the switch')
  t.equal(keys[signerIndex(keys, T0 + 90 * DAY)]!.kid, 'c')
})

t.test('a clock behind the writer of the only key still has a signer: the earliest key', async (t) => {
  const keys = [key('new', T0 + 5_000)]
  t.equal(signerIndex(keys, T0), 0)
})

t.test('nothing changes while the signer is young', async (t) => {
  t.same(plan([key('a', T0)], T0 + 29 * DAY - 1, schedule), { drop: [], add: null })
})

t.test('the next key is published publishAhead before it signs, to activate when rotateEvery ends', async (t) => {
  t.same(plan([key('a', T0)], T0 + 29 * DAY, schedule), { drop: [], add: T0 + 30 * DAY })
  t.same(plan([key('a', T0), key('b', T0 + 30 * DAY)], T0 + 29 * DAY + HOUR, schedule), { drop: [], add: null }, 'once: it is there now')
})

t.test('a next key published late still gets its full publishAhead: the signer carries on meanwhile', async (t) => {
  // Every instance was down when it was due: a new key that signed at once would be unknown
  // to upstreams holding a cached JWKS.
  const late = T0 + 45 * DAY
  t.same(plan([key('a', T0)], late, schedule), { drop: [], add: late + DAY })
})

t.test('a retired key verifies for retainFor after it stopped signing, then is dropped', async (t) => {
  const keys = [key('a', T0), key('b', T0 + 30 * DAY)]
  t.same(plan(keys, T0 + 30 * DAY + schedule.retainFor - 1, schedule).drop, [], 'still needed for the last tokens it signed')
  t.same(plan(keys, T0 + 30 * DAY + schedule.retainFor, schedule).drop, ['a'])
  t.same(plan(keys, T0 + 30 * DAY - 1, schedule).drop, [], 'a key still signing is never dropped')
})

t.test('through three keys: at most two published at once, a signer at every moment, each published a day ahead', async (t) => {
  let keys: ScheduledKey[] = []
  const published = new Map<string, number>()
  const signers: string[] = []
  const early: string[] = []
  let most = 0
  let n = 0
  for (let now = T0; now <= T0 + 95 * DAY; now += HOUR) {
    const todo = plan(keys, now, schedule)
    keys = keys.filter((k) => !todo.drop.includes(k.kid))
    if (todo.add !== null) {
      const kid = `k${n++}`
      keys.push(key(kid, todo.add))
      published.set(kid, now)
    }
    most = Math.max(most, keys.length)
    const sorted = byActivation(keys)
    const signer = sorted[signerIndex(sorted, now)]!
    if (signer.activatesAt > now) early.push(signer.kid)
    if (signers.at(-1) !== signer.kid) signers.push(signer.kid)
  }
  t.equal(most, 2, 'signer and next, or signer and retired: a retired key is gone long before the next is published')
  t.same(early, [], 'no key ever signed before its activation')
  t.same(signers, ['k0', 'k1', 'k2', 'k3'])
  for (const kid of ['k1', 'k2', 'k3']) {
    const activatesAt = T0 + Number(kid.slice(1)) * 30 * DAY
    t.equal(activatesAt - published.get(kid)!, DAY, `${kid} was public a day before it signed`)
  }
})
