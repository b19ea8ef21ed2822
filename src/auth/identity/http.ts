/**
 * The `http` identity source: an existing user service checks the password.
 *
 * POST {"username","password"} as JSON; 200 {"subject","roles"?,"claims"?} = valid,
 * 401/403/404 = invalid credentials, anything else or no answer = 503 identity_unavailable.
 */
import { GatewayError } from '../../errors.js'
import { dropReservedClaims, isValidRole, isValidSubject, type Identity, type IdentitySource } from './types.js'

/** Largest answer read from the user service; a bigger one is a fault, not an identity. */
export const MAX_RESPONSE_BYTES = 64 * 1024

export interface HttpSourceConfig {
  url: string
  /** Milliseconds for the whole exchange, body included. */
  timeout: number
}

export function createHttpSource(config: HttpSourceConfig): IdentitySource {
  const target = new URL(config.url)
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
  // fetch refuses URLs with credentials; `http://user:pass@host` still means Basic auth.
  if (target.username !== '' || target.password !== '') {
    const userinfo = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`
    headers.authorization = `Basic ${Buffer.from(userinfo).toString('base64')}`
    target.username = ''
    target.password = ''
  }
  const url = target.href
  // Error messages name the service without its credentials or query string.
  const where = target.origin + target.pathname
  const unavailable = (why: string, cause?: unknown) => new GatewayError('identity_unavailable', `identity service ${where}: ${why}`, { cause })

  return {
    async authenticate(username, password) {
      const signal = AbortSignal.timeout(config.timeout)
      let res: Response
      try {
        res = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({ username, password }),
          signal,
          // Following a redirect would resend the password wherever the Location points.
          redirect: 'manual',
        })
      } catch (cause) {
        throw unavailable(signal.aborted ? `no answer within ${config.timeout} ms` : 'request failed', cause)
      }
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        await discard(res)
        return null
      }
      if (res.status !== 200) {
        await discard(res)
        throw unavailable(`answered ${res.status}`)
      }
      let body: unknown
      try {
        body = JSON.parse(await readCapped(res, MAX_RESPONSE_BYTES))
      } catch (cause) {
        throw unavailable(signal.aborted ? `no answer within ${config.timeout} ms` : 'unreadable 200 body', cause)
      }
      const identity = parseIdentity(body)
      // A 200 we cannot read is a broken service, not a sign-in: never let it through.
      if (identity === null) throw unavailable('malformed 200 body')
      return identity
    },
  }
}

/**
 * The identity in a 200 body, or null when its shape is wrong. Unknown top-level fields
 * are ignored (services add fields); `null` roles or claims mean absent (common in
 * serialisers that write every field). Everything present must have the right type.
 */
export function parseIdentity(body: unknown): Identity | null {
  if (!isObject(body)) return null
  const { subject, roles = null, claims = null } = body
  if (!isValidSubject(subject)) return null
  if (roles !== null && !(Array.isArray(roles) && roles.every(isValidRole))) return null
  if (claims !== null && !isObject(claims)) return null
  return {
    subject,
    roles: roles === null ? [] : [...new Set(roles as string[])],
    claims: claims === null ? {} : dropReservedClaims(claims),
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Releases the connection without reading what we do not need. */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {})
}

/** The body as UTF-8 text, refusing more than `max` bytes without buffering them. */
async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0)
  if (declared > max) {
    await discard(res)
    throw new RangeError(`body of ${declared} bytes exceeds ${max}`)
  }
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      throw new RangeError(`body exceeds ${max} bytes`)
    }
    chunks.push(value)
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
}
