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
 * A session is one string of newline-separated fields rather than a hash: a hash holding a
 * user agent over 64 bytes leaves the compact listpack encoding and costs several times more.
 * No field can hold a raw newline (JSON escapes it), except the subject, which comes last.
 */
import { clientFact } from './rotation.js'
import { subjectTag } from './tokens.js'
import type { SessionRecord } from './types.js'

/**
 * Stored refresh hashes are cut to 128 bits (22 base64url characters): finding a secret that
 * matches one still takes 2^128 work. The older history entries keep 96 bits (16 characters,
 * ./redis-scripts.ts): a match there only ends the session, and no one can aim at an entry
 * without first reading Redis. With a browser's user agent a session then takes ~550-610
 * bytes, its index included (measured by test/sessions/redis-store.test.ts).
 */
export const STORED_HASH_LENGTH = 22
export const storedHash = (hash: string): string => hash.slice(0, STORED_HASH_LENGTH)

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

/**
 * Field order of the packed session; the Lua scripts use the same 1-based positions.
 * Times are base-36 epoch milliseconds (8 characters instead of 13). The last rotation time is
 * lastUsedAt: nothing else moves it, and the grace window only matters once there was one.
 */
const VERSION = '1'
const FIELDS = 12
const time36 = (ms: number): string => Math.max(0, Math.floor(ms)).toString(36)

export function encodeSession(record: SessionRecord, refreshHash: string): string {
  return [
    VERSION,
    storedHash(refreshHash), // 2 current hash
    '', // 3 previous hash
    '', // 4 nonce of the last rotation
    time36(record.lastUsedAt), // 5
    time36(record.idleExpiresAt), // 6
    time36(record.absoluteExpiresAt), // 7
    time36(record.createdAt), // 8
    '', // 9 history: older rotated hashes, concatenated, newest first
    encodeClient(record.userAgent, record.ip), // 10
    JSON.stringify([record.roles, record.claims]), // 11
    record.subject, // 12, last: it may contain anything
  ].join('\n')
}

export const encodeClient = (userAgent: string | null, ip: string | null): string =>
  JSON.stringify([clientFact(userAgent), clientFact(ip)])

/** The record and the rotation nonce; null for anything that is not a session we wrote. */
export function decodeSession(sessionId: string, value: string): { record: SessionRecord; nonce: string } | null {
  const f: string[] = []
  let from = 0
  for (let n = 1; n < FIELDS; n++) {
    const at = value.indexOf('\n', from)
    if (at < 0) return null
    f.push(value.slice(from, at))
    from = at + 1
  }
  f.push(value.slice(from))
  if (f[0] !== VERSION) return null
  try {
    const [userAgent, ip] = JSON.parse(f[9]!) as [string | null, string | null]
    const [roles, claims] = JSON.parse(f[10]!) as [string[], Record<string, unknown>]
    const record: SessionRecord = {
      id: sessionId,
      subject: f[11]!,
      roles,
      claims,
      createdAt: parseInt(f[7]!, 36),
      lastUsedAt: parseInt(f[4]!, 36),
      idleExpiresAt: parseInt(f[5]!, 36),
      absoluteExpiresAt: parseInt(f[6]!, 36),
      userAgent,
      ip,
    }
    return { record, nonce: f[3]! }
  } catch {
    return null
  }
}
