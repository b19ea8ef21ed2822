/**
 * What Node's parsers leave to the server in a request's head: the protocol version of its
 * request line and its Host field (RFC 9112 §2.3 and §3.2), or for HTTP/2 its `:authority`
 * (RFC 9113 §8.3.1). Checked once per request, by src/server.ts, before any generation sees it.
 */
import type { IncomingMessage } from 'node:http'
import { Http2ServerRequest } from 'node:http2'
import { isIPv6 } from 'node:net'

/** Why the request must be answered 400 without being served, or null when its head is sound. */
export function requestHeadProblem(req: IncomingMessage | Http2ServerRequest): string | null {
  if (req.httpVersionMajor !== 1) {
    // An HTTP/2 stream of a TLS listener offering h2. (llhttp reads a request line without a
    // version as HTTP/0.9 and lets `HTTP/2.0` through as such: neither is HTTP/1.x, and a 0.9
    // request has no headers at all.)
    return req instanceof Http2ServerRequest ? http2HeadProblem(req) : 'unsupported HTTP version'
  }
  const host = req.headers.host
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, with more than one, or with an invalid one
  // MUST be answered 400 (Node keeps the first of several Host lines and drops the rest).
  if (host === undefined) return req.httpVersionMinor === 0 ? null : 'missing Host header'
  if (!validHost(host)) return 'invalid Host header'
  if (hostLines(req.rawHeaders) > 1) return 'more than one Host header'
  return null
}

/**
 * HTTP/2 names the target's authority in `:authority` (Node has already refused a stream with
 * malformed or unknown pseudo-headers). A request converted from HTTP/1.1 may carry Host
 * instead, or both, which must then agree (RFC 9113 §8.3.1: else the request is malformed).
 * The authority is then copied into Host, as an intermediary turning HTTP/2 into HTTP/1.1 must
 * (§8.3.1): everything after this step (routes, CSRF's origin, X-Forwarded-Host, redirects,
 * the access log) reads one field on every protocol.
 */
function http2HeadProblem(req: Http2ServerRequest): string | null {
  const headers = req.headers
  const authority = headers[':authority']
  const host = headers.host
  if (authority === undefined && host === undefined) return 'missing :authority'
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return 'Host differs from :authority'
  const value = (authority ?? host)!
  if (!validHost(value)) return authority === undefined ? 'invalid Host header' : 'invalid :authority'
  if (hostLines(req.rawHeaders) > 1) return 'more than one Host header'
  if (host === undefined) headers.host = value
  return null
}

function hostLines(raw: readonly string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    // Compared without lowercasing (an allocation per header): `| 0x20` folds ASCII case.
    if (
      name.length === 4 &&
      (name.charCodeAt(0) | 0x20) === 0x68 /* h */ &&
      (name.charCodeAt(1) | 0x20) === 0x6f /* o */ &&
      (name.charCodeAt(2) | 0x20) === 0x73 /* s */ &&
      (name.charCodeAt(3) | 0x20) === 0x74 /* t */
    ) {
      n++
    }
  }
  return n
}

/**
 * reg-name characters (RFC 3986 §3.2.2: unreserved / sub-delims; pct-encoded is handled
 * apart), except `,`: a comma in Host means a list that something in front joined, and
 * passed on as X-Forwarded-Host it would read as two hosts.
 */
const REG_NAME = new Uint8Array(128)
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+;=") REG_NAME[c.charCodeAt(0)] = 1

/**
 * RFC 9110 §7.2: `Host = uri-host [ ":" port ]`, uri-host being an IP-literal in brackets
 * (IPv6; IPvFuture is not accepted), an IPv4 address or a reg-name. An empty host is refused:
 * an "http" URI must not have one (RFC 9110 §4.2.1).
 */
export function validHost(value: string): boolean {
  const end = value.length
  let i = 0
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']')
    const literal = close === -1 ? '' : value.slice(1, close)
    // Node's isIPv6 accepts a zone id (`fe80::1%eth0`), which RFC 3986 does not.
    if (!isIPv6(literal) || literal.includes('%')) return false
    i = close + 1
  } else {
    while (i < end) {
      const c = value.charCodeAt(i)
      if (c < 128 && REG_NAME[c] === 1) i++
      else if (c === 0x25 /* % */ && isHex(value.charCodeAt(i + 1)) && isHex(value.charCodeAt(i + 2))) i += 3
      else break
    }
    if (i === 0) return false
  }
  if (i === end) return true
  if (value.charCodeAt(i) !== 0x3a /* : */) return false
  for (i++; i < end; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66)
}
