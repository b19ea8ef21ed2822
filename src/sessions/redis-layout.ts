/**
 * Where the Redis store keeps things, and how a session is packed into one string.
 *
 * Keys (`P` = keyPrefix, `T` = the subject's tag = the sid's first 6 characters):
 * - `P s:{T}<sid without tag>`  STRING, the session; PX = until min(idle, absolute expiry)
 * - `P u:{T}<subject>`          ZSET sid → createdAt, the per-user index; PX = the furthest
 *                               absolute expiry of its sessions (rotation never passes it)
 * - `P {rev}:s`                 ZSET sid → forgetAfter, ended sessions
 * - `P {rev}:u`                 ZSET subject → forgetAfter, logout-all marks
 * - `P {rev}:n`                 HASH subject → notBefore, the marks' times
 * - `P {rev}:q`                 STRING, the sequence number of the last published revocation
 *                               (the four {rev} keys: PX = the latest forgetAfter)
 * Channel `P revocations`: {"seq":n,"events":[RevocationEvent...]} after every revocation.
 * One user's keys share `{T}`, so each session script stays in one Cluster slot; the {rev}
 * keys live in their own slot and are written by a separate script after it.
 *
 * A session is one binary string rather than a hash: a hash holding a user agent over 64
 * bytes leaves the compact listpack encoding and costs several times more. Layout version 2:
 *
 *   offset  bytes  field
 *   0       1      version, '2'
 *   1       16     current hash: the first 128 bits of SHA-256(secret)
 *   17      16     previous hash (the same 128 bits); zeros before the first rotation
 *   33      16     nonce of the last rotation (its 128 random bits); zeros before it
 *   49      6      lastUsedAt, also the time of the last rotation   } epoch milliseconds,
 *   55      6      idleExpiresAt                                    } unsigned big-endian
 *   61      6      absoluteExpiresAt                                } (good until the year
 *   67      6      createdAt                                        } 10889): no precision
 *   73      6      end of the refresh-limit window                  } is lost
 *   79      4      refreshes counted in that window (rateLimits.refresh.perSession)
 *   83      1      n, the older rotated hashes kept
 *   84      12n    those hashes, 96 bits each, newest first
 *   then           JSON [userAgent, ip] \n JSON [roles, claims(, provider(, authTime))] \n subject
 *
 * Raw bytes rather than base64url for the hashes and the nonce, and binary times rather than
 * digits, keep a session with a browser's user agent in a 320-byte allocation: ~550 bytes with
 * its index (docs/benchmarks.md, "memory"; test/sessions/redis-store.test.ts). The text
 * fields hold no raw newline (JSON escapes it) except the subject, which comes last. The
 * client JSON comes first of them: a rotation rewrites it and copies the rest as it is.
 *
 * The refresh window lives in the session, not in a key of its own: counted by the rotation
 * script it costs no round trip, no key and no slot of its own, and it dies with the session.
 */
import { clientFact } from './rotation.js'
import { subjectTag } from './tokens.js'
import type { SessionRecord } from './types.js'

/**
 * Stored refresh hashes keep 128 bits: finding a secret that matches one still takes 2^128
 * work. The older history entries keep 96 bits (./redis-scripts.ts): a match there only ends
 * the session, and no one can aim at an entry without first reading Redis.
 */
export const STORED_HASH_BYTES = 16
export const OLDER_HASH_BYTES = 12
const NONCE_BYTES = 16
/** 0-based offsets of the fixed fields (the table above); the Lua scripts are built from them. */
export const AT = {
  current: 1,
  previous: 17,
  nonce: 33,
  lastUsedAt: 49,
  idleExpiresAt: 55,
  absoluteExpiresAt: 61,
  createdAt: 67,
  windowEnd: 73,
  windowCount: 79,
  olderCount: 83,
} as const
/** Bytes before the older hashes. */
export const HEAD_BYTES = 84
/** The largest StoreOptions.historySize: the count of older hashes is one byte. */
export const MAX_HISTORY_SIZE = 256
const VERSION = 0x32 // '2'

/** The stored form of a hashRefresh() value (base64url of SHA-256); null if it is not one. */
export function storedHash(hash: string): Buffer | null {
  const raw = canonical(hash, 32)
  return raw === null ? null : raw.subarray(0, STORED_HASH_BYTES)
}

/** The nonce as stored: the 16 bytes newNonce() drew; null if `nonce` is not such a value. */
export const storedNonce = (nonce: string): Buffer | null => canonical(nonce, NONCE_BYTES)

/** base64url that decodes to `bytes` bytes and encodes back to itself (so it round-trips). */
function canonical(text: string, bytes: number): Buffer | null {
  const raw = Buffer.from(text, 'base64url')
  return raw.length === bytes && raw.toString('base64url') === text ? raw : null
}

export interface RedisKeys {
  session(sessionId: string): string
  index(subject: string): string
  revoked: [sessions: string, users: string, notBefore: string]
  sequence: string
  channel: string
}

export function redisKeys(prefix: string): RedisKeys {
  // A brace in the prefix would move or split the hash tags that keep scripts on one slot.
  if (/[{}]/.test(prefix)) throw new TypeError('store.keyPrefix must not contain "{" or "}"')
  return {
    session: (sid) => `${prefix}s:{${sid.slice(0, 6)}}${sid.slice(6)}`,
    index: (subject) => `${prefix}u:{${subjectTag(subject)}}${subject}`,
    revoked: [`${prefix}{rev}:s`, `${prefix}{rev}:u`, `${prefix}{rev}:n`],
    sequence: `${prefix}{rev}:q`,
    channel: `${prefix}revocations`,
  }
}

const time = (ms: number): number => Math.max(0, Math.floor(ms))

export function encodeSession(record: SessionRecord, refreshHash: string): Buffer {
  const current = storedHash(refreshHash)
  if (!current) throw new TypeError('refreshHash is not a hashRefresh() value')
  const head = Buffer.alloc(HEAD_BYTES) // previous hash, nonce, refresh window, history: none yet
  head[0] = VERSION
  current.copy(head, AT.current)
  head.writeUIntBE(time(record.lastUsedAt), AT.lastUsedAt, 6)
  head.writeUIntBE(time(record.idleExpiresAt), AT.idleExpiresAt, 6)
  head.writeUIntBE(time(record.absoluteExpiresAt), AT.absoluteExpiresAt, 6)
  head.writeUIntBE(time(record.createdAt), AT.createdAt, 6)
  // Appended only when there are some: a password session keeps its old bytes.
  const identity: unknown[] = [record.roles, record.claims]
  if (record.provider !== undefined || record.authTime !== undefined) identity.push(record.provider ?? null)
  if (record.authTime !== undefined) identity.push(record.authTime)
  const text = `${encodeClient(record.userAgent, record.ip)}\n${JSON.stringify(identity)}\n${record.subject}`
  return Buffer.concat([head, Buffer.from(text)])
}

export const encodeClient = (userAgent: string | null, ip: string | null): string => JSON.stringify([clientFact(userAgent), clientFact(ip)])

/** The record and the rotation nonce; null for anything that is not a session we wrote. */
export function decodeSession(sessionId: string, value: Buffer): { record: SessionRecord; nonce: string } | null {
  if (value.length < HEAD_BYTES || value[0] !== VERSION) return null
  const text = value.toString('utf8', HEAD_BYTES + value[AT.olderCount]! * OLDER_HASH_BYTES)
  const a = text.indexOf('\n')
  const b = a < 0 ? -1 : text.indexOf('\n', a + 1)
  if (b < 0) return null
  try {
    const [userAgent, ip] = JSON.parse(text.slice(0, a)) as [string | null, string | null]
    const [roles, claims, provider, authTime] = JSON.parse(text.slice(a + 1, b)) as [string[], Record<string, unknown>, string | null, number?]
    const record: SessionRecord = {
      id: sessionId,
      subject: text.slice(b + 1),
      roles,
      claims,
      createdAt: value.readUIntBE(AT.createdAt, 6),
      lastUsedAt: value.readUIntBE(AT.lastUsedAt, 6),
      idleExpiresAt: value.readUIntBE(AT.idleExpiresAt, 6),
      absoluteExpiresAt: value.readUIntBE(AT.absoluteExpiresAt, 6),
      userAgent,
      ip,
    }
    if (typeof provider === 'string') record.provider = provider
    if (typeof authTime === 'number') record.authTime = authTime
    return { record, nonce: value.subarray(AT.nonce, AT.nonce + NONCE_BYTES).toString('base64url') }
  } catch {
    return null
  }
}
