/**
 * The store wrapper emits session.created and session.ended (with its reason) for every way a
 * session starts or ends, and nothing for calls that end nothing.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { SecurityEvents, type SecurityEvent } from '../../src/ops/events.js'
import { instrumentStore } from '../../src/ops/instrument-store.js'
import { createLogger } from '../../src/ops/logger.js'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { hashRefresh } from '../../src/sessions/tokens.js'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import { DAY, login, OPTIONS, refresh, SECOND, T0 } from '../sessions/store-fixtures.js'

function setUp() {
  const emitted: SecurityEvent[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) emitted.push((JSON.parse(l) as { event: SecurityEvent }).event)
      cb()
    },
  })
  const events = new SecurityEvents({ logger: createLogger('info', sink) })
  const store = instrumentStore(createMemoryStore(OPTIONS), new GatewayMetrics(), events)
  const taken = () => emitted.splice(0).map((e) => ({ type: e.type, ...e.data }) as Record<string, unknown>)
  return { store, taken }
}

t.test('a new session is announced with its subject and client, and the sessions it evicts as ended', async (t) => {
  const { store, taken } = setUp()
  const a = await login(store, 'alice')
  t.match(taken(), [{ type: 'session.created', sessionId: a.id, subject: 'alice', ip: '203.0.113.7', userAgent: /^Mozilla/ }])
  await login(store, 'alice')
  await login(store, 'alice')
  taken()
  const d = await login(store, 'alice') // the fourth, beyond maxSessionsPerUser (3)
  t.same(
    taken().map((e) => [e.type, e.sessionId, e.subject, 'reason' in e ? e.reason : '']),
    [
      ['session.created', d.id, 'alice', ''],
      ['session.ended', a.id, 'alice', 'evicted'],
    ],
  )
})

t.test('every ending is announced once with its reason, and an ending that ended nothing is not', async (t) => {
  const { store, taken } = setUp()
  const one = await login(store, 'bob')
  const two = await login(store, 'bob')
  const three = await login(store, 'bob')
  taken()
  await store.end(one.id, 'admin', T0)
  await store.end(one.id, 'admin', T0) // already ended
  await store.endByRefresh(two.id, hashRefresh(two.secret), T0)
  await store.endAll('bob', 'logout_all', T0)
  t.same(taken(), [
    { type: 'session.ended', sessionId: one.id, subject: 'bob', reason: 'admin' },
    { type: 'session.ended', sessionId: two.id, subject: 'bob', reason: 'logout' },
    { type: 'session.ended', sessionId: three.id, subject: 'bob', reason: 'logout_all' },
  ])
})

t.test('a refresh that finds reuse or expiry ends the session with that reason; a rotation ends nothing', async (t) => {
  const { store, taken } = setUp()
  const stolen = await login(store, 'carol')
  const old = await login(store, 'carol')
  taken()
  const first = refresh(stolen.id, stolen.secret, T0 + SECOND)
  t.equal((await store.rotate(first.request)).kind, 'rotated')
  t.same(taken(), [], 'a rotation is no event')
  t.equal((await store.rotate(refresh(stolen.id, stolen.secret, T0 + 60 * SECOND).request)).kind, 'reused')
  t.equal((await store.rotate(refresh(old.id, old.secret, T0 + 15 * DAY).request)).kind, 'expired')
  t.same(taken(), [
    { type: 'session.ended', sessionId: stolen.id, subject: 'carol', reason: 'reuse' },
    // The store does not read an expired session back: its subject is not known here.
    { type: 'session.ended', sessionId: old.id, reason: 'expired' },
  ])
})
