/**
 * The in-memory set of ended sessions checked on every request in `cached` mode.
 *
 * Entries are kept only as long as an access token of that session could still be
 * unexpired (`forgetAfter`), so the set stays small without any per-request I/O.
 */
import type { RevocationEvent, RevocationSnapshot } from '../sessions/types.js'

export type RevocationListener = (event: RevocationEvent) => void

export class RevocationSet {
  #sessions = new Map<string, number>()
  /** subject → [notBefore ms, forgetAfter ms] */
  #users = new Map<string, [number, number]>()
  #listeners = new Set<RevocationListener>()

  get size(): number {
    return this.#sessions.size + this.#users.size
  }

  /** Is a token of this session, issued at `iat` (seconds), revoked? */
  isRevoked(sessionId: string, subject: string, iat: number): boolean {
    if (this.#sessions.has(sessionId)) return true
    if (this.#users.size === 0) return false
    const mark = this.#users.get(subject)
    // iat has one-second granularity: only tokens from whole seconds before the mark are
    // cut here; sessions ended in the mark's own second are revoked by id as well.
    return mark !== undefined && (iat + 1) * 1000 <= mark[0]
  }

  /** When the subject's latest remembered logout-all happened (ms), if one is remembered. */
  userMark(subject: string): number | undefined {
    return this.#users.get(subject)?.[0]
  }

  /** Has this session been ended, by id or by a logout-all of its user made after it began? */
  hasEnded(session: { id: string; subject: string; createdAt: number }): boolean {
    if (this.#sessions.has(session.id)) return true
    const mark = this.#users.get(session.subject)
    return mark !== undefined && session.createdAt <= mark[0]
  }

  /**
   * Calls `listener` with every revocation this set learns, whichever way it came (this
   * instance's own endings, the store's feed, a resync), once: a repeat of an entry it holds,
   * or a logout-all mark no later than the one it holds, is not passed on. Returns the
   * unsubscribe function. Open WebSockets close from here (src/proxy/live-sockets.ts).
   */
  subscribe(listener: RevocationListener): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }

  apply(event: RevocationEvent): void {
    let learnt: boolean
    if (event.type === 'session') {
      const prev = this.#sessions.get(event.sessionId)
      this.#sessions.set(event.sessionId, Math.max(prev ?? 0, event.forgetAfter))
      learnt = prev === undefined
    } else {
      const prev = this.#users.get(event.subject)
      learnt = !prev || prev[0] < event.notBefore
      if (learnt) this.#users.set(event.subject, [event.notBefore, event.forgetAfter])
    }
    if (learnt && this.#listeners.size > 0) for (const listener of this.#listeners) listener(event)
  }

  /**
   * Adds a full snapshot (a resync). It never removes an entry: a revocation cannot be undone,
   * and a store that restarted without its data sends a snapshot missing the revocations it
   * lost, which this instance must go on enforcing. Entries leave only through prune().
   */
  merge(snapshot: RevocationSnapshot): void {
    for (const [sessionId, forgetAfter] of snapshot.sessions) this.apply({ type: 'session', sessionId, forgetAfter })
    for (const [subject, notBefore, forgetAfter] of snapshot.users) this.apply({ type: 'user', subject, notBefore, forgetAfter })
  }

  /** Drops entries whose tokens have all expired. */
  prune(now: number): void {
    for (const [sid, until] of this.#sessions) if (until <= now) this.#sessions.delete(sid)
    for (const [sub, [, until]] of this.#users) if (until <= now) this.#users.delete(sub)
  }
}
