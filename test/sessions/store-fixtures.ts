/**
 * Shared fixtures of the store contract suite: sessions with real secrets, rotation requests
 * built the way the gateway builds them, an injected clock, and a revocation recorder.
 */
import type tap from 'tap'
import { deriveSuccessor, hashRefresh, newNonce, newRefreshSecret, newSessionId } from '../../src/sessions/tokens.js'
import type { NewSession, RevocationEvent, RotateRequest, SessionStore, StoreOptions } from '../../src/sessions/types.js'

export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0]

export const SECOND = 1000
export const DAY = 86_400_000
export const IDLE = 14 * DAY
export const MAX_AGE = 30 * DAY
export const GRACE = 10 * SECOND
export const OPTIONS: StoreOptions = { revocationTtl: 15 * 60 * SECOND, maxSessionsPerUser: 3, historySize: 4 }

/** What a contract run needs from one store kind. */
export interface StoreFixture {
  store: SessionStore
  /** Another instance over the same data (another connection, for Redis); default: `store`. */
  peer?: SessionStore
  /** Redis only: every key this fixture wrote, with its PTTL and its readable content. */
  inspect?: () => Promise<Array<{ key: string; pttl: number; content: string }>>
}

export interface ContractOptions {
  /** A fresh, isolated store (with options OPTIONS); closed by the fixture's own teardown. */
  make(t: TapTest): Promise<StoreFixture>
  /** The fixtures come with `inspect`: run the checks on what lies in the store. */
  inspects?: boolean
  /** Makes the backend unreachable for good; the suite runs it last. */
  stopBackend?: () => Promise<void>
}

/** A realistic epoch, so TTLs derived from the injected clock are sane on a real server. */
export const T0 = Date.now()

/** Every secret a test handed out, so a scan can prove none of them was stored. */
export const secretsSeen = new Set<string>()

export function newSession(subject: string, now = T0): { session: NewSession; secret: string } {
  const secret = newRefreshSecret()
  secretsSeen.add(secret)
  return {
    secret,
    session: {
      refreshHash: hashRefresh(secret),
      record: {
        id: newSessionId(subject),
        subject,
        roles: ['user'],
        claims: { tenant: 'acme', tags: [] },
        createdAt: now,
        lastUsedAt: now,
        idleExpiresAt: Math.min(now + IDLE, now + MAX_AGE),
        absoluteExpiresAt: now + MAX_AGE,
        userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
        ip: '203.0.113.7',
      },
    },
  }
}

/** A refresh as the gateway makes it: successor = HMAC(presented secret, fresh nonce). */
export function refresh(sessionId: string, secret: string, now: number): { request: RotateRequest; successor: string } {
  const nonce = newNonce()
  const successor = deriveSuccessor(secret, nonce)
  secretsSeen.add(successor)
  return {
    successor,
    request: {
      sessionId,
      presentedHash: hashRefresh(secret),
      successorHash: hashRefresh(successor),
      nonce,
      now,
      refreshTokenTtl: IDLE,
      refreshReuseGrace: GRACE,
      userAgent: 'curl/8.5.0',
      ip: '198.51.100.2',
    },
  }
}

/** Creates a session and returns its id and first secret. */
export async function login(store: SessionStore, subject: string, now = T0): Promise<{ id: string; secret: string }> {
  const { session, secret } = newSession(subject, now)
  await store.create(session, now)
  return { id: session.record.id, secret }
}

/** Collects revocation events; `waitFor` allows a short real wait for cross-instance delivery. */
export function recorder(store: SessionStore) {
  const events: RevocationEvent[] = []
  let gaps = 0
  const stop = store.subscribe({ onEvent: (e) => events.push(e), onGap: () => void gaps++ })
  return {
    events,
    gaps: () => gaps,
    stop,
    async waitFor<E extends RevocationEvent>(match: (e: RevocationEvent) => e is E, timeoutMs = 3000): Promise<E | undefined> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = events.find(match)
        if (found || Date.now() > deadline) return found
        await new Promise((r) => setTimeout(r, 5))
      }
    },
    async until(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
      const deadline = Date.now() + timeoutMs
      while (!check() && Date.now() <= deadline) await new Promise((r) => setTimeout(r, 5))
      return check()
    },
  }
}

export const sessionEvent =
  (sid: string) =>
  (e: RevocationEvent): e is Extract<RevocationEvent, { type: 'session' }> =>
    e.type === 'session' && e.sessionId === sid
export const userEvent =
  (subject: string) =>
  (e: RevocationEvent): e is Extract<RevocationEvent, { type: 'user' }> =>
    e.type === 'user' && e.subject === subject
