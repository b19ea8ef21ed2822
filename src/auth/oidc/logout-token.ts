/**
 * Validating a Back-Channel Logout token (OpenID Connect Back-Channel Logout 1.0 §2.6).
 * openid-client has no API for it; jose does the JWS and registered-claim checks and the
 * rest is the spec's list, one line each.
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/**
 * How old a logout token may be (by `iat`). It bounds how long a used `jti` must be kept to
 * refuse a replay: a token older than this is refused anyway.
 */
export const LOGOUT_TOKEN_MAX_AGE = 10 * 60_000

export interface LogoutToken {
  jti: string
  sid?: string
  sub?: string
}

export interface LogoutTokenOptions {
  issuer: string
  clientId: string
  /** The provider's asymmetric signing algorithms (never `none` or HS*). */
  algorithms: string[]
  /** ms */
  clockTolerance: number
  /** Current time, ms. */
  now: number
}

export class InvalidLogoutToken extends Error {
  override name = 'InvalidLogoutToken'
}

export async function verifyLogoutToken(token: string, keys: JWTVerifyGetKey, o: LogoutTokenOptions): Promise<LogoutToken> {
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(token, keys, {
      issuer: o.issuer,
      audience: o.clientId,
      algorithms: o.algorithms,
      requiredClaims: ['iat', 'jti'],
      maxTokenAge: LOGOUT_TOKEN_MAX_AGE / 1000,
      clockTolerance: o.clockTolerance / 1000,
      currentDate: new Date(o.now),
    }))
  } catch (err) {
    // An unknown kid the JWKS still lacked after refetching, a bad signature, a wrong iss...
    // the provider's JWKS being unreachable is not the token's fault: that stays an outage.
    // (jose reports a JWKS answer other than 200 as the generic JOSEError.)
    if (err instanceof errors.JOSEError && !(err instanceof errors.JWKSTimeout) && err.code !== 'ERR_JOSE_GENERIC')
      throw new InvalidLogoutToken(err.code)
    throw err
  }
  const events = payload['events']
  const event = events !== null && typeof events === 'object' ? (events as Record<string, unknown>)[BACKCHANNEL_EVENT] : undefined
  // §2.4: the event's value is a JSON object (usually empty).
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new InvalidLogoutToken('no back-channel logout event')
  // §2.4: a nonce is prohibited, so an id_token (which has one) is never taken for a logout token.
  if (payload['nonce'] !== undefined) throw new InvalidLogoutToken('nonce present')
  const sid = payload['sid']
  const { sub, jti } = payload
  if (typeof jti !== 'string' || jti === '') throw new InvalidLogoutToken('no jti')
  if (sid !== undefined && typeof sid !== 'string') throw new InvalidLogoutToken('sid is not a string')
  if (sid === undefined && sub === undefined) throw new InvalidLogoutToken('neither sid nor sub')
  return { jti, ...(sid === undefined ? {} : { sid }), ...(sub === undefined ? {} : { sub }) }
}
