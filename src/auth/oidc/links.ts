/**
 * Which gateway sessions a provider's session and a provider's user became, so that a logout
 * token (which speaks of the provider's `sid` and `sub`) finds them on any instance.
 *
 * Keys hold a hash of the provider's value: any length and character set becomes a short
 * fixed key, and the store holds no provider session id in the clear.
 */
import { createHash } from 'node:crypto'
import type { SessionRecord, ShortLivedValues } from '../../sessions/types.js'
import type { Claims } from './claims.js'

const hashed = (value: string) => createHash('sha256').update(value).digest('base64url')
export const sidKey = (provider: string, sid: string) => `oidc:sid:${provider}:${hashed(sid)}`
export const subKey = (provider: string, sub: string) => `oidc:sub:${provider}:${hashed(sub)}`

/** Links a session about to be stored to its provider's `sid` (when sent) and `sub`. */
export async function linkSession(store: ShortLivedValues, provider: string, claims: Claims, record: SessionRecord, now: number): Promise<void> {
  // A link lives as long as the longest session it points at can.
  const until = record.absoluteExpiresAt
  const links = [subKey(provider, String(claims['sub']))]
  if (typeof claims['sid'] === 'string') links.push(sidKey(provider, claims['sid']))
  await Promise.all(links.map((key) => store.link(key, record.id, until, now)))
}
