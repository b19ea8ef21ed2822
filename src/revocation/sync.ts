/**
 * Keeps this instance's RevocationSet in step with the store (issue: "Many gateways, one truth").
 *
 * Events pushed by the store (pub/sub) are applied as they come; because pub/sub is
 * at-most-once, the whole set is also reloaded after every gap the store reports (a
 * reconnect) and on a regular interval. A snapshot is merged into the set, never substituted
 * for it (RevocationSet.merge), so a resync can erase neither an event that arrived while it
 * was in flight nor a revocation the store lost in a restart.
 *
 * A large set is read in pages (SessionStore.revocationPages), each merged as it arrives with
 * a turn of the event loop after it: no store call outlives the command timeout, only one page
 * is held at a time, and proxied requests are served between pages. A load that fails midway
 * keeps the pages it merged (merging only adds) and is retried whole.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { RevocationEvent, RevocationSnapshot, SessionStore } from '../sessions/types.js'
import type { RevocationSet } from './set.js'

export interface RevocationSyncOptions {
  resyncInterval: number
  /** Delay before a failed resync is tried again (default 1 s). */
  retryDelay?: number
  now: () => number
  log: Logger
  /**
   * Told, per message from the store's feed, how long it took from Redis's publish to this
   * instance's set (seconds, by the wall clock against Redis's: clock skew between the hosts
   * shows here too, and a negative reading is counted as 0).
   */
  observePropagation?: (seconds: number) => void
}

export class RevocationSync {
  #store: SessionStore
  #set: RevocationSet
  #opts: RevocationSyncOptions
  #synced = false
  #inFlight: Promise<void> | null = null
  #queued: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #retry: NodeJS.Timeout | null = null
  #stopped = false
  /** The last load failed: further failures are not logged again until one succeeds. */
  #failing = false
  #unsubscribe: (() => void) | null = null
  /** Gaps the feed reported, and how many of them the last completed load began after. */
  #gaps = 0
  #gapsLoaded = 0
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

  /**
   * False while a gap in the feed (a reconnect, a lost message) waits for the load that
   * follows it: revocations made elsewhere during the gap may not be in the set yet.
   */
  get current(): boolean {
    return this.#gapsLoaded === this.#gaps
  }

  /** Subscribes, then loads the full set; retries in the background if the store is down. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe({
      onEvent: (event: RevocationEvent) => this.#set.apply(event),
      onGap: () => {
        this.#gaps++
        void this.resync()
      },
      ...(this.#opts.observePropagation ? { onPublished: (at: number) => this.#opts.observePropagation!(Math.max(0, Date.now() - at) / 1000) } : {}),
    })
    this.#timer = setInterval(() => {
      this.#set.prune(this.#opts.now())
      void this.resync()
    }, this.#opts.resyncInterval)
    this.#timer.unref()
    await this.resync()
  }

  /**
   * Loads the whole set from the store. A call made while a load is in flight gets one more
   * load after it (shared by every such call): the gap that prompted it may postdate the
   * snapshot being read.
   */
  resync(): Promise<void> {
    if (this.#inFlight !== null) {
      this.#queued ??= this.#inFlight.then(() => {
        this.#queued = null
        return this.resync()
      })
      return this.#queued
    }
    this.#inFlight = this.#load().finally(() => {
      this.#inFlight = null
    })
    return this.#inFlight
  }

  async #load(): Promise<void> {
    try {
      const gaps = this.#gaps
      const now = this.#opts.now()
      for await (const page of this.#store.revocationPages?.(now) ?? whole(this.#store.revocations(now))) {
        this.#set.merge(page)
        await nextTurn()
        // Stopped (the gateway is closing, its store with it): the next page could only fail.
        if (this.#stopped) return
      }
      if (this.#retry) clearTimeout(this.#retry)
      this.#retry = null
      if (this.#failing) this.#opts.log.info('revocation resync succeeded again')
      this.#failing = false
      this.#synced = true
      this.#gapsLoaded = gaps
      this.resyncs++
      this.lastSyncAt = this.#opts.now()
    } catch (err) {
      if (!this.#failing) this.#opts.log.warn({ err }, 'revocation resync failed; retrying until it succeeds')
      this.#failing = true
      // Try again soon rather than at the next interval: before the first sync this instance
      // is not ready, and after a gap it may have missed revocations. (After a reconnect the
      // feed can be back before the command connection is, so the gap's resync can fail.)
      if (!this.#stopped && this.#retry === null) {
        this.#retry = setTimeout(() => {
          this.#retry = null
          void this.resync()
        }, this.#opts.retryDelay ?? 1000)
        this.#retry.unref()
      }
    }
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    if (this.#retry) clearTimeout(this.#retry)
    this.#unsubscribe?.()
  }
}

/** A store without pages: its whole snapshot as the only page. */
async function* whole(snapshot: Promise<RevocationSnapshot>): AsyncGenerator<RevocationSnapshot> {
  yield await snapshot
}
