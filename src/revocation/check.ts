/**
 * The per-request revocation check (SPEC.md "Revocation"), one of three modes:
 * - cached: the in-memory RevocationSet, kept in sync through the store; no I/O per request;
 * - strict: asks the store that the session still exists on every request;
 * - off:    signature and claims only; an ended session's tokens live until they expire.
 */
import type { AccessClaims } from '../auth/verify.js'
import type { SessionStore } from '../sessions/types.js'
import type { RevocationSet } from './set.js'

/** True when the token's session has ended. May be async (strict mode). */
export type RevocationCheck = (claims: AccessClaims) => boolean | Promise<boolean>

export function revocationCheck(mode: 'cached' | 'strict' | 'off', set: RevocationSet, store: SessionStore, now: () => number): RevocationCheck {
  switch (mode) {
    case 'off':
      return () => false
    case 'cached':
      return (c) => set.isRevoked(c.sid, c.sub, c.iat)
    case 'strict':
      return async (c) => {
        if (set.isRevoked(c.sid, c.sub, c.iat)) return true
        const session = await store.get(c.sid, now())
        return session === null || session.subject !== c.sub
      }
  }
}
