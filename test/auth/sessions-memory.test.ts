import t from 'tap'
import { createMemoryStore } from '../../src/sessions/memory-store.js'
import { sessionsContract } from './sessions-contract.js'

sessionsContract(t, async (t, opts) => {
  const store = createMemoryStore({ ...opts, historySize: 8 })
  t.teardown(() => store.close())
  return store
})
