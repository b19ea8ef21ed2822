/**
 * Header hygiene between client, gateway and upstream (SPEC.md "Proxying").
 */
import type { IncomingHttpHeaders } from 'node:http'
import { isReservedCookieName, setCookieName, withoutGatewayCookies } from '../auth/cookies.js'
import type { HeaderValues } from './identity-headers.js'

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

/**
 * stripIdentityHeaders for a configuration that also sends its own names upstream (the
 * assertion header, auth.identityHeaders, routes' identityHeaders): every one of them is
 * removed from every client request, on every route, in every spelling. Names that all start
 * with `x-` keep the two-character test that skips most headers at once.
 */
export function identityHeaderStripper(names: Iterable<string>): (headers: IncomingHttpHeaders) => void {
  const all = new Set(IDENTITY)
  for (const name of names) all.add(name.toLowerCase().replaceAll('_', '-'))
  if (all.size === IDENTITY.size) return stripIdentityHeaders
  const onlyX = [...all].every((n) => n.startsWith('x-'))
  return (headers) => {
    for (const name in headers) {
      if (onlyX && (name.charCodeAt(0) !== 0x78 || (name.charCodeAt(1) !== 0x2d && name.charCodeAt(1) !== 0x5f))) continue
      if (all.has(name.includes('_') ? name.replaceAll('_', '-') : name)) delete headers[name]
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
  /** Configured identity headers, already computed for this request. */
  extra?: HeaderValues | null
  /** The identity assertion and its header name (auth.assertion.header, lower case). */
  assertion?: string | null
  assertionHeader?: string
  /** host[:port] of the upstream, sent as its Host. */
  upstreamHost: string
  forwardAuthorization: boolean
  trustProxy: boolean
  peer: string | undefined
  protocol: string
  host: string | undefined
  requestId: string
  /**
   * W3C trace context for the upstream (src/ops/tracing/request-trace.ts): the client's own
   * traceparent and tracestate never travel as sent; these take their place.
   */
  traceparent?: string
  tracestate?: string | undefined
}

/**
 * Builds the headers sent upstream from the client's (already stripped of identity headers),
 * as a new object: the client's own stay as they arrived, for logs and error pages.
 *
 * What must not travel is left out while copying rather than deleted afterwards: `delete` on
 * a fresh object turns it into a slow dictionary, and every protected request carries an
 * Authorization header to leave out.
 */
export function upstreamRequestHeaders(client: IncomingHttpHeaders | Record<string, unknown>, f: ForwardFacts): Record<string, unknown> {
  // The client's hop-by-hop fields go no further (undici also refuses some of them outright);
  // dropped before our own fields are set, so a client cannot name those away. Without a
  // trusted proxy in front, whatever the client claims about its address, host or scheme is
  // not passed on as fact (and neither is RFC 7239 `Forwarded`).
  const named = connectionNamed(client)
  const headers = endToEnd(client, CLIENT_DROPS[(f.forwardAuthorization ? 1 : 0) + (f.trustProxy ? 2 : 0)]!, named)
  const cookie = client['cookie']
  const kept = typeof cookie === 'string' && named?.includes('cookie') !== true ? withoutGatewayCookies(cookie) : undefined
  if (kept !== undefined) headers['cookie'] = kept
  headers['host'] = f.upstreamHost
  if (f.identity) {
    headers['x-user-id'] = f.identity.sub
    headers['x-user-roles'] = f.identity.roles.join(',')
    headers['x-session-id'] = f.identity.sid
    if (f.extra) for (const [name, value] of f.extra) headers[name] = value
    if (f.assertion) headers[f.assertionHeader!] = f.assertion
  }
  const prior = headers['x-forwarded-for']
  const peer = f.peer ?? ''
  headers['x-forwarded-for'] = f.trustProxy && typeof prior === 'string' && prior !== '' ? `${prior}, ${peer}` : peer
  if (f.host !== undefined && headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = f.host
  headers['x-forwarded-proto'] = f.protocol
  headers['x-request-id'] = f.requestId
  if (f.traceparent !== undefined) headers['traceparent'] = f.traceparent
  if (f.tracestate !== undefined) headers['tracestate'] = f.tracestate
  return headers
}

/** The Connection values nearly every message carries; they name no other field. */
const PLAIN_CONNECTION = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close'])

/** RFC 9110 §7.6.1 connection-specific fields; they describe one hop and never travel on. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']

/**
 * What a client sends that never goes upstream, indexed by forwardAuthorization + 2 × trustProxy:
 * the hop-by-hop fields, its fields meant for the gateway itself (proxy credentials, an
 * expectation of a 100), its bearer token unless the route forwards it, `Forwarded` and
 * `X-Forwarded-Host` unless a trusted proxy wrote them, and its trace context (sent anew).
 */
const CLIENT_DROPS = [false, true].flatMap((trustProxy) =>
  [false, true].map(
    (forwardAuthorization) =>
      new Set([
        ...HOP_BY_HOP,
        'proxy-authorization',
        'expect',
        // Copied separately, without the gateway's own cookies.
        'cookie',
        // An HTTP/2 request's pseudo-headers (RFC 9113 §8.3.1): what they say travels as the
        // upstream request's own method, path and Host, and undici refuses the names.
        ':method',
        ':scheme',
        ':authority',
        ':path',
        ':protocol',
        ...(forwardAuthorization ? [] : ['authorization']),
        ...(trustProxy ? [] : ['forwarded', 'x-forwarded-host']),
        // Replaced by the gateway's own (a new parent span; tracestate only with a valid traceparent).
        'traceparent',
        'tracestate',
      ]),
  ),
)
const UPSTREAM_DROPS = new Set(HOP_BY_HOP)

/** The fields a message's own Connection header names (RFC 9110 §7.6.1), or null for none. */
function connectionNamed(headers: Record<string, unknown>): string[] | null {
  const connection = headers['connection']
  return typeof connection === 'string' && !PLAIN_CONNECTION.has(connection)
    ? connection
        .toLowerCase()
        .split(',')
        .map((s) => s.trim())
    : null
}

/**
 * A copy of `headers` without the connection-specific fields (RFC 9110 §7.6.1): those in
 * `drop` (the hop-by-hop ones among them) and those the message's own Connection header names.
 */
function endToEnd(headers: Record<string, unknown>, drop: ReadonlySet<string>, named = connectionNamed(headers)): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name in headers) {
    if (drop.has(name) || named?.includes(name)) continue
    out[name] = headers[name]
  }
  return out
}

/** How a route maps paths: `prefix` at the gateway is `upstreamPrefix` at the upstream. */
export interface PathMapping {
  prefix: string
  upstreamPrefix: string
}

/**
 * Filters an upstream response's headers before they reach the client. A Location on the
 * upstream's own path space is mapped back to the route's prefix, so redirects stay behind the
 * gateway.
 */
export function downstreamResponseHeaders(headers: Record<string, unknown>, paths?: PathMapping): Record<string, unknown> {
  const out = endToEnd(headers, UPSTREAM_DROPS)
  const location = out['location']
  if (paths !== undefined && typeof location === 'string') out['location'] = gatewayLocation(location, paths)
  const setCookie = out['set-cookie']
  if (setCookie !== undefined) {
    // An upstream must not be able to plant or clear the gateway's own session cookies.
    const kept = (Array.isArray(setCookie) ? setCookie : [String(setCookie)]).filter((v) => !isReservedCookieName(setCookieName(String(v))))
    if (kept.length === 0) delete out['set-cookie']
    else out['set-cookie'] = kept
  }
  return out
}

/**
 * An absolute-path Location under the upstream prefix, as the client must follow it. A full
 * URL (another host's, or the upstream's own) and paths outside the prefix pass unchanged.
 */
export function gatewayLocation(location: string, { prefix, upstreamPrefix }: PathMapping): string {
  if (location.charCodeAt(0) !== 0x2f /* / */ || location.charCodeAt(1) === 0x2f) return location
  const from = upstreamPrefix.endsWith('/') ? upstreamPrefix.slice(0, -1) : upstreamPrefix
  const to = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  if (from === to) return location
  if (from === '') return onOwnOrigin(to + location)
  if (!location.startsWith(from)) return location
  const next = location.charCodeAt(from.length)
  // On a segment boundary only: /v1 does not own /v10.
  if (Number.isNaN(next) || next === 0x2f || next === 0x3f /* ? */ || next === 0x23 /* # */) return onOwnOrigin(to + location.slice(from.length))
  return location
}

/**
 * The mapped Location as a path on the gateway's own origin. Cutting the upstream prefix off
 * for a root route can leave `//evil.example/` or `/\evil.example/`, which a browser follows to
 * another origin (an open redirect, CWE-601): its URL parser drops tabs and newlines anywhere,
 * reads `\` as `/`, and takes a leading pair of them as the start of an authority (WHATWG URL,
 * "relative slash state"). Such a run collapses to one `/`, which is also what the gateway's
 * own path normalisation makes of it.
 */
function onOwnOrigin(mapped: string): string {
  const first = mapped.charCodeAt(0)
  // '' or '?x' / '#x' (the prefix was all of the path) would be relative to the current page.
  if (first !== 0x2f /* / */) return '/' + mapped
  let i = 1
  while (i < mapped.length && SLASH_LIKE.has(mapped.charCodeAt(i))) i++
  return i === 1 ? mapped : '/' + mapped.slice(i)
}

/** `/`, `\`, and the tab and newlines a URL parser removes before it reads the slashes. */
const SLASH_LIKE = new Set([0x2f, 0x5c, 0x09, 0x0a, 0x0d])
