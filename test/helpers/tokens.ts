/**
 * Access tokens for tests, made exactly as the gateway mints them, plus the means to make
 * every kind of bad token.
 */
import { SignJWT, type JWTPayload, type CryptoKey } from 'jose'
import type { Keyring } from '../../src/auth/keys.js'

export interface TokenSpec {
  sub?: string
  sid?: string
  roles?: string[]
  iss?: string
  aud?: string
  /** seconds relative to `now` */
  iat?: number
  exp?: number | null
  nbf?: number
  extra?: JWTPayload
  header?: Record<string, unknown>
  key?: CryptoKey | Uint8Array
  alg?: string
  kid?: string | null
}

export const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

export async function makeToken(keyring: Keyring, spec: TokenSpec = {}, nowMs = Date.now()): Promise<string> {
  const now = Math.floor(nowMs / 1000)
  const payload: JWTPayload = {
    iss: spec.iss ?? 'portcullis',
    aud: spec.aud ?? 'portcullis',
    sub: spec.sub ?? 'u-alice',
    sid: spec.sid ?? 'AAAAAAsessionsessionsession0',
    roles: spec.roles ?? ['user'],
    iat: now + (spec.iat ?? 0),
    jti: 'test',
    ...spec.extra,
  }
  if (spec.exp !== null) payload.exp = now + (spec.exp ?? 300)
  if (spec.nbf !== undefined) payload.nbf = now + spec.nbf
  const kid = spec.kid === undefined ? keyring.signer.kid : spec.kid
  const header = { alg: spec.alg ?? keyring.algorithm, typ: 'JWT', ...(kid === null ? {} : { kid }), ...spec.header }
  return new SignJWT(payload).setProtectedHeader(header as never).sign(spec.key ?? keyring.signer.key)
}

/** An unsigned token (`alg: none`). */
export function unsignedToken(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'JWT' }): string {
  return `${b64(header)}.${b64(payload)}.`
}
