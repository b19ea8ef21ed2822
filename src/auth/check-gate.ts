/**
 * Signature checks run one at a time, and tokens from addresses over their failure budget wait
 * behind everyone else's.
 *
 * A check costs about 140 µs of CPU on a thread-pool thread (ES256, docs/benchmarks.md).
 * Unbounded, WebCrypto runs up to four at once (libuv's pool), so a flood of distinct forged
 * tokens takes the cores the event loop needs for every other request. The gate bounds what
 * all checks together can take to `concurrency` threads, whatever the flood. A waiting token
 * is never refused because of its address: it may be a neighbour's valid token behind the same
 * NAT. Only a full queue (overload) refuses, the most recent over-budget waiter first.
 */
import { GatewayError } from '../errors.js'

export interface CheckGateOptions {
  /** Checks under way at once. */
  concurrency?: number
  /** Checks waiting, both lanes together; beyond it 429. */
  queue?: number
}

interface Waiter {
  resolve(): void
  reject(err: GatewayError): void
}

const GRANTED = Promise.resolve()

export class CheckGate {
  readonly #concurrency: number
  readonly #queue: number
  #running = 0
  readonly #first: Waiter[] = []
  readonly #deferred: Waiter[] = []

  constructor(opts: CheckGateOptions = {}) {
    this.#concurrency = opts.concurrency ?? 1
    this.#queue = opts.queue ?? 1024
  }

  /** Checks waiting for their turn. */
  get waiting(): number {
    return this.#first.length + this.#deferred.length
  }

  /** Resolves when the caller may run its check; it must then call `release()` exactly once. */
  acquire(deferred: boolean): Promise<void> {
    if (this.#running < this.#concurrency) {
      this.#running++
      return GRANTED
    }
    if (this.waiting >= this.#queue) {
      const evicted = deferred ? undefined : this.#deferred.pop()
      if (evicted === undefined) return Promise.reject(overloaded())
      evicted.reject(overloaded())
    }
    return new Promise((resolve, reject) => (deferred ? this.#deferred : this.#first).push({ resolve, reject }))
  }

  release(): void {
    const next = this.#first.shift() ?? this.#deferred.shift()
    if (next) next.resolve()
    else this.#running--
  }
}

function overloaded(): GatewayError {
  return new GatewayError('rate_limited', 'too many tokens waiting for a signature check', { headers: { 'retry-after': '1' } })
}
