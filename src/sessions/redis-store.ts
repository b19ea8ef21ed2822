/**
 * The Redis session store (single server, Cluster or Sentinel: the client decides).
 * Key layout: ./redis-layout.ts. Lua: ./redis-scripts.ts. Feed: ./redis-feed.ts.
 *
 * Ending a session is two writes in two slots: the user's session script, then the revocation
 * script on the {rev} keys (which also publishes). This instance's listeners hear the event at
 * once. Either write that fails (Redis away, a timeout) is kept and retried until Redis
 * answers, in order, while the caller gets store_unavailable: a session-ending request that
 * reached this process is carried out once the store heals, whatever its caller was told.
 * Every kept write is idempotent (ending an ended session does nothing; the revoked set only
 * grows), so one that did run before its answer was lost may safely run again.
 */
import type { Cluster, Redis } from 'ioredis'
import { GatewayError } from '../errors.js'
import { createRevocationFeed } from './redis-feed.js'
import { decodeSession, encodeClient, encodeSession, MAX_HISTORY_SIZE, redisKeys, storedHash, storedNonce } from './redis-layout.js'
import { CREATE, END, END_ALL, LIST, REVOCATION_PAGE, REVOKE, ROTATE } from './redis-scripts.js'
import { assertSessionId, isLive } from './rotation.js'
import { isSessionId } from './tokens.js'
import type { RevocationEvent, RevocationSnapshot, RotateResult, SessionRecord, SessionStore, StoreOptions } from './types.js'

export interface RedisStoreOptions extends StoreOptions {
  /** Prepended to every key and to the channel name; must not contain braces. */
  keyPrefix: string
  /** Errors no caller can receive: the subscriber's, background retries'. */
  onError?: (err: unknown) => void
  /** close() also closes `client` (when the store's creator made it for the store). */
  ownsClient?: boolean
  /**
   * Entries asked for per resync call (default 10,000: ~20 ms of Redis time, measured, and
   * well under a second's commandTimeout). A COUNT hint: a set under 128 entries comes whole.
   */
  revocationPageSize?: number
}

import { redisShortLived } from './redis-short-lived.js'

const SCRIPTS = {
  portcullisRotate: [1, ROTATE],
  portcullisCreate: [2, CREATE],
  portcullisEnd: [1, END],
  portcullisEndAll: [1, END_ALL],
  portcullisList: [1, LIST],
  portcullisRevoke: [4, REVOKE],
  portcullisRevocationPage: [2, REVOCATION_PAGE],
} as const
type Script = (...args: Array<string | number | Buffer>) => Promise<unknown>
/** ioredis defines `<name>Buffer` beside each script: its replies come as Buffers (sessions are binary). */
type Scripted = Record<keyof typeof SCRIPTS | `${keyof typeof SCRIPTS}Buffer`, Script>

const MAX_PENDING = 10_000
/**
 * How soon a kept write is tried again. It is also how long another instance could still
 * rotate a session whose ending waits here, after Redis answers again without a reconnect (a
 * stall; a reconnect flushes at once, on 'ready'). One PING's worth of load while Redis is away.
 */
const PENDING_RETRY_MS = 250

const unavailable = (cause: unknown) => new GatewayError('store_unavailable', 'session store call failed', { cause })

async function call<T>(op: () => Promise<unknown>): Promise<T> {
  try {
    return (await op()) as T
  } catch (cause) {
    throw unavailable(cause)
  }
}

export function createRedisStore(client: Redis | Cluster, makeSubscriber: () => Redis | Cluster, options: RedisStoreOptions): SessionStore {
  if (options.historySize > MAX_HISTORY_SIZE) throw new TypeError(`historySize is at most ${MAX_HISTORY_SIZE}`)
  const keys = redisKeys(options.keyPrefix)
  const prefix = options.keyPrefix
  const onError = options.onError ?? (() => {})
  // EVALSHA, falling back to EVAL once per connection: rotate() stays one round trip.
  for (const [name, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys, lua })
  const redis = client as unknown as Scripted
  const feed = createRevocationFeed(keys.channel, makeSubscriber, onError)
  /** Writes whose answer never came, oldest first; each is idempotent (see above). */
  const pending: Array<() => Promise<unknown>> = []

  let flushing: Promise<void> | null = null
  let retry: NodeJS.Timeout | null = null
  let closed = false
  async function flush(): Promise<void> {
    while (pending.length > 0) {
      try {
        await pending[0]!()
      } catch {
        return
      }
      pending.shift()
    }
  }
  /** Keeps a failed write for retrying, and returns the error its caller gets. */
  function keep(write: () => Promise<unknown>, cause: unknown): GatewayError {
    if (pending.push(write) > MAX_PENDING) {
      pending.shift()
      onError(new Error('dropping the oldest pending session-store write: too many kept while Redis is away'))
    }
    retryLater()
    return unavailable(cause)
  }
  // One flush at a time: two would both send the head of the queue, then both drop an entry.
  const flushPending = (): Promise<void> =>
    (flushing ??= flush().finally(() => {
      flushing = null
      if (pending.length > 0) retryLater()
    }))
  // Also retried on a timer: a connection that hung and came back (a stalled server, a silent
  // partition) never emits 'ready', and the revocations must not wait for the next resync.
  function retryLater(): void {
    if (retry !== null || closed) return
    retry = setTimeout(() => {
      retry = null
      void flushPending()
    }, PENDING_RETRY_MS)
    retry.unref()
  }
  const onReady = () => void flushPending()
  client.on('ready', onReady)

  async function revoke(sids: string[], now: number, subject?: string): Promise<void> {
    const forgetAfter = now + options.revocationTtl
    const events: RevocationEvent[] = sids.map((sessionId) => ({ type: 'session', sessionId, forgetAfter }))
    if (subject !== undefined) events.push({ type: 'user', subject, notBefore: now, forgetAfter })
    if (events.length === 0) return
    feed.deliver(events)
    const args = [
      ...keys.revoked,
      keys.sequence,
      now,
      forgetAfter,
      keys.channel,
      JSON.stringify(events),
      subject === undefined ? '0' : '1',
      subject ?? '',
      now,
      ...sids,
    ]
    const write = () => redis.portcullisRevoke(...args)
    if (!flushing) await flushPending()
    try {
      await write()
    } catch (cause) {
      // The session is already gone; losing its revocation would let its tokens live on.
      throw keep(write, cause)
    }
  }

  /**
   * Runs an ending script, then revokes what it ended. If the script gets no answer it is kept
   * and replayed (with the same `now`) until Redis answers, then the revocation follows.
   */
  async function ending<T>(script: () => Promise<T>, revokeEnded: (result: T) => Promise<void>): Promise<T> {
    if (pending.length > 0 && !flushing) await flushPending()
    let result: T
    try {
      result = await script()
    } catch (cause) {
      // Revoked after the replay, not as part of it: a revocation that then fails is kept on
      // its own, since the script, having run, would end nothing the second time.
      throw keep(async () => void (await revokeEnded(await script()).catch(() => {})), cause)
    }
    await revokeEnded(result)
    return result
  }

  const pageSize = options.revocationPageSize ?? 10_000
  const [revokedSessions, revokedUsers, notBefore] = keys.revoked
  /** One ZSET, a page per call, until ZSCAN's cursor comes back to 0 (it always does). */
  async function* scan(key: string, marks: boolean, now: number): AsyncGenerator<string[]> {
    let cursor = '0'
    do {
      const [next, flat] = await call<[string, string[]]>(() =>
        redis.portcullisRevocationPage(key, notBefore, cursor, pageSize, now, marks ? '1' : '0'),
      )
      cursor = next
      yield flat
    } while (cursor !== '0')
  }

  async function* revocationPages(now: number): AsyncGenerator<RevocationSnapshot> {
    // Our own unsent revocations first: the snapshot must not be older than what we ended.
    await flushPending()
    for await (const flat of scan(revokedSessions, false, now)) {
      const sessions: Array<[string, number]> = []
      for (let i = 0; i + 1 < flat.length; i += 2) sessions.push([flat[i]!, Number(flat[i + 1])])
      yield { sessions, users: [] }
    }
    for await (const flat of scan(revokedUsers, true, now)) {
      const users: Array<[string, number, number]> = []
      for (let i = 0; i + 2 < flat.length; i += 3) users.push([flat[i]!, Number(flat[i + 1]), Number(flat[i + 2])])
      yield { sessions: [], users }
    }
  }

  const decode = (sid: string, value: Buffer | null | undefined) => (value ? decodeSession(sid, value) : null)

  async function endWith(sid: string, now: number, mode: 'any' | 'subject' | 'refresh', arg: string | Buffer = ''): Promise<SessionRecord | null> {
    if (!isSessionId(sid)) return null
    const value = await ending(
      () => redis.portcullisEndBuffer(keys.session(sid), prefix, sid, now, mode, arg) as Promise<Buffer | null>,
      (ended) => (ended === null ? Promise.resolve() : revoke([sid], now)),
    )
    return value === null ? null : (decode(sid, value)?.record ?? null)
  }

  return {
    kind: 'redis',
    ...redisShortLived(client, prefix),

    async create({ record, refreshHash }, now) {
      assertSessionId(record.id, record.subject)
      const ttl = Math.ceil(Math.min(record.idleExpiresAt, record.absoluteExpiresAt) - now)
      const indexTtl = Math.ceil(record.absoluteExpiresAt - now)
      const evicted = await call<string[]>(() =>
        redis.portcullisCreate(
          keys.index(record.subject),
          keys.session(record.id),
          prefix,
          record.id,
          encodeSession(record, refreshHash),
          record.createdAt,
          now,
          options.maxSessionsPerUser,
          Math.max(1, ttl),
          Math.max(1, indexTtl),
        ),
      )
      if (evicted.length > 0) await revoke(evicted, now)
      return { evicted }
    },

    async rotate(r): Promise<RotateResult> {
      const successor = storedHash(r.successorHash)
      const nonce = storedNonce(r.nonce)
      if (!successor || !nonce) throw new TypeError('malformed successor or nonce')
      const presented = storedHash(r.presentedHash)
      if (!isSessionId(r.sessionId) || !presented) return { kind: 'unknown' }
      // Kept endings are sent now, but not waited for: on a Cluster a kept write may wait for
      // another master than this session's, and one user's outage must not slow everyone's
      // refresh. A session this instance knows was ended is refused by the endpoint anyway.
      if (pending.length > 0) void flushPending()
      const [answer, value] = await call<[Buffer, (Buffer | number)?]>(() =>
        redis.portcullisRotateBuffer(
          keys.session(r.sessionId),
          prefix,
          r.sessionId,
          presented,
          successor,
          nonce,
          r.now,
          r.refreshTokenTtl,
          r.refreshReuseGrace,
          encodeClient(r.userAgent, r.ip),
          options.historySize,
          r.limit?.max ?? 0,
          r.limit?.window ?? 0,
        ),
      )
      const kind = answer.toString()
      if (kind === 'limited') return { kind, retryAfterMs: Number(value) }
      if (kind === 'expired' || kind === 'reused') await revoke([r.sessionId], r.now)
      const decoded = decode(r.sessionId, value as Buffer | undefined)
      if (kind === 'expired') return { kind }
      if (!decoded) return { kind: 'unknown' }
      if (kind === 'grace') return { kind, session: decoded.record, nonce: decoded.nonce }
      if (kind === 'rotated' || kind === 'reused') return { kind, session: decoded.record }
      return { kind: 'unknown' }
    },

    async get(sessionId, now) {
      if (!isSessionId(sessionId)) return null
      const record = decode(sessionId, await call<Buffer | null>(() => client.getBuffer(keys.session(sessionId))))?.record
      return record && isLive(record, now) ? record : null
    },

    async list(subject, now) {
      const flat = await call<Buffer[]>(() => redis.portcullisListBuffer(keys.index(subject), prefix))
      const sessions: SessionRecord[] = []
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const record = decode(flat[i]!.toString(), flat[i + 1])?.record
        if (record && record.subject === subject && isLive(record, now)) sessions.push(record)
      }
      return sessions.sort((a, b) => b.createdAt - a.createdAt)
    },

    end: (sessionId, _reason, now, subject) => endWith(sessionId, now, subject === undefined ? 'any' : 'subject', subject),

    async endByRefresh(sessionId, presentedHash, now) {
      const presented = storedHash(presentedHash)
      return presented ? endWith(sessionId, now, 'refresh', presented) : null
    },

    endAll: (subject, _reason, now) =>
      ending(
        () => redis.portcullisEndAll(keys.index(subject), prefix, now, subject) as Promise<string[]>,
        (ids) => revoke(ids, now, subject),
      ),

    async revocations(now) {
      const snapshot: RevocationSnapshot = { sessions: [], users: [] }
      for await (const page of revocationPages(now)) {
        for (const entry of page.sessions) snapshot.sessions.push(entry)
        for (const entry of page.users) snapshot.users.push(entry)
      }
      return snapshot
    },

    revocationPages,

    revoke: (sessionIds, now, subject) => revoke(sessionIds.filter(isSessionId), now, subject),

    subscribe: (listener) => feed.subscribe(listener),

    async ping() {
      await call(() => client.ping())
      // Its connection reconnects on its own backoff, up to 2 s after the command connection.
      if (!feed.live) throw unavailable(new Error('revocation feed not subscribed'))
    },

    async close() {
      closed = true
      if (retry !== null) clearTimeout(retry)
      feed.close()
      client.off('ready', onReady)
      if (options.ownsClient) await client.quit().catch(() => client.disconnect())
    },
  }
}
