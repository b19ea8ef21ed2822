/**
 * The rogue provider's keys and the ways it can sign a token: its published key, a key that is
 * never published, the client secret (HS256), or not at all (alg none).
 */
import { randomBytes } from 'node:crypto'
import { base64url, CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'

export type RogueAlg = 'RS256' | 'ES256' | 'PS256' | 'EdDSA'

/**
 * How a token is signed: `key` the provider's current published key; `foreign-key` a key of the
 * same type whose kid is not in the JWKS; `client-secret` HS256 with the client secret as the
 * key (a confused-deputy forgery); `none` an unsecured JWT with an empty signature.
 */
export type Signer = 'key' | 'foreign-key' | 'client-secret' | 'none'

export interface SigningKey {
  kid: string
  alg: RogueAlg
  privateKey: CryptoKey
  /** The public JWK as published (with kid, alg and use). */
  jwk: JWK
}

export async function makeKey(alg: RogueAlg, label: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `${label}-${randomBytes(4).toString('hex')}`
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

export interface SignWith {
  signer: Signer
  current: SigningKey
  foreign: SigningKey
  clientSecret: string
  /** Merged over the header the signer makes (alg, kid, typ). */
  header?: Record<string, unknown>
}

export async function signToken(claims: Record<string, unknown>, how: SignWith): Promise<string> {
  const payload = new TextEncoder().encode(JSON.stringify(claims))
  switch (how.signer) {
    case 'none': {
      const header = { alg: 'none', ...how.header }
      return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(payload)}.`
    }
    case 'client-secret': {
      const header = { alg: 'HS256', ...how.header }
      return new CompactSign(payload).setProtectedHeader(header as { alg: string }).sign(new TextEncoder().encode(how.clientSecret))
    }
    case 'key':
    case 'foreign-key': {
      const key = how.signer === 'key' ? how.current : how.foreign
      const header = { alg: key.alg, kid: key.kid, ...how.header }
      return new CompactSign(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey)
    }
  }
}
