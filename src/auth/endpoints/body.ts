/** Strict reading of the small JSON bodies the auth endpoints accept. */
import { GatewayError } from '../../errors.js'

export function objectBody(body: unknown, required: boolean): Record<string, unknown> {
  if (body === undefined || body === null) {
    if (required) throw new GatewayError('invalid_request', 'a JSON object body is required')
    return {}
  }
  if (typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('invalid_request', 'the body must be a JSON object')
  return body as Record<string, unknown>
}

export function stringField(body: Record<string, unknown>, name: string, maxLength: number): string {
  const value = body[name]
  if (typeof value !== 'string' || value.length === 0) throw new GatewayError('invalid_request', `"${name}" must be a non-empty string`)
  if (value.length > maxLength) throw new GatewayError('invalid_request', `"${name}" is too long`)
  return value
}

/** The client facts recorded with a session, bounded so a client cannot bloat the store. */
export function clientFacts(request: { headers: Record<string, unknown>; ip: string }): { userAgent: string | null; ip: string | null } {
  const ua = request.headers['user-agent']
  return { userAgent: typeof ua === 'string' && ua !== '' ? ua.slice(0, 256) : null, ip: request.ip || null }
}
