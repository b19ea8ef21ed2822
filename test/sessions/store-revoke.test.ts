/**
 * SessionStore.revoke(): the fail-safe revocation for an ending call whose outcome is unknown.
 * It revokes tokens without ending the session, reaches every instance, and is not lost when
 * the store does not answer.
 */
import t from 'tap'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import { startRedis } from '../helpers/redis.js'
import { redisStore, storeConfig } from './redis-fixture.js'
import { OPTIONS, T0, login, recorder, sessionEvent, userEvent } from './store-fixtures.js'

t.test('memory: revoke() revokes without ending the session', async (t) => {
  const store = createMemoryStore(OPTIONS)
  t.teardown(() => store.close())
  const feed = recorder(store)
  const { id } = await login(store, 'u-m')
  await store.revoke!([id], T0, 'u-m')
  t.ok(feed.events.some(sessionEvent(id)), 'the session event is delivered')
  t.ok(feed.events.some(userEvent('u-m')), 'and the user mark')
  t.ok(await store.get(id, T0), 'the session itself is untouched')
  t.ok(
    (await store.revocations(T0)).sessions.some(([sid]) => sid === id),
    'and the snapshot has it',
  )
})

t.test('redis: revoke() reaches a peer, and one made while Redis hangs is written once it answers', async (t) => {
  const redis = await startRedis(t)
  const config = storeConfig({ url: redis.url })
  const { store } = await redisStore(t, config, 'r:')
  const { store: peer } = await redisStore(t, config, 'r:')
  const local = recorder(store)
  const remote = recorder(peer)
  t.teardown(() => {
    local.stop()
    remote.stop()
  })
  t.ok(await remote.until(() => remote.gaps() > 0), "the peer's subscription is live")
  const first = await login(store, 'u-r')
  await store.revoke!([first.id], T0)
  t.ok(await remote.waitFor(sessionEvent(first.id)), 'the peer hears it')
  t.ok(await store.get(first.id, T0), 'the session is untouched')

  const second = await login(store, 'u-r')
  redis.pause()
  t.teardown(() => redis.resume())
  await t.rejects(store.revoke!([second.id], T0), { code: 'store_unavailable' })
  t.ok(local.events.some(sessionEvent(second.id)), 'this instance has it at once')
  redis.resume()
  // No reconnect happens (the connection only stalled): the store's own retry writes it.
  t.ok(await remote.waitFor(sessionEvent(second.id), 5000), 'the peer hears it once Redis answers')
  t.ok(
    (await peer.revocations(T0)).sessions.some(([sid]) => sid === second.id),
    'and the store holds it',
  )
})
