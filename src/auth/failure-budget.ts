/**
 * A per-client budget of failed signature checks.
 *
 * Only a token that reached the signature check and failed it is charged: that is the one
 * kind of bad token that costs CPU (malformed tokens, unknown `kid`s, wrong algorithms and
 * expired tokens are refused before any cryptography, and a forged token seen before is
 * refused from the verifier's negative cache). Spending the budget refuses nothing: one
 * address may be a whole office behind a NAT, or every client behind a load balancer without
 * `trustProxy`, and a valid token among the forged ones must still pass. It only sends that
 * address's signature checks to the back of the CheckGate's queue for the rest of the window.
 */
import { LRUCache } from 'lru-cache'

export interface FailureBudgetOptions {
  max: number
  /** ms */
  window: number
  now?: () => number
  /** Distinct clients tracked; the least recently seen are forgotten first. */
  clients?: number
}

export class FailureBudget {
  readonly #max: number
  readonly #window: number
  readonly #now: () => number
  // [failures, window start]
  readonly #seen: LRUCache<string, [number, number]>

  constructor(opts: FailureBudgetOptions) {
    this.#max = opts.max
    this.#window = opts.window
    this.#now = opts.now ?? Date.now
    this.#seen = new LRUCache({ max: opts.clients ?? 50_000 })
  }

  /** True while `client` has no failed signature checks left in this window. */
  spent(client: string): boolean {
    const entry = this.#seen.get(client)
    return entry !== undefined && entry[0] >= this.#max && this.#now() < entry[1] + this.#window
  }

  charge(client: string): void {
    const now = this.#now()
    const entry = this.#seen.get(client)
    if (!entry || now >= entry[1] + this.#window) this.#seen.set(client, [1, now])
    else entry[0]++
  }
}
