/**
 * Security events (docs/events.md): what a security team wants to hear about when it happens,
 * not from a log search. Each event is written to the log at once and, with events.webhook
 * set, queued for the webhook, which delivers it in the background. emit() is synchronous and
 * does no I/O: it runs on the paths of logouts, refreshes and sign-ins, which must not wait
 * for a receiver.
 *
 * One per process (main.ts), like the metrics: it outlives config generations, and a reload
 * only re-points the webhook (configure()), keeping what is queued.
 *
 * Never in an event: tokens, refresh secrets, passwords, usernames as typed (see hashUsername).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { EndReason } from '../sessions/types.js'
import { Webhook, type DeliveryOptions, type WebhookCounters, type WebhookSettings } from './webhook.js'

/** Where a request came from, as the gateway saw it (trustProxy applies). */
export interface ClientFacts {
  ip: string | null
  userAgent: string | null
}

/** The `data` of each event type. */
export interface EventData {
  'session.created': { sessionId: string; subject: string; ip: string | null; userAgent: string | null; provider?: string }
  /** `subject` is absent only for `expired`: the store ends an expired session without reading it back. */
  'session.ended': { sessionId: string; subject?: string; reason: EndReason }
  /**
   * `rotatedBy`: whoever rotated the token last (or signed in, if it never rotated), as the
   * session recorded it; `reusedBy`: whoever presented the rotated token now. Either may be the thief.
   */
  'refresh.reuse_detected': { sessionId: string; subject: string; rotatedBy: ClientFacts & { at: string }; reusedBy: ClientFacts }
  /** Once per limiter, key and window: when the limit is first exceeded (see docs/events.md). */
  'login.rate_limited': { limiter: 'login_user' | 'login_client'; ip: string | null; usernameHash?: string; retryAfter: number }
}

export type EventType = keyof EventData

export interface SecurityEvent<T extends EventType = EventType> {
  id: string
  type: T
  time: string
  instance?: string
  data: EventData[T]
}

const LEVEL: Record<EventType, 'info' | 'warn'> = {
  'session.created': 'info',
  'session.ended': 'info',
  'refresh.reuse_detected': 'warn',
  'login.rate_limited': 'warn',
}

export interface SecurityEventsOptions {
  logger: Logger
  now?: () => number
  /** Names this process in every event; default: the host name. */
  instance?: string
  /** events.webhook; without it events go to the log only. */
  webhook?: WebhookSettings | undefined
  counters?: WebhookCounters
  /** Queue bound, batch size and backoff (tests make them small). */
  delivery?: DeliveryOptions
}

export class SecurityEvents {
  readonly #logger: Logger
  readonly #now: () => number
  readonly #instance: string
  readonly #counters: WebhookCounters | undefined
  readonly #delivery: DeliveryOptions
  /** Without a webhook: a key of this process only (its hashes match each other, nothing else). */
  readonly #processKey = randomBytes(32)
  #webhook: Webhook | null = null
  #usernameKey: Buffer

  constructor(opts: SecurityEventsOptions) {
    this.#logger = opts.logger
    this.#now = opts.now ?? Date.now
    this.#instance = opts.instance ?? hostname()
    this.#counters = opts.counters
    this.#delivery = opts.delivery ?? {}
    this.#usernameKey = this.#processKey
    this.configure(opts.webhook)
  }

  /** Logs the event and queues it for the webhook; returns at once. */
  emit<T extends EventType>(type: T, data: EventData[T]): void {
    const event: SecurityEvent<T> = { id: randomUUID(), type, time: new Date(this.#now()).toISOString(), instance: this.#instance, data }
    this.#logger[LEVEL[type]]({ event }, `security event ${type}`)
    this.#webhook?.push(JSON.stringify(event))
  }

  /**
   * A username (as the sign-in limit counts it, see src/auth/username.ts) as HMAC-SHA256 hex,
   * keyed by HMAC-SHA256(events.webhook.secret, "portcullis username"). Keyed, because a bare
   * hash of a username is reversed by hashing likely names, and what lands in a username field
   * is now and then a password. A receiver holding the secret can still ask "was it alice?".
   */
  hashUsername(username: string): string {
    return createHmac('sha256', this.#usernameKey).update(username).digest('hex')
  }

  /** Events held for the webhook (0 without one). */
  get queued(): number {
    return this.#webhook?.queued ?? 0
  }

  /** A reload's events.webhook: re-pointed in place (queue kept), started, or stopped after a last flush. */
  configure(webhook: WebhookSettings | undefined): void {
    this.#usernameKey = webhook ? createHmac('sha256', webhook.secret).update('portcullis username').digest() : this.#processKey
    if (webhook && this.#webhook) {
      this.#webhook.configure(webhook)
    } else if (webhook) {
      this.#webhook = new Webhook(webhook, { ...this.#delivery, log: this.#logger, now: this.#now, ...counters(this.#counters) })
    } else if (this.#webhook) {
      void this.#webhook.close()
      this.#webhook = null
    }
  }

  /** At shutdown, once requests have drained: the webhook's best-effort flush, within `budget` ms (default its timeout). */
  async close(budget?: number): Promise<void> {
    const webhook = this.#webhook
    this.#webhook = null
    await webhook?.close(budget)
  }
}

const counters = (c: WebhookCounters | undefined) => (c ? { counters: c } : {})
