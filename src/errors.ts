/**
 * Every error code the gateway answers with, in one place (SPEC.md "Errors").
 *
 * Errors are thrown as `GatewayError` and rendered by one handler as
 * `application/problem+json` with `status` and a stable `code`. 5xx bodies stay generic;
 * their cause goes to the log with the request id.
 */

export type ErrorCode =
  | 'invalid_request'
  | 'invalid_credentials'
  | 'missing_token'
  | 'invalid_token'
  | 'token_expired'
  | 'token_revoked'
  | 'reauthentication_required'
  | 'invalid_refresh_token'
  | 'refresh_token_reused'
  | 'session_expired'
  | 'forbidden'
  | 'csrf_rejected'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'request_timeout'
  | 'request_header_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'internal_error'
  | 'upstream_unavailable'
  | 'store_unavailable'
  | 'identity_unavailable'
  | 'service_unavailable'
  | 'upstream_timeout'

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_credentials: 401,
  missing_token: 401,
  invalid_token: 401,
  token_expired: 401,
  token_revoked: 401,
  reauthentication_required: 401,
  invalid_refresh_token: 401,
  refresh_token_reused: 401,
  session_expired: 401,
  forbidden: 403,
  csrf_rejected: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  request_timeout: 408,
  unsupported_media_type: 415,
  request_header_too_large: 431,
  rate_limited: 429,
  internal_error: 500,
  upstream_unavailable: 502,
  store_unavailable: 503,
  identity_unavailable: 503,
  service_unavailable: 503,
  upstream_timeout: 504,
}

const TITLE: Record<ErrorCode, string> = {
  invalid_request: 'The request is malformed.',
  invalid_credentials: 'Invalid username or password.',
  missing_token: 'An access token is required.',
  invalid_token: 'The access token is invalid.',
  token_expired: 'The access token has expired.',
  token_revoked: 'The session of this access token has ended.',
  reauthentication_required: 'This needs a more recent sign-in.',
  invalid_refresh_token: 'The refresh token is invalid.',
  refresh_token_reused: 'A rotated refresh token was presented again; the session has been ended.',
  session_expired: 'The session has expired.',
  forbidden: 'You are not allowed to do this.',
  csrf_rejected: 'Cross-site request refused.',
  not_found: 'Not found.',
  method_not_allowed: 'Method not allowed.',
  payload_too_large: 'The request body is too large.',
  request_timeout: 'The request was not received in time.',
  unsupported_media_type: 'Unsupported media type.',
  request_header_too_large: 'The request headers are too large.',
  rate_limited: 'Too many requests.',
  internal_error: 'Internal error.',
  upstream_unavailable: 'The upstream service is unavailable.',
  store_unavailable: 'The session store is unavailable.',
  identity_unavailable: 'The identity service is unavailable.',
  service_unavailable: 'The gateway is not serving requests yet.',
  upstream_timeout: 'The upstream service did not answer in time.',
}

/** 401 codes that mean "a token was presented and is no good" (RFC 6750 §3.1 `invalid_token`). */
const PRESENTED_TOKEN_CODES = new Set<ErrorCode>(['invalid_token', 'token_expired', 'token_revoked'])

export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /** Extra response headers (e.g. Retry-After). */
  readonly headers: Record<string, string> | undefined

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(detail ?? TITLE[code], options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatewayError'
    this.code = code
    this.statusCode = STATUS[code]
    this.headers = options?.headers
  }
}

export interface Problem {
  type: 'about:blank'
  title: string
  status: number
  code: ErrorCode
  detail?: string
}

/** The JSON body for an error. 5xx details are never shown to the client. */
export function problemOf(code: ErrorCode, detail?: string): Problem {
  const status = STATUS[code]
  const body: Problem = { type: 'about:blank', title: TITLE[code], status, code }
  if (detail !== undefined && status < 500 && detail !== TITLE[code]) body.detail = detail
  return body
}

/** Every code, in the order above (for the generated reference, docs/reference/errors.md). */
export const ERROR_CODES = Object.keys(STATUS) as readonly ErrorCode[]

export function statusOf(code: ErrorCode): number {
  return STATUS[code]
}

/** `WWW-Authenticate` for a 401 on a proxied or token-authenticated endpoint (RFC 6750 §3). */
export function wwwAuthenticate(code: ErrorCode): string {
  if (PRESENTED_TOKEN_CODES.has(code)) {
    return `Bearer error="invalid_token", error_description="${TITLE[code]}"`
  }
  return 'Bearer'
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'
