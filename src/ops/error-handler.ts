/**
 * The one place errors become responses: SPEC.md's JSON problem bodies with a stable `code`.
 * Nothing a client sends may produce a 500; a 5xx body never reveals its cause, which goes to
 * the log with the request id instead.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError, PROBLEM_CONTENT_TYPE, problemOf, wwwAuthenticate, type ErrorCode } from '../errors.js'

/** Fastify's own client errors, by their code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_ASYNC_CONSTRAINT: 'invalid_request',
  FST_ERR_NOT_FOUND: 'not_found',
}

export function errorHandler(error: FastifyError | GatewayError, request: FastifyRequest, reply: FastifyReply): void {
  const gatewayError = error instanceof GatewayError ? error : fromFastify(error)
  const code = gatewayError.code
  if (gatewayError.statusCode >= 500) {
    request.log.error({ err: error.cause ?? error, code }, 'request failed')
  } else if (!(error instanceof GatewayError)) {
    request.log.info({ code, reason: error.message }, 'request refused')
  }
  sendProblem(reply, gatewayError)
}

export function sendProblem(reply: FastifyReply, error: GatewayError): void {
  if (error.statusCode === 401) reply.header('www-authenticate', wwwAuthenticate(error.code))
  if (error.headers) reply.headers(reply.request.raw.httpVersionMajor === 2 ? withoutConnection(error.headers) : error.headers)
  reply.code(error.statusCode).type(PROBLEM_CONTENT_TYPE).send(problemOf(error.code, error.message))
}

/** HTTP/2 forbids Connection (RFC 9113 §8.2.2); a stream needs no asking to end with its answer. */
function withoutConnection(headers: Record<string, string>): Record<string, string> {
  const { connection: _, ...rest } = headers
  return rest
}

export function notFoundHandler(_request: FastifyRequest, reply: FastifyReply): void {
  sendProblem(reply, new GatewayError('not_found'))
}

function fromFastify(error: FastifyError): GatewayError {
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined
  if (mapped) return new GatewayError(mapped, mapped === 'invalid_request' ? error.message : undefined, { cause: error })
  const status = error.statusCode ?? 500
  if (status === 413) return new GatewayError('payload_too_large', undefined, { cause: error })
  if (status === 415) return new GatewayError('unsupported_media_type', undefined, { cause: error })
  if (status === 404) return new GatewayError('not_found', undefined, { cause: error })
  if (status >= 400 && status < 500) return new GatewayError('invalid_request', undefined, { cause: error })
  return new GatewayError('internal_error', undefined, { cause: error })
}
