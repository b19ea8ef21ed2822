/**
 * Minting access tokens (SPEC.md "Access tokens").
 */
import { randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import type { SessionRecord } from '../sessions/types.js'
import type { Keyring } from './keys.js'

export interface MintOptions {
  keyring: Keyring
  issuer: string
  audience: string
  /** ms */
  ttl: number
}

export interface Minted {
  token: string
  /** seconds until it expires */
  expiresIn: number
}

export type Minter = (session: SessionRecord, now: number) => Promise<Minted>

export function createMinter({ keyring, issuer, audience, ttl }: MintOptions): Minter {
  const alg = keyring.algorithm
  const ttlSec = Math.floor(ttl / 1000)
  return async (session, now) => {
    const iat = Math.floor(now / 1000)
    // Never outlive the session itself.
    const exp = Math.min(iat + ttlSec, Math.floor(session.absoluteExpiresAt / 1000))
    // Registered claims are set last: a user's custom claims can never override them.
    // auth_time (OpenID Connect Core §2): when the user last signed in, which a refresh keeps.
    const authTime = Math.floor((session.authTime ?? session.createdAt) / 1000)
    // The signer of this moment: managed keys change it while the process runs.
    const { kid, key } = keyring.signer
    const token = await new SignJWT({ ...session.claims, roles: session.roles, sid: session.id, auth_time: authTime })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(session.subject)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(key)
    return { token, expiresIn: exp - iat }
  }
}
