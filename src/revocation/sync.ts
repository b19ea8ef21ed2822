/**
 * Keeps this instance's RevocationSet in step with the store (issue: "Many gateways, one truth").
 *
 * Events pushed by the store (pub/sub) are applied as they come; because pub/sub is
 * at-most-once, the whole set is also reloaded after every gap the store reports (a
 * reconnect) and on a regular interval. Events that arrive while a snapshot is in flight are
 * re-applied on top of it, so a resync can never erase a newer revocation.
 */
import type { Logger } from 'pino'
import type { RevocationEvent, SessionStore } from '../sessions/types.js'
import type { RevocationSet } from './set.js'

export interface RevocationSyncOptions {
  resyncInterval: number
  now: () => number
  log: Logger
}

export class RevocationSync {
  #store: SessionStore
  #set: RevocationSet
  #opts: RevocationSyncOptions
  #synced = false
  #inFlight: Promise<void> | null = null
  #pending: RevocationEvent[] | null = null
  #timer: NodeJS.Timeout | null = null
  #unsubscribe: (() => void) | null = null
  /** Completed full syncs, for metrics and tests. */
  resyncs = 0
  lastSyncAt = 0

  constructor(store: SessionStore, set: RevocationSet, opts: RevocationSyncOptions) {
    this.#store = store
    this.#set = set
    this.#opts = opts
  }

  /** True once a first full sync has completed: until then this instance is not ready. */
  get synced(): boolean {
    return this.#synced
  }

  /** Subscribes, then loads the full set; retries in the background if the store is down. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe({
      onEvent: (event) => {
        this.#set.apply(event)
        this.#pending?.push(event)
      },
      onGap: () => void this.resync(),
    })
    this.#timer = setInterval(() => {
      this.#set.prune(this.#opts.now())
      void this.resync()
    }, this.#opts.resyncInterval)
    this.#timer.unref()
    await this.resync()
  }

  /** Loads the whole set from the store. Concurrent calls share one load. */
  resync(): Promise<void> {
    this.#inFlight ??= this.#load().finally(() => {
      this.#inFlight = null
    })
    return this.#inFlight
  }

  async #load(): Promise<void> {
    this.#pending = []
    try {
      const snapshot = await this.#store.revocations(this.#opts.now())
      const pending = this.#pending
      this.#set.replace(snapshot)
      for (const event of pending) this.#set.apply(event)
      this.#synced = true
      this.resyncs++
      this.lastSyncAt = this.#opts.now()
    } catch (err) {
      this.#opts.log.warn({ err }, 'revocation resync failed; will retry')
      // Not synced yet: try again soon rather than at the next interval.
      if (!this.#synced) setTimeout(() => void this.resync(), 1000).unref()
    } finally {
      this.#pending = null
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#unsubscribe?.()
  }
}
