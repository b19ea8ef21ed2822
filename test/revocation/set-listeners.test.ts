import t from 'tap'
import { RevocationSet } from '../../src/revocation/set.js'
import type { RevocationEvent } from '../../src/sessions/types.js'

const T = 1_800_000_000_000

t.test('the set passes each revocation it learns to its listeners once, whichever way it came', async (t) => {
  const set = new RevocationSet()
  const heard: RevocationEvent[] = []
  set.subscribe((e) => heard.push(e))
  set.apply({ type: 'session', sessionId: 's1', forgetAfter: T + 60_000 })
  set.apply({ type: 'session', sessionId: 's1', forgetAfter: T + 90_000 })
  set.merge({
    sessions: [
      ['s1', T + 60_000],
      ['s2', T + 60_000],
    ],
    users: [['u', T, T + 60_000]],
  })
  set.apply({ type: 'user', subject: 'u', notBefore: T - 1000, forgetAfter: T + 60_000 })
  set.apply({ type: 'user', subject: 'u', notBefore: T + 5000, forgetAfter: T + 65_000 })
  t.same(
    heard.map((e) => (e.type === 'session' ? e.sessionId : `${e.subject}@${e.notBefore - T}`)),
    ['s1', 's2', 'u@0', 'u@5000'],
    'a repeat, or a mark no later than the one held, is not passed on',
  )
})

t.test('an unsubscribed listener hears nothing more', async (t) => {
  const set = new RevocationSet()
  let heard = 0
  const stop = set.subscribe(() => heard++)
  set.apply({ type: 'session', sessionId: 'a', forgetAfter: T })
  stop()
  set.apply({ type: 'session', sessionId: 'b', forgetAfter: T })
  t.equal(heard, 1)
})
