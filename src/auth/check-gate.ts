/**
 * Admission of signature checks: tokens from addresses over their failure budget go last, one
 * at a time.
 *
 * A check costs 60–90 µs of CPU (ES256, src/auth/jws-compact.ts). Most run on the event loop's
 * own thread, one after another; those of addresses past their budget run through WebCrypto
 * on libuv's pool, where up to four could run at once: unchecked, a flood of distinct forged
 * tokens would take the cores the event loop needs for every other request. An address that has
 * spent its budget gets one check under way at a time, shared with every other such address,
 * and only when no other address's check is waiting: measured with bench:flood, good traffic
 * keeps 0.85× of its throughput during a flood (0.46× with no budget; 0.28× for release 1,
 * whose spent budget answered 429 without any check). Such a token is still checked, never
 * refused because of its address: it may be a neighbour's valid token behind the same NAT.
 * Only a full queue (overload) refuses, the newest over-budget waiter first.
 */
import { GatewayError } from '../errors.js'

export interface CheckGateOptions {
  /** Checks under way at once; by default libuv's thread pool size. */
  concurrency?: number
  /** Of those, checks for addresses over their budget. */
  deferredConcurrency?: number
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
  readonly #deferredConcurrency: number
  readonly #queue: number
  #running = 0
  #runningDeferred = 0
  readonly #first: Waiter[] = []
  readonly #deferred: Waiter[] = []

  constructor(opts: CheckGateOptions = {}) {
    this.#concurrency = opts.concurrency ?? 4
    this.#deferredConcurrency = opts.deferredConcurrency ?? 1
    this.#queue = opts.queue ?? 1024
  }

  /** Checks waiting for their turn. */
  get waiting(): number {
    return this.#first.length + this.#deferred.length
  }

  /** Resolves when the caller may run its check; it must then call `release(deferred)` exactly once. */
  acquire(deferred: boolean): Promise<void> {
    if (deferred ? this.#deferred.length === 0 && this.#mayStartDeferred() : this.#running < this.#concurrency) {
      this.#start(deferred)
      return GRANTED
    }
    if (this.waiting >= this.#queue) {
      const evicted = deferred ? undefined : this.#deferred.pop()
      if (evicted === undefined) return Promise.reject(overloaded())
      evicted.reject(overloaded())
    }
    return new Promise((resolve, reject) => (deferred ? this.#deferred : this.#first).push({ resolve, reject }))
  }

  release(deferred: boolean): void {
    this.#running--
    if (deferred) this.#runningDeferred--
    if (this.#first.length > 0) {
      this.#start(false)
      this.#first.shift()!.resolve()
    } else if (this.#deferred.length > 0 && this.#mayStartDeferred()) {
      this.#start(true)
      this.#deferred.shift()!.resolve()
    }
  }

  #mayStartDeferred(): boolean {
    return this.#first.length === 0 && this.#running < this.#concurrency && this.#runningDeferred < this.#deferredConcurrency
  }

  #start(deferred: boolean): void {
    this.#running++
    if (deferred) this.#runningDeferred++
  }
}

function overloaded(): GatewayError {
  return new GatewayError('rate_limited', 'too many tokens waiting for a signature check', { headers: { 'retry-after': '1' } })
}
