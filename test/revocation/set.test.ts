import t from 'tap'
import { RevocationSet } from '../../src/revocation/set.js'

const T = 1_800_000_000_000

t.test('a resync adds to the set and never takes a revocation out of it', async (t) => {
  const set = new RevocationSet()
  set.apply({ type: 'session', sessionId: 'known', forgetAfter: T + 60_000 })
  set.apply({ type: 'user', subject: 'u-a', notBefore: T, forgetAfter: T + 60_000 })
  // What a store that restarted without its data sends back: only what happened since.
  set.merge({ sessions: [['newer', T + 90_000]], users: [] })
  t.ok(set.isRevoked('known', 'u-b', 0), 'the revocation the store lost is still enforced')
  t.ok(set.isRevoked('x', 'u-a', T / 1000 - 1), 'so is the logout-all mark')
  t.ok(set.isRevoked('newer', 'u-b', 0), 'and the snapshot is added')
  t.equal(set.size, 3)
})

t.test('a snapshot never shortens an entry or moves a mark back', async (t) => {
  const set = new RevocationSet()
  set.apply({ type: 'session', sessionId: 's', forgetAfter: T + 60_000 })
  set.apply({ type: 'user', subject: 'u', notBefore: T + 10_000, forgetAfter: T + 70_000 })
  set.merge({ sessions: [['s', T + 1000]], users: [['u', T, T + 60_000]] })
  set.prune(T + 30_000)
  t.ok(set.isRevoked('s', 'x', 0), 'the longer lifetime wins')
  t.ok(set.isRevoked('y', 'u', T / 1000 + 5), 'the later mark wins')
  set.prune(T + 80_000)
  t.equal(set.size, 0, 'prune is how entries leave')
})
