/**
 * The revocation feed of the Redis store: a pub/sub channel read on a connection of its own.
 *
 * Pub/sub is at-most-once: a message published while the subscriber is reconnecting is lost.
 * So every listener hears onGap() each time the subscription becomes live (the first time and
 * after every reconnect), and whenever the message sequence skips a number (a loss the
 * connection did not show, e.g. a Cluster client moving its subscription to another node),
 * and resynchronises from the store's snapshot then.
 */
import type { Cluster, Redis } from 'ioredis'
import type { RevocationEvent, RevocationListener } from './types.js'

export interface RevocationFeed {
  subscribe(listener: RevocationListener): () => void
  /** Delivers this instance's own revocations at once, without waiting for the echo. */
  deliver(events: RevocationEvent[]): void
  /**
   * False from the moment a started subscription drops until it is live again: revocations
   * made elsewhere meanwhile reach this instance only through the resync that follows.
   */
  readonly live: boolean
  close(): void
}

const MAX_MESSAGE = 1 << 20
/** How soon a refused SUBSCRIBE is sent again. */
const RESUBSCRIBE_MS = 1000

export interface RevocationMessage {
  seq: number
  /** When Redis published it (its clock, ms); absent from older publishers. */
  at?: number
  events: RevocationEvent[]
}

/** Anyone able to publish on the channel could send anything: keep only well-formed events. */
export function parseRevocationMessage(message: string): RevocationMessage | null {
  if (message.length > MAX_MESSAGE) return null
  let parsed: unknown
  try {
    parsed = JSON.parse(message)
  } catch {
    return null
  }
  if (typeof parsed !== 'object' || parsed === null) return null
  const { seq, at, events } = parsed as { seq?: unknown; at?: unknown; events?: unknown }
  if (!Number.isSafeInteger(seq) || !Array.isArray(events)) return null
  const valid: RevocationEvent[] = []
  const time = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
  const text = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024
  for (const e of events as Array<Record<string, unknown> | null>) {
    if (typeof e !== 'object' || e === null) continue
    if (e.type === 'session' && text(e.sessionId) && time(e.forgetAfter)) {
      valid.push({ type: 'session', sessionId: e.sessionId, forgetAfter: e.forgetAfter })
    } else if (e.type === 'user' && text(e.subject) && time(e.notBefore) && time(e.forgetAfter)) {
      valid.push({ type: 'user', subject: e.subject, notBefore: e.notBefore, forgetAfter: e.forgetAfter })
    }
  }
  return { seq: seq as number, ...(time(at) ? { at } : {}), events: valid }
}

export function createRevocationFeed(channel: string, makeSubscriber: () => Redis | Cluster, onError: (err: unknown) => void): RevocationFeed {
  const listeners = new Set<RevocationListener>()
  let subscriber: Redis | Cluster | null = null
  let live = false
  /** The last sequence number heard; null right after (re)subscribing, when a resync follows. */
  let lastSeq: number | null = null

  const safely = (fn: () => void) => {
    try {
      fn()
    } catch (err) {
      onError(err)
    }
  }
  const deliver = (events: RevocationEvent[]) => {
    for (const event of events) for (const l of listeners) safely(() => l.onEvent(event))
  }

  const gap = () => {
    for (const l of listeners) safely(() => l.onGap())
  }

  async function goLive(sub: Redis | Cluster): Promise<void> {
    try {
      // Explicit even with autoResubscribe: onGap must come after the channel is live again.
      await sub.subscribe(channel)
    } catch (err) {
      onError(err)
      // Refused on a connection that stays up (an ACL without the channel, a timeout): nothing
      // else would try again, and until then this instance is not ready.
      const again = setTimeout(() => {
        if (subscriber === sub && !live && sub.status === 'ready') void goLive(sub)
      }, RESUBSCRIBE_MS)
      again.unref()
      return
    }
    live = true
    lastSeq = null
    gap()
  }

  function receive(message: string): void {
    const parsed = parseRevocationMessage(message)
    if (!parsed) return
    deliver(parsed.events)
    const at = parsed.at
    if (at !== undefined) for (const l of listeners) if (l.onPublished) safely(() => l.onPublished!(at))
    const expected = lastSeq === null ? parsed.seq : lastSeq + 1
    lastSeq = parsed.seq
    if (parsed.seq !== expected) gap()
  }

  function start(): void {
    const sub = makeSubscriber()
    subscriber = sub
    sub.on('error', onError)
    sub.on('message', (from: string, message: string) => {
      if (from === channel) receive(message)
    })
    sub.on('close', () => {
      live = false
    })
    sub.on('ready', () => void goLive(sub))
    if (sub.status === 'ready') void goLive(sub)
  }

  return {
    subscribe(listener) {
      listeners.add(listener)
      if (!subscriber) start()
      else if (live) queueMicrotask(() => listeners.has(listener) && listener.onGap())
      return () => {
        listeners.delete(listener)
      }
    },
    deliver,
    get live() {
      return subscriber === null || live
    },
    close() {
      listeners.clear()
      subscriber?.disconnect()
      subscriber = null
    },
  }
}
