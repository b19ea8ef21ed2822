/**
 * The rotation rules as pure functions: what presenting a refresh hash does to a session.
 * The memory store runs them directly; the Redis store's Lua (./redis-scripts.ts) mirrors them,
 * and the shared contract suite holds both to the same answers.
 */
import { sessionTag, subjectTag } from './tokens.js'
import type { RefreshLimit, SessionRecord } from './types.js'

export type RotationDecision = 'rotated' | 'grace' | 'reused' | 'expired' | 'unknown' | 'limited'

/** The session's refresh count (rateLimits.refresh.perSession): a fixed window from its first refresh. */
export interface RefreshWindow {
  resetAt: number
  count: number
}

export const NO_REFRESHES: RefreshWindow = { resetAt: 0, count: 0 }

export interface RotationState {
  current: string
  previous: string | null
  rotatedAt: number
  /** Hashes rotated before `previous`, newest first. */
  history: string[]
  refreshes: RefreshWindow
}

/** A session lives while now is before both its idle and its absolute expiry. */
export function isLive(record: SessionRecord, now: number): boolean {
  return now < Math.min(record.idleExpiresAt, record.absoluteExpiresAt)
}

/**
 * The order matters: a hash this session never issued changes nothing (knowing a sid must not
 * let anyone end the session, nor spend its refresh limit), then the limit (a refresh past it
 * changes nothing, not even when its token would end the session), then expiry, then the grace
 * rule for the immediate predecessor only (SPEC.md "Refresh"); every other known hash is theft.
 * Plain string comparison is fine: these are SHA-256 hashes of 256-bit secrets, and timing
 * can at most reveal a hash, from which no secret follows.
 */
export function decideRotation(
  state: RotationState & { record: SessionRecord },
  request: { presentedHash: string; now: number; refreshReuseGrace: number; limit?: RefreshLimit | undefined },
): RotationDecision {
  const presented = request.presentedHash
  const which =
    presented === state.current ? 'current' : presented === state.previous ? 'previous' : state.history.includes(presented) ? 'older' : null
  if (which === null) return 'unknown'
  if (request.limit && countRefresh(state.refreshes, request.now, request.limit).count > request.limit.max) return 'limited'
  if (!isLive(state.record, request.now)) return 'expired'
  if (which === 'current') return 'rotated'
  if (which === 'previous' && request.now <= state.rotatedAt + request.refreshReuseGrace) return 'grace'
  return 'reused'
}

/** The window after one more refresh at `now`; a new one starts once the last has ended. */
export function countRefresh(window: RefreshWindow, now: number, limit: RefreshLimit): RefreshWindow {
  return now >= window.resetAt ? { resetAt: now + limit.window, count: 1 } : { resetAt: window.resetAt, count: window.count + 1 }
}

/**
 * History after a rotation: the outgoing predecessor joins it. `historySize` counts every
 * remembered rotated hash, the predecessor included, so at most historySize - 1 stay here.
 */
export function historyAfterRotation(history: string[], previous: string | null, historySize: number): string[] {
  const next = previous === null ? history : [previous, ...history]
  return next.slice(0, Math.max(0, historySize - 1))
}

/** Longest user agent / address a store keeps (they are client-chosen and only displayed). */
export const MAX_CLIENT_FACT = 512

/** Bounds what a client can make a store hold per session, whatever its header sizes. */
export const clientFact = (value: string | null): string | null =>
  value === null || value.length <= MAX_CLIENT_FACT ? value : value.slice(0, MAX_CLIENT_FACT)

/** Sliding idle expiry, never past the absolute one. */
export function slidIdleExpiry(record: SessionRecord, now: number, refreshTokenTtl: number): number {
  return Math.min(now + refreshTokenTtl, record.absoluteExpiresAt)
}

/**
 * Every store requires what newSessionId() guarantees: the sid starts with its subject's tag.
 * On Redis Cluster this is what keeps all of a user's keys in one hash slot.
 */
export function assertSessionId(sessionId: string, subject: string): void {
  if (sessionId.length !== 28 || sessionTag(sessionId) !== subjectTag(subject)) {
    throw new TypeError('session id does not carry its subject tag; make it with newSessionId(subject)')
  }
}
