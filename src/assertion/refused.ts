/**
 * Why an identity assertion was refused: one error class whose `code` a `switch` narrows, and
 * whose `statusCode` Fastify's and Express's default error handlers both answer with.
 */

export type AssertionRefusal =
  /** No assertion header: the request did not come through the gateway. */
  | 'missing'
  /** Not a compact JWS, or the header appeared more than once. */
  | 'malformed'
  /** `typ` is not `portcullis-assertion+jwt`: an access token, or some other JWT. */
  | 'wrong_typ'
  /** `alg` is none, symmetric (HS256) or not one of the pinned algorithms. */
  | 'alg_not_allowed'
  /** No key in the gateway's JWKS has this `kid`, even after fetching it again. */
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  /** `iss`, `aud`, `iat`, `sub`, `sid` or `roles` is missing or not what was expected; `claim` names it. */
  | 'claim_invalid'
  /** The JWKS could not be fetched or read: the caller is not at fault (503). */
  | 'jwks_unavailable'

export class AssertionRefused extends Error {
  override readonly name = 'AssertionRefused'
  /** 401, or 503 when the gateway's JWKS could not be had. */
  readonly statusCode: number

  constructor(
    readonly code: AssertionRefusal,
    message: string,
    readonly claim?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.statusCode = code === 'jwks_unavailable' ? 503 : 401
  }
}

/** jose's error codes (stable, documented) turned into refusals; anything else is rethrown as it is. */
export function refusalFrom(err: unknown): unknown {
  if (err instanceof AssertionRefused || !(err instanceof Error)) return err
  const { code, claim } = err as Error & { code?: string; claim?: string }
  const refused = (why: AssertionRefusal, name?: string) => new AssertionRefused(why, `assertion refused: ${err.message}`, name, { cause: err })
  switch (code) {
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refused('malformed')
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refused('alg_not_allowed')
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refused('unknown_kid')
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refused('bad_signature')
    case 'ERR_JWT_EXPIRED':
      return refused('expired', claim)
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return refused('claim_invalid', claim)
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return refused('jwks_unavailable')
    default:
      return err
  }
}
