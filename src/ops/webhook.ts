/**
 * Delivers security events to events.webhook in the background (docs/events.md).
 *
 * - One POST at a time, events in the order they were emitted, up to `maxBatch` per POST:
 *   `{"events":[...]}`, plus `"dropped": n` when events were given up on since the last
 *   delivery, so that the receiver knows it missed some.
 * - Signed per attempt: HMAC-SHA256(secret, `${timestamp}.${body}`) in x-portcullis-signature,
 *   the timestamp (Unix seconds) in x-portcullis-timestamp, so a receiver can refuse replays.
 * - Retried with exponential backoff and jitter on network errors, timeouts, 429 and 5xx;
 *   another answer (a 4xx, a redirect) will not change by retrying: that batch is dropped.
 * - Bounded: at most `maxQueue` events are held, those being sent included; when full, the
 *   oldest is dropped. At-least-once: an attempt that timed out may have been processed, so
 *   a receiver deduplicates by event id.
 */
import { createHmac } from 'node:crypto'
import type { Logger } from 'pino'
import { Agent, request } from 'undici'
import { version } from '../version.js'

export interface WebhookSettings {
  url: string
  secret: string
  /** ms for one attempt (connect, answer and its body). */
  timeout: number
}

export type DropReason = 'overflow' | 'rejected' | 'shutdown'
export type RetryReason = 'timeout' | 'network' | 'status'

/** What the webhook reports (GatewayMetrics has these). */
export interface WebhookCounters {
  eventsDelivered(count: number): void
  eventDeliveryRetried(reason: RetryReason): void
  eventsDropped(reason: DropReason, count: number): void
}

export interface DeliveryOptions {
  /** Events held at most, those in flight included (default 10,000). */
  maxQueue?: number
  /** Events per POST at most (default 100). */
  maxBatch?: number
  /** ms: the first retry waits about this long, each next one twice as long (default 1 s). */
  backoffBase?: number
  /** ms: no wait is longer, a Retry-After included (default 60 s). */
  backoffMax?: number
  /** [0, 1): the jitter's source; tests pin it. */
  random?: () => number
}

const noCounters: WebhookCounters = { eventsDelivered() {}, eventDeliveryRetried() {}, eventsDropped() {} }

/** The signature a delivery carries: `v1=` and the hex HMAC-SHA256 of `${timestamp}.${body}`. */
export function signDelivery(secret: string, timestamp: number, body: string): string {
  return 'v1=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

type Outcome = { kind: 'delivered' } | { kind: 'rejected'; status: number } | { kind: 'retry'; reason: RetryReason; after: number; detail: string }

export class Webhook {
  #settings: WebhookSettings
  readonly #log: Pick<Logger, 'warn' | 'error'>
  readonly #counters: WebhookCounters
  readonly #now: () => number
  readonly #random: () => number
  readonly #maxQueue: number
  readonly #maxBatch: number
  readonly #backoffBase: number
  readonly #backoffMax: number
  readonly #agent = new Agent({ keepAliveTimeout: 30_000 })
  /** Serialized events, oldest first; the first `#sending` are in the current attempt. */
  #queue: string[] = []
  #sending = 0
  /** Given up on since the last delivery (reported in the next body). */
  #dropped = 0
  #running: Promise<void> | null = null
  #wake: (() => void) | null = null
  /** Set by close() (performance.now(): a wait, not a date): no retries past it. */
  #deadline = Number.POSITIVE_INFINITY
  /** Cuts short, at the deadline, an attempt started before close(). */
  readonly #stop = new AbortController()
  #closed = false

  constructor(
    settings: WebhookSettings,
    opts: DeliveryOptions & { log: Pick<Logger, 'warn' | 'error'>; counters?: WebhookCounters; now?: () => number },
  ) {
    this.#settings = settings
    this.#log = opts.log
    this.#counters = opts.counters ?? noCounters
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
    this.#maxQueue = Math.max(1, opts.maxQueue ?? 10_000)
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 100)
    this.#backoffBase = opts.backoffBase ?? 1000
    this.#backoffMax = opts.backoffMax ?? 60_000
  }

  /** Events held (waiting or in flight). */
  get queued(): number {
    return this.#queue.length
  }

  /** New url, secret or timeout: the next attempt uses them (queued events included). */
  configure(settings: WebhookSettings): void {
    this.#settings = settings
  }

  /** Queues one serialized event; never waits and never throws. */
  push(event: string): void {
    if (this.#closed) {
      this.#counters.eventsDropped('shutdown', 1)
      return
    }
    if (this.#queue.length >= this.#maxQueue) {
      // The oldest goes, even mid-attempt: memory stays bounded while a receiver is down.
      this.#queue.shift()
      if (this.#sending > 0) this.#sending--
      this.#dropped++
      this.#counters.eventsDropped('overflow', 1)
    }
    this.#queue.push(event)
    // Started on a later turn: the request that emitted this must not pay for a connection.
    this.#running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#run())
  }

  /**
   * Best-effort flush for shutdown: what is queued gets one more attempt each, within
   * `budget` ms in all and without retries; what is left then is dropped (and counted).
   */
  async close(budget = this.#settings.timeout): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#deadline = performance.now() + budget
    const stop = setTimeout(() => this.#stop.abort(), budget)
    this.#wake?.()
    if (this.#queue.length > 0) this.#running ??= this.#run()
    await this.#running
    clearTimeout(stop)
    await this.#agent.destroy().catch(() => {})
  }

  async #run(): Promise<void> {
    let attempt = 0
    while (this.#queue.length > 0) {
      const left = this.#deadline - performance.now()
      if (left <= 0) {
        this.#giveUp('shutdown', this.#queue.length)
        break
      }
      this.#sending = Math.min(this.#queue.length, this.#maxBatch)
      const reported = this.#dropped
      const body = this.#body(reported)
      const outcome = await this.#attempt(body, Math.ceil(Math.min(this.#settings.timeout, left)))
      // #sending may have shrunk meanwhile: events dropped for overflow were taken out already.
      const sent = this.#sending
      this.#sending = 0
      if (outcome.kind === 'delivered') {
        this.#queue.splice(0, sent)
        this.#dropped -= reported
        this.#counters.eventsDelivered(sent)
        attempt = 0
        continue
      }
      if (outcome.kind === 'rejected') {
        this.#log.error({ status: outcome.status, host: this.#host(), events: sent }, 'events webhook refused a delivery: those events are dropped')
        this.#giveUp('rejected', sent)
        continue
      }
      if (this.#closed) {
        this.#giveUp('shutdown', this.#queue.length)
        break
      }
      this.#counters.eventDeliveryRetried(outcome.reason)
      if (attempt === 0) this.#log.warn({ reason: outcome.detail, host: this.#host() }, 'events webhook delivery failed: retrying with backoff')
      await this.#sleep(Math.min(this.#backoffMax, Math.max(this.#backoff(attempt++), outcome.after)))
    }
    this.#running = null
  }

  /** Exponential with "equal jitter": half the step fixed, half random, so retries never bunch up or reach 0. */
  #backoff(attempt: number): number {
    const step = Math.min(this.#backoffMax, this.#backoffBase * 2 ** attempt)
    return step / 2 + (this.#random() * step) / 2
  }

  #body(dropped: number): string {
    const events = this.#queue.slice(0, this.#sending).join(',')
    return dropped > 0 ? `{"events":[${events}],"dropped":${dropped}}` : `{"events":[${events}]}`
  }

  async #attempt(body: string, timeout: number): Promise<Outcome> {
    const { url, secret } = this.#settings
    const timestamp = Math.floor(this.#now() / 1000)
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.any([AbortSignal.timeout(timeout), this.#stop.signal]),
        headers: {
          'content-type': 'application/json',
          'user-agent': `portcullis/${version()}`,
          'x-portcullis-timestamp': String(timestamp),
          'x-portcullis-signature': signDelivery(secret, timestamp, body),
        },
        body,
      })
      await res.body.dump({ limit: 64 * 1024 })
      const status = res.statusCode
      if (status >= 200 && status < 300) return { kind: 'delivered' }
      if (status === 429 || status >= 500) {
        return { kind: 'retry', reason: 'status', after: retryAfter(res.headers['retry-after']), detail: `status ${status}` }
      }
      return { kind: 'rejected', status }
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
      const detail = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.name) : 'error'
      return { kind: 'retry', reason: timedOut ? 'timeout' : 'network', after: 0, detail }
    }
  }

  #giveUp(reason: DropReason, count: number): void {
    if (count <= 0) return
    this.#queue.splice(0, count)
    this.#dropped += count
    this.#counters.eventsDropped(reason, count)
  }

  /** A wait that close() cuts short. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#wake = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      this.#wake = done
    })
  }

  /** The receiver's host only: a URL can carry credentials in its userinfo or query. */
  #host(): string {
    try {
      return new URL(this.#settings.url).host
    } catch {
      return '?'
    }
  }
}

/** Retry-After in seconds (RFC 9110 §10.2.3; an HTTP-date is rare from a webhook and read as 0). */
function retryAfter(value: string | string[] | undefined): number {
  const seconds = Number(Array.isArray(value) ? value[0] : value)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0
}
