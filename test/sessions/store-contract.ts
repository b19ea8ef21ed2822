/**
 * The one contract every SessionStore keeps, run against memory, Redis, Redis Cluster and
 * Redis Sentinel. Time is the `now` argument (an injected clock), never a sleep.
 *
 *   storeContract(t, { make: async (t) => ({ store, peer?, inspect? }), stopBackend? })
 *
 * `make` returns a fresh, isolated store built with OPTIONS; `peer` is a second instance on
 * the same data (cross-instance events); `inspect` lists raw keys (Redis); `stopBackend`
 * takes the backend down for the last test (fail-fast store_unavailable).
 */
import { lifecycleContract } from './store-contract-lifecycle.js'
import { revocationContract, storageContract, unavailableContract } from './store-contract-revocation.js'
import { rotationContract } from './store-contract-rotation.js'
import { shortLivedContract } from './store-contract-short-lived.js'
import type { ContractOptions, TapTest } from './store-fixtures.js'

export { OPTIONS, type ContractOptions, type StoreFixture, type TapTest } from './store-fixtures.js'

export function storeContract(t: TapTest, options: ContractOptions): void {
  lifecycleContract(t, options)
  rotationContract(t, options)
  revocationContract(t, options)
  storageContract(t, options)
  shortLivedContract(t, options)
  unavailableContract(t, options)
}
