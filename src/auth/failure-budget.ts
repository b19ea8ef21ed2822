/**
 * A per-client budget of failed token verifications.
 *
 * A token with a bad signature can never be served from the verified-token cache, so each one
 * costs a full signature check (about 190 µs for ES256 on these machines). A client that keeps
 * sending them is answered 429 without any cryptography once its budget for the window is
 * spent; good tokens already in the cache still pass, so a client sharing an address with an
 * attacker (NAT) keeps working while its tokens are warm.
 */
import { LRUCache } from 'lru-cache'
import { GatewayError } from '../errors.js'

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

  /** Throws 429 when `client` has no failed verifications left in this window. */
  check(client: string): void {
    const entry = this.#seen.get(client)
    if (!entry || entry[0] < this.#max) return
    const now = this.#now()
    const resetAt = entry[1] + this.#window
    if (now >= resetAt) return
    throw new GatewayError('rate_limited', 'too many invalid tokens', {
      headers: { 'retry-after': String(Math.max(1, Math.ceil((resetAt - now) / 1000))) },
    })
  }

  fail(client: string): void {
    const now = this.#now()
    const entry = this.#seen.get(client)
    if (!entry || now >= entry[1] + this.#window) this.#seen.set(client, [1, now])
    else entry[0]++
  }
}
