/**
 * Counts the sessions this instance ends, by reason, where they end: at the store. Every
 * endpoint that ends a session (logout, session delete, admin, reuse detection, expiry at
 * refresh, eviction beyond maxSessionsPerUser) goes through one of these calls, so no
 * endpoint has to remember to count. Reads (`get`, `list`, the strict-mode check) pass
 * straight through and cost nothing extra.
 *
 * Each instance counts what it ended itself; revocations learnt from other instances through
 * the store are not counted again, so summing over instances gives the fleet's total.
 */
import type { SessionStore } from '../sessions/types.js'
import type { GatewayMetrics } from './metrics.js'

export function instrumentStore(store: SessionStore, metrics: GatewayMetrics): SessionStore {
  const wrapped: SessionStore = {
    kind: store.kind,
    async create(session, now) {
      const result = await store.create(session, now)
      metrics.sessionsEnded('evicted', result.evicted.length)
      return result
    },
    async rotate(request) {
      const result = await store.rotate(request)
      if (result.kind === 'reused') metrics.sessionsEnded('reuse')
      else if (result.kind === 'expired') metrics.sessionsEnded('expired')
      return result
    },
    async end(sessionId, reason, now, subject) {
      const ended = await store.end(sessionId, reason, now, subject)
      if (ended) metrics.sessionsEnded(reason)
      return ended
    },
    async endByRefresh(sessionId, presentedHash, now) {
      const ended = await store.endByRefresh(sessionId, presentedHash, now)
      // The only caller is logout with just a refresh token.
      if (ended) metrics.sessionsEnded('logout')
      return ended
    },
    async endAll(subject, reason, now) {
      const ended = await store.endAll(subject, reason, now)
      metrics.sessionsEnded(reason, ended.length)
      return ended
    },
    get: (sessionId, now) => store.get(sessionId, now),
    putNew: (key, value, ttl, now) => store.putNew(key, value, ttl, now),
    take: (key, now) => store.take(key, now),
    link: (key, member, expiresAt, now) => store.link(key, member, expiresAt, now),
    linked: (key, now) => store.linked(key, now),
    list: (subject, now) => store.list(subject, now),
    revocations: (now) => store.revocations(now),
    // Absent stays absent: RevocationSync falls back to revocations() for such a store.
    ...(store.revocationPages ? { revocationPages: (now: number) => store.revocationPages!(now) } : {}),
    // Ends no session (a fail-safe revocation): passed on, not counted.
    revoke: async (sessionIds, now, subject) => store.revoke?.(sessionIds, now, subject),
    subscribe: (listener) => store.subscribe(listener),
    ping: () => store.ping(),
    close: () => store.close(),
  }
  return wrapped
}
