/**
 * The embedded session store: in-process maps with the same semantics as the Redis store.
 * One process only (`server.workers: 1`); revocation events reach this process's listeners
 * synchronously.
 */
import { memoryShortLived } from './memory-short-lived.js'
import {
  assertSessionId,
  clientFact,
  countRefresh,
  decideRotation,
  historyAfterRotation,
  isLive,
  NO_REFRESHES,
  slidIdleExpiry,
  type RefreshWindow,
} from './rotation.js'
import type {
  EndReason,
  RevocationEvent,
  RevocationListener,
  RevocationSnapshot,
  RotateRequest,
  RotateResult,
  SessionRecord,
  SessionStore,
  StoreOptions,
} from './types.js'

export interface MemoryStoreOptions extends StoreOptions {
  /** How often expired sessions and revocation entries are swept (ms). Default 60 s. */
  sweepInterval?: number
}

interface Entry {
  record: SessionRecord
  current: string
  previous: string | null
  nonce: string | null
  rotatedAt: number
  /** Hashes rotated before `previous`, newest first. */
  history: string[]
  refreshes: RefreshWindow
}

const copy = (record: SessionRecord): SessionRecord => structuredClone(record)

export function createMemoryStore(options: MemoryStoreOptions): SessionStore {
  const sessions = new Map<string, Entry>()
  /** subject → sid → createdAt: the per-user index. */
  const byUser = new Map<string, Map<string, number>>()
  const revokedSessions = new Map<string, number>()
  const userMarks = new Map<string, [notBefore: number, forgetAfter: number]>()
  const listeners = new Set<RevocationListener>()
  // The sweep runs on the latest `now` callers passed, so an injected clock stays in charge.
  let latest = 0
  const seen = (now: number) => {
    if (now > latest) latest = now
  }

  function drop(sid: string): Entry | undefined {
    const entry = sessions.get(sid)
    if (!entry) return undefined
    sessions.delete(sid)
    const index = byUser.get(entry.record.subject)
    index?.delete(sid)
    if (index?.size === 0) byUser.delete(entry.record.subject)
    return entry
  }

  function emit(event: RevocationEvent): void {
    for (const listener of listeners) {
      try {
        listener.onEvent(event)
      } catch {
        // One faulty listener must not undo or block the end of a session.
      }
    }
  }

  function revoke(sids: string[], now: number, subject?: string): void {
    const forgetAfter = now + options.revocationTtl
    for (const sessionId of sids) {
      revokedSessions.set(sessionId, Math.max(revokedSessions.get(sessionId) ?? 0, forgetAfter))
      emit({ type: 'session', sessionId, forgetAfter })
    }
    if (subject !== undefined) {
      const prev = userMarks.get(subject)
      userMarks.set(subject, [Math.max(prev?.[0] ?? 0, now), Math.max(prev?.[1] ?? 0, forgetAfter)])
      emit({ type: 'user', subject, notBefore: now, forgetAfter })
    }
  }

  function end(sid: string, now: number): SessionRecord | null {
    const entry = drop(sid)
    if (!entry) return null
    revoke([sid], now)
    return copy(entry.record)
  }

  /** The entry if live; an expired one is dropped on the way (lazy pruning). */
  function live(sid: string, now: number): Entry | undefined {
    const entry = sessions.get(sid)
    if (entry && !isLive(entry.record, now)) {
      drop(sid)
      return undefined
    }
    return entry
  }

  const shortLived = memoryShortLived()
  function sweep(): void {
    shortLived.sweep(latest)
    for (const [sid, entry] of sessions) if (!isLive(entry.record, latest)) drop(sid)
    for (const [sid, until] of revokedSessions) if (until <= latest) revokedSessions.delete(sid)
    for (const [subject, [, until]] of userMarks) if (until <= latest) userMarks.delete(subject)
  }
  const timer = setInterval(sweep, options.sweepInterval ?? 60_000)
  timer.unref()

  return {
    kind: 'memory',
    putNew: shortLived.putNew,
    take: shortLived.take,
    link: shortLived.link,
    linked: shortLived.linked,

    async create({ record, refreshHash }, now) {
      assertSessionId(record.id, record.subject)
      seen(now)
      const stored = { ...copy(record), userAgent: clientFact(record.userAgent), ip: clientFact(record.ip) }
      sessions.set(record.id, {
        record: stored,
        current: refreshHash,
        previous: null,
        nonce: null,
        rotatedAt: 0,
        history: [],
        refreshes: NO_REFRESHES,
      })
      const index = byUser.get(record.subject) ?? new Map<string, number>()
      byUser.set(record.subject, index)
      index.set(record.id, record.createdAt)
      const oldestFirst = [...index].sort((a, b) => a[1] - b[1]).map(([sid]) => sid)
      const alive = oldestFirst.filter((sid) => live(sid, now))
      const evicted: string[] = []
      // The new session is never its own victim, even if its createdAt is older than the others'.
      for (const sid of alive) {
        if (alive.length - evicted.length <= options.maxSessionsPerUser) break
        if (sid !== record.id && end(sid, now)) evicted.push(sid)
      }
      return { evicted }
    },

    async rotate(request: RotateRequest): Promise<RotateResult> {
      seen(request.now)
      const entry = sessions.get(request.sessionId)
      if (!entry) return { kind: 'unknown' }
      const decision = decideRotation(entry, request)
      // Counted when answered with tokens; the other outcomes end the session or change nothing.
      if ((decision === 'grace' || decision === 'rotated') && request.limit) {
        entry.refreshes = countRefresh(entry.refreshes, request.now, request.limit)
      }
      switch (decision) {
        case 'unknown':
          return { kind: 'unknown' }
        case 'limited':
          return { kind: 'limited', retryAfterMs: entry.refreshes.resetAt - request.now }
        case 'grace':
          return { kind: 'grace', session: copy(entry.record), nonce: entry.nonce ?? '' }
        case 'expired':
          end(request.sessionId, request.now)
          return { kind: 'expired' }
        case 'reused':
          end(request.sessionId, request.now)
          return { kind: 'reused', session: copy(entry.record) }
        case 'rotated': {
          entry.history = historyAfterRotation(entry.history, entry.previous, options.historySize)
          entry.previous = entry.current
          entry.current = request.successorHash
          entry.nonce = request.nonce
          entry.rotatedAt = request.now
          const r = entry.record
          r.lastUsedAt = request.now
          r.idleExpiresAt = slidIdleExpiry(r, request.now, request.refreshTokenTtl)
          r.userAgent = clientFact(request.userAgent)
          r.ip = clientFact(request.ip)
          return { kind: 'rotated', session: copy(r) }
        }
      }
    },

    async get(sessionId, now) {
      seen(now)
      const entry = live(sessionId, now)
      return entry ? copy(entry.record) : null
    },

    async list(subject, now) {
      seen(now)
      const index = byUser.get(subject)
      if (!index) return []
      return [...index.keys()]
        .map((sid) => live(sid, now)?.record)
        .filter((r): r is SessionRecord => r !== undefined)
        .sort((a, b) => b.createdAt - a.createdAt)
        .map(copy)
    },

    async end(sessionId, _reason: EndReason, now, subject) {
      seen(now)
      const entry = live(sessionId, now)
      // Ownership is checked here, not by the caller: a sid travels in headers and is no secret.
      if (!entry || (subject !== undefined && entry.record.subject !== subject)) return null
      return end(sessionId, now)
    },

    async endByRefresh(sessionId, presentedHash, now) {
      seen(now)
      const entry = live(sessionId, now)
      if (!entry || (presentedHash !== entry.current && presentedHash !== entry.previous)) return null
      return end(sessionId, now)
    },

    async endAll(subject, _reason, now) {
      seen(now)
      // Sessions created after `now` are spared, as in the Redis script: see END_ALL there.
      const ids = [...(byUser.get(subject)?.keys() ?? [])].filter((sid) => {
        const entry = live(sid, now)
        return entry !== undefined && entry.record.createdAt <= now
      })
      for (const sid of ids) drop(sid)
      revoke(ids, now, subject)
      return ids
    },

    async revoke(sessionIds, now, subject) {
      seen(now)
      revoke(sessionIds, now, subject)
    },

    async revocations(now): Promise<RevocationSnapshot> {
      seen(now)
      sweep()
      return {
        sessions: [...revokedSessions].filter(([, until]) => until > now),
        users: [...userMarks].filter(([, [, until]]) => until > now).map(([s, [nb, fa]]) => [s, nb, fa]),
      }
    },

    subscribe(listener) {
      listeners.add(listener)
      // The feed is live at once; the gap call asks for the initial snapshot like Redis does.
      queueMicrotask(() => {
        if (listeners.has(listener)) listener.onGap()
      })
      return () => {
        listeners.delete(listener)
      }
    },

    async ping() {},

    async close() {
      clearInterval(timer)
      listeners.clear()
    },
  }
}
