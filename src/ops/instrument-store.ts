/**
 * Counts the sessions this instance ends, by reason, where they end: at the store. Every
 * endpoint that ends a session (logout, session delete, admin, reuse detection, expiry at
 * refresh, eviction beyond maxSessionsPerUser) goes through one of these calls, so no
 * endpoint has to remember to count. Reads (`get`, `list`, the strict-mode check) pass
 * straight through and cost nothing extra.
 *
 * Each instance counts what it ended itself; revocations learnt from other instances through
 * the store are not counted again, so summing over instances gives the fleet's total.
 *
 * For the same reason the security events session.created and session.ended are emitted here
 * (src/ops/events.ts), once, by the instance that made or ended the session. An ending whose
 * outcome is unknown (the store timed out, src/auth/endpoints/fail-safe.ts) emits nothing.
 */
import type { EndReason, SessionStore } from '../sessions/types.js'
import type { SecurityEvents } from './events.js'
import type { GatewayMetrics } from './metrics.js'

export function instrumentStore(store: SessionStore, metrics: GatewayMetrics, events?: SecurityEvents): SessionStore {
  const ended = (reason: EndReason, sessionIds: readonly string[], subject?: string) => {
    metrics.sessionsEnded(reason, sessionIds.length)
    if (events) for (const sessionId of sessionIds) events.emit('session.ended', { sessionId, ...(subject === undefined ? {} : { subject }), reason })
  }
  const wrapped: SessionStore = {
    kind: store.kind,
    async create(session, now) {
      const result = await store.create(session, now)
      const { id, subject, ip, userAgent, provider } = session.record
      events?.emit('session.created', { sessionId: id, subject, ip, userAgent, ...(provider === undefined ? {} : { provider }) })
      // Evicted sessions are the same user's oldest (maxSessionsPerUser).
      ended('evicted', result.evicted, subject)
      return result
    },
    async rotate(request) {
      const result = await store.rotate(request)
      if (result.kind === 'reused') ended('reuse', [result.session.id], result.session.subject)
      else if (result.kind === 'expired') ended('expired', [request.sessionId])
      return result
    },
    async end(sessionId, reason, now, subject) {
      const session = await store.end(sessionId, reason, now, subject)
      if (session) ended(reason, [session.id], session.subject)
      return session
    },
    async endByRefresh(sessionId, presentedHash, now) {
      const session = await store.endByRefresh(sessionId, presentedHash, now)
      // The only caller is logout with just a refresh token.
      if (session) ended('logout', [session.id], session.subject)
      return session
    },
    async endAll(subject, reason, now) {
      const sessionIds = await store.endAll(subject, reason, now)
      ended(reason, sessionIds, subject)
      return sessionIds
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
