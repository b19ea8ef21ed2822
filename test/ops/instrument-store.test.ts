/**
 * The counting wrapper around the session store: sessions ended are counted by reason, and
 * every call (the optional `revoke` included) reaches the real store.
 */
import t from 'tap'
import { instrumentStore } from '../../src/ops/instrument-store.js'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import type { RevocationEvent, SessionStore } from '../../src/sessions/types.js'
import { login, OPTIONS, T0 } from '../sessions/store-fixtures.js'
import { value } from './prometheus.js'

t.test('sessions ended through the store are counted by reason, and revoke is passed on', async (t) => {
  const metrics = new GatewayMetrics()
  const store = instrumentStore(createMemoryStore(OPTIONS), metrics)
  const heard: RevocationEvent[] = []
  store.subscribe({ onEvent: (e) => heard.push(e), onGap: () => {} })
  const a = await login(store, 'alice')
  await login(store, 'alice')
  await login(store, 'alice')
  await login(store, 'alice') // beyond maxSessionsPerUser (3): the oldest is evicted
  t.equal(await store.end(a.id, 'logout', T0), null, 'already evicted')
  const b = await login(store, 'bob')
  t.ok(await store.end(b.id, 'deleted', T0))
  t.equal((await store.endAll('alice', 'logout_all', T0)).length, 3)
  await store.revoke!(['AAAAAAsomeonesomeonesomeone0'], T0)
  t.ok(
    heard.some((e) => e.type === 'session' && e.sessionId === 'AAAAAAsomeonesomeonesomeone0'),
    'and it reached the real store',
  )

  const text = await metrics.registry.metrics()
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'evicted' }), 1)
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'logout' }), 0, 'nothing ended, nothing counted')
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'deleted' }), 1)
  t.equal(value(text, 'portcullis_sessions_ended_total', { reason: 'logout_all' }), 3)
})

t.test('behind the wrapper, revoke on a store without it does nothing and does not fail', async (t) => {
  const { revoke: _omitted, ...plain } = createMemoryStore(OPTIONS) as SessionStore & Record<string, unknown>
  const wrapped = instrumentStore(plain as SessionStore, new GatewayMetrics())
  await t.resolves(wrapped.revoke!(['AAAAAAsomeonesomeonesomeone0'], T0))
})
