/**
 * The session model and the one interface every store implements (memory, redis,
 * redis-cluster, redis-sentinel).
 *
 * Token model, in short (docs/security.md has the long form):
 * - A session id (`sid`) is `<tag><random>`: `tag` is 6 base64url characters of SHA-256(subject),
 *   so every key of one user's sessions can share a Redis Cluster hash tag (`{tag}`) and any
 *   script touches a single slot; the random part is 128 bits.
 * - A refresh token is `<sid>.<secret>` with a 256-bit secret. The store keeps only
 *   `hashRefresh(secret)` (SHA-256, base64url), never the secret.
 * - Rotation: the gateway draws a random `nonce` and derives the successor secret as
 *   HMAC-SHA256(key = presented secret, nonce). The store keeps `nonce` in the clear: within the
 *   grace window a repeat of the just-rotated token gets the nonce back and derives the very same
 *   successor, so concurrent refreshes converge on one token without the store ever holding a
 *   usable secret (SHA-256(secret) does not give HMAC(secret, ·)).
 * - Theft detection: the store keeps the hashes of the last few rotated tokens (`history`);
 *   presenting one of them outside the grace rule ends the whole session. A token whose hash the
 *   store has never seen is merely invalid: knowing a sid (it travels in `x-session-id`) must not
 *   be enough to end someone's session.
 */

/** A session as the gateway reads it back. All times are epoch milliseconds. */
export interface SessionRecord {
  id: string
  subject: string
  roles: string[]
  claims: Record<string, unknown>
  createdAt: number
  lastUsedAt: number
  /** lastUsedAt + refreshTokenTtl, never past absoluteExpiresAt. */
  idleExpiresAt: number
  /** createdAt + sessionMaxAge; rotation never extends it. */
  absoluteExpiresAt: number
  userAgent: string | null
  ip: string | null
  /** The `oidc` identity source it was signed in through; absent for a password sign-in. */
  provider?: string
  /**
   * When the user last authenticated (the access tokens' auth_time), when that is not
   * createdAt: an OpenID Provider's sign-in may predate the gateway session made from it.
   */
  authTime?: number
}

export interface NewSession {
  record: SessionRecord
  /** hashRefresh(secret) of the first refresh token. */
  refreshHash: string
}

export interface RotateRequest {
  sessionId: string
  /** hashRefresh(secret) of the presented token. */
  presentedHash: string
  /** hashRefresh(successor secret), used only if the presented token is the current one. */
  successorHash: string
  /** The nonce the successor was derived with; kept for the grace window. */
  nonce: string
  now: number
  refreshTokenTtl: number
  refreshReuseGrace: number
  /** Client facts to record as last seen. */
  userAgent: string | null
  ip: string | null
  /**
   * rateLimits.refresh.perSession, counted by the store with the rotation so that a refresh is
   * one store call (one round trip on Redis). Only a hash this session issued counts; absent,
   * nothing is counted.
   */
  limit?: RefreshLimit
}

/** At most `max` refreshes of one session in a fixed window of `window` ms from the first. */
export interface RefreshLimit {
  max: number
  window: number
}

export type RotateResult =
  /** The presented token was current: it is now the predecessor, `successorHash` is current. */
  | { kind: 'rotated'; session: SessionRecord }
  /** The presented token is the immediate predecessor, within the grace window: reuse `nonce`. */
  | { kind: 'grace'; session: SessionRecord; nonce: string }
  /** A rotated token was presented outside the grace rule: the session has been ended. */
  | { kind: 'reused'; session: SessionRecord }
  /** The session is past its idle or absolute expiry: it has been ended. */
  | { kind: 'expired' }
  /** No such session, or a secret this session never issued. Nothing changed. */
  | { kind: 'unknown' }
  /**
   * Past `limit` in the current window. Checked before expiry, grace and reuse: nothing
   * changed, the presented token is still what it was.
   */
  | { kind: 'limited'; retryAfterMs: number }

export type EndReason = 'logout' | 'logout_all' | 'deleted' | 'admin' | 'reuse' | 'expired' | 'evicted' | 'provider_logout'

/** What the revocation set is built from; `cached` mode keeps it in memory on every instance. */
export interface RevocationSnapshot {
  /** Ended sessions whose access tokens may still be unexpired: [sid, forgetAfter ms]. */
  sessions: Array<[string, number]>
  /** Per-user "not before" marks from logout-all: [subject, notBefore ms, forgetAfter ms]. */
  users: Array<[string, number, number]>
}

export type RevocationEvent =
  | { type: 'session'; sessionId: string; forgetAfter: number }
  | { type: 'user'; subject: string; notBefore: number; forgetAfter: number }

export interface RevocationListener {
  onEvent(event: RevocationEvent): void
  /** The feed may have missed events (reconnect): the listener must resync from a snapshot. */
  onGap(): void
  /** After a message's events were delivered: when the store published it (its clock, ms). */
  onPublished?(publishedAt: number): void
}

export interface StoreOptions {
  /** How long a revocation entry must live: an access token's lifetime plus clock tolerance. */
  revocationTtl: number
  /** Oldest sessions of a user are ended beyond this many. */
  maxSessionsPerUser: number
  /** How many rotated hashes to remember for theft detection. */
  historySize: number
}

/**
 * Small values with a lifetime, kept beside the sessions so that every instance sharing the
 * store sees them: OpenID Connect sign-ins in progress, logout-token ids already used, and
 * which gateway sessions a provider's session became. Keys are the caller's own (a namespace
 * and a hash); a store prefixes them with its keyPrefix. Times are epoch milliseconds.
 */
export interface ShortLivedValues {
  /** Keeps `value` for `ttl` ms unless `key` holds one already: true when it was kept. */
  putNew(key: string, value: string, ttl: number, now: number): Promise<boolean>
  /** The value, deleted in the same step (at most one caller ever gets it); null when none. */
  take(key: string, now: number): Promise<string | null>
  /** Adds `member` to the set at `key`; the set lives at least until `expiresAt`. */
  link(key: string, member: string, expiresAt: number, now: number): Promise<void>
  /** The members of the set at `key` (empty once it expired). */
  linked(key: string, now: number): Promise<string[]>
}

export interface SessionStore extends ShortLivedValues {
  readonly kind: 'memory' | 'redis'

  /** Stores a new session; ends (and revokes) the user's oldest ones beyond the limit. */
  create(session: NewSession, now: number): Promise<{ evicted: string[] }>

  /** Atomically counts and rotates (one Lua round trip on Redis). See RotateResult. */
  rotate(request: RotateRequest): Promise<RotateResult>

  /** A live session, or null when unknown or expired. */
  get(sessionId: string, now: number): Promise<SessionRecord | null>

  /** Live sessions of one subject, newest first. O(sessions of that user). */
  list(subject: string, now: number): Promise<SessionRecord[]>

  /**
   * Ends one session if it exists and, when `subject` is given, belongs to it.
   * Revokes its access tokens. Returns the ended session, or null.
   */
  end(sessionId: string, reason: EndReason, now: number, subject?: string): Promise<SessionRecord | null>

  /**
   * Ends a session by refresh token (logout with only a refresh token): only if the presented
   * hash is the current or the immediately previous one. Returns the ended session or null.
   */
  endByRefresh(sessionId: string, presentedHash: string, now: number): Promise<SessionRecord | null>

  /** Ends every session of a subject and sets its "not before" mark. Returns the ended ids. */
  endAll(subject: string, reason: EndReason, now: number): Promise<string[]>

  /**
   * Revokes access tokens without touching any session; with `subject`, also sets its "not
   * before" mark. The fail-safe for an ending call whose outcome is unknown (a call that timed
   * out may still run in the store and end the session without the revocation that follows
   * it). Only for sessions the caller has proven it may end. Delivered to this instance's
   * listeners at once; kept and retried if the store does not answer (and then rejects).
   * Optional so that wrappers written before it keep compiling; a wrapper should pass it on.
   */
  revoke?(sessionIds: string[], now: number, subject?: string): Promise<void>

  /** Every live revocation entry, for a full (re)sync. */
  revocations(now: number): Promise<RevocationSnapshot>

  /**
   * The same entries as revocations(), in bounded pages, each one store call: a large set must
   * not be one reply (it would outlive the command timeout and block the store). An entry may
   * come twice, and one added while the pages are read may be missing (its event is on the
   * feed); every entry live throughout is in some page. Optional: a store without it (the
   * memory store) is read with revocations(); a wrapper should pass it on.
   */
  revocationPages?(now: number): AsyncIterable<RevocationSnapshot>

  /** Subscribes to revocations made by any instance sharing this store. */
  subscribe(listener: RevocationListener): () => void

  /**
   * Resolves when the store answers and, for a store with a feed, its revocation feed is
   * subscribed; rejects otherwise (readiness).
   */
  ping(): Promise<void>

  close(): Promise<void>
}
