/**
 * Session ids and refresh tokens: how they are made, parsed and hashed.
 * See the token model in ./types.ts.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'

/** Characters of a subject's hash tag; also the tag of a rate-limit counter (src/ops/rate-limit-redis.ts). */
export const TAG_LENGTH = 6
/** 6 tag characters + 22 characters of 128 random bits. */
const SID_RE = /^[A-Za-z0-9_-]{28}$/
/** 43 characters = 256 bits, base64url without padding. */
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/

/** The Redis Cluster hash tag shared by every key of one subject's sessions. */
export function subjectTag(subject: string): string {
  return createHash('sha256').update(subject).digest('base64url').slice(0, TAG_LENGTH)
}

/** The hash tag a session id carries (its first characters). */
export function sessionTag(sessionId: string): string {
  return sessionId.slice(0, TAG_LENGTH)
}

export function newSessionId(subject: string): string {
  return subjectTag(subject) + randomBytes(16).toString('base64url')
}

export function isSessionId(value: string): boolean {
  return SID_RE.test(value)
}

/** A fresh 256-bit refresh secret. */
export function newRefreshSecret(): string {
  return randomBytes(32).toString('base64url')
}

/** A fresh nonce for deriving a successor. */
export function newNonce(): string {
  return randomBytes(16).toString('base64url')
}

/**
 * The successor of a refresh secret. Keyed with the presented secret, so whoever holds only
 * the stored hash and nonce cannot compute it.
 */
export function deriveSuccessor(secret: string, nonce: string): string {
  return createHmac('sha256', secret).update(nonce).digest('base64url')
}

/** What the store keeps instead of a secret. */
export function hashRefresh(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}

export function formatRefreshToken(sessionId: string, secret: string): string {
  return `${sessionId}.${secret}`
}

/** Splits `<sid>.<secret>`; null for anything that is not exactly that shape. */
export function parseRefreshToken(token: unknown): { sessionId: string; secret: string } | null {
  if (typeof token !== 'string' || token.length !== 28 + 1 + 43) return null
  const sessionId = token.slice(0, 28)
  const secret = token.slice(29)
  if (token[28] !== '.' || !SID_RE.test(sessionId) || !SECRET_RE.test(secret)) return null
  return { sessionId, secret }
}
