import t from 'tap'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import { OPTIONS, storeContract } from './store-contract.js'
import { T0, DAY, login } from './store-fixtures.js'

storeContract(t, {
  async make(t) {
    const store = createMemoryStore(OPTIONS)
    t.teardown(() => store.close())
    return { store }
  },
})

t.test('the periodic sweep drops expired sessions and stale revocations', async (t) => {
  const store = createMemoryStore({ ...OPTIONS, sweepInterval: 5 })
  t.teardown(() => store.close())
  const old = await login(store, 'alice', T0)
  await store.end((await login(store, 'bob', T0)).id, 'logout', T0)
  // A later call moves the store's clock; the sweep then runs on it without being asked.
  await store.get('none', T0 + 40 * DAY)
  await new Promise((r) => setTimeout(r, 30))
  t.equal(await store.get(old.id, T0), null, 'even at an earlier now, the session is gone')
  t.same(await store.revocations(T0), { sessions: [], users: [] })
})
