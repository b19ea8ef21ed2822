/**
 * Header hygiene between client, gateway and upstream (SPEC.md "Proxying").
 */
import type { IncomingHttpHeaders } from 'node:http'
import { setCookieName, withoutGatewayCookies, GATEWAY_COOKIE_NAMES } from '../auth/cookies.js'

export const IDENTITY_HEADERS = ['x-user-id', 'x-user-roles', 'x-session-id'] as const
const IDENTITY = new Set<string>(IDENTITY_HEADERS)

/**
 * Removes client-sent identity headers in every spelling. `x_user_id` counts too: CGI, WSGI,
 * PHP and nginx map `-` and `_` to the same variable (HTTP_X_USER_ID), so an upstream could
 * read a spoofed underscore header as ours.
 */
export function stripIdentityHeaders(headers: IncomingHttpHeaders): void {
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x78 /* x */ && (name.charCodeAt(1) === 0x2d || name.charCodeAt(1) === 0x5f)) {
      if (IDENTITY.has(name.replaceAll('_', '-'))) delete headers[name]
    }
  }
}

export interface Identity {
  readonly sub: string
  readonly sid: string
  readonly roles: readonly string[]
}

export interface ForwardFacts {
  identity: Identity | null
  forwardAuthorization: boolean
  trustProxy: boolean
  peer: string | undefined
  protocol: string
  host: string | undefined
  requestId: string
}

/** Builds the headers sent upstream from the client's (already stripped of identity headers). */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders | Record<string, unknown>, f: ForwardFacts): Record<string, unknown> {
  // Connection-specific fields describe the client's hop only (RFC 9110 §7.6.1); undici also
  // refuses some of them outright. reply-from already dropped `Connection` and the fields it
  // names, before our identity headers are set below.
  // `delete` only what is there: deleting turns the object into a slow dictionary, and undici
  // then serialises it more slowly.
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name]
  if (headers['proxy-authorization'] !== undefined) delete headers['proxy-authorization']
  if (!f.forwardAuthorization && headers['authorization'] !== undefined) delete headers['authorization']
  const cookie = headers['cookie']
  if (typeof cookie === 'string') {
    const kept = withoutGatewayCookies(cookie)
    if (kept === undefined) delete headers['cookie']
    else headers['cookie'] = kept
  }
  if (f.identity) {
    headers['x-user-id'] = f.identity.sub
    headers['x-user-roles'] = f.identity.roles.join(',')
    headers['x-session-id'] = f.identity.sid
  }
  const prior = headers['x-forwarded-for']
  const peer = f.peer ?? ''
  // Without a trusted proxy in front, whatever the client claims about its address, host or
  // scheme is not passed on as fact (and neither is RFC 7239 `Forwarded`).
  headers['x-forwarded-for'] = f.trustProxy && typeof prior === 'string' && prior !== '' ? `${prior}, ${peer}` : peer
  if (!f.trustProxy && headers['forwarded'] !== undefined) delete headers['forwarded']
  if (!f.trustProxy || headers['x-forwarded-host'] === undefined) {
    if (f.host === undefined) delete headers['x-forwarded-host']
    else headers['x-forwarded-host'] = f.host
  }
  headers['x-forwarded-proto'] = f.protocol
  headers['x-request-id'] = f.requestId
  return headers
}

/** RFC 9110 §7.6.1 connection-specific fields; they describe one hop and never travel on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

/** Filters an upstream response's headers before they reach the client. */
export function downstreamResponseHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const connection = headers['connection']
  const named = typeof connection === 'string' ? connection.toLowerCase().split(',').map((s) => s.trim()) : []
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (named.length > 0 && named.includes(name))) continue
    out[name] = headers[name]
  }
  const setCookie = out['set-cookie']
  if (setCookie !== undefined) {
    // An upstream must not be able to plant or clear the gateway's own session cookies.
    const kept = (Array.isArray(setCookie) ? setCookie : [String(setCookie)]).filter(
      (v) => !GATEWAY_COOKIE_NAMES.has(setCookieName(String(v))),
    )
    if (kept.length === 0) delete out['set-cookie']
    else out['set-cookie'] = kept
  }
  return out
}
