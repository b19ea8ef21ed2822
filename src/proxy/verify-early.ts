/**
 * Forward-auth's common answer, given before Fastify's routing: an edge asks about a request
 * whose bearer token this gateway has verified before, on a route where nothing else is left
 * to check (no rate limit, no maxAuthAge, revocation answered from memory).
 *
 * Why it exists: an edge asks once for every request it serves, so this answer is the whole of
 * forward-auth's load. Through Fastify it cost 38–46 µs of CPU against 20–22 µs for a plain
 * Fastify app answering the same path with an empty 200 (`npm run bench`, 2026-12-03), and
 * almost none of the difference was ours: the gateway's own `/healthz` cost 36–43 µs. Request
 * and reply objects, routing, hooks and the child logger are what it skips here.
 *
 * The answer is the one Fastify's route gives (./verify-endpoint.ts runs the same question and
 * guard, and test/proxy/verify-early.test.ts compares the two): the same status and headers,
 * the same access log line, request metrics and auth outcome. Whatever else (no token verified
 * yet, a cookie, a refusal, a body, a path to normalise, OpenTelemetry spans on, a closing
 * generation) returns false, and the request goes through Fastify as before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import proxyAddr from '@fastify/proxy-addr'
import type { AccessLog } from '../ops/access-log.js'
import { requestId } from '../ops/logger.js'
import type { GatewayMetrics } from '../ops/metrics.js'
import { traceIdOf } from '../ops/tracing/request-trace.js'
import { normalizeTarget } from './normalize.js'
import type { Guarded } from './route-guard.js'
import type { ForwardAuth } from './verify-endpoint.js'

/** Fastify's request handler: an HTTP/2 request and response come as these too (src/server.ts). */
type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** Answers `req` and returns true, or returns false having touched nothing; `handler` (Fastify's) takes over if an answer under way fails. */
export type EarlyAnswer = (req: IncomingMessage, res: ServerResponse, handler: Handler) => boolean

export interface EarlyOptions {
  trustProxy: boolean
  accessLog: AccessLog | null
  metrics: GatewayMetrics
  /** True once the generation's Fastify instance is closing: it answers 503 then, and so must this. */
  closing: () => boolean
}

/** Methods Fastify's `app.all` routes to forward-auth, which an edge may ask with. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

const trustAll = () => true

export function earlyVerify(forward: ForwardAuth, opts: EarlyOptions): EarlyAnswer {
  const { own, routes, guards, routeTable } = forward
  const { accessLog, metrics } = opts
  // Fastify's request.ip, as it computes it (fastify/lib/request.js) with trustProxy true or false.
  const clientAddress = opts.trustProxy
    ? (req: IncomingMessage) => proxyAddr.all(req, trustAll).at(-1)
    : (req: IncomingMessage) => req.socket?.remoteAddress

  return (req, res, handler) => {
    const url = req.url
    if (url === undefined || !url.startsWith(own) || opts.closing()) return false
    // `/verify`, `/verify?…` or `/verify/…`, already in normal form (else Fastify's rewrite has work to do).
    const next = url.charCodeAt(own.length)
    if (url.length > own.length && next !== 0x2f /* / */ && next !== 0x3f /* ? */) return false
    if (normalizeTarget(url, routeTable) !== url) return false
    const method = req.method ?? ''
    const headers = req.headers
    // A body (which Fastify leaves unread) or Expect: 100-continue: Fastify's path.
    if (!METHODS.has(method) || headers['transfer-encoding'] !== undefined || headers.expect !== undefined) return false
    const length = headers['content-length']
    if (length !== undefined && length !== '0') return false
    const started = performance.now()

    let route: number
    try {
      route = forward.ask(headers, method, url).route
    } catch {
      return false
    }
    if (route === -1) return false
    const guard = guards[route]!
    if (guard.limiter !== null || routes[route]!.maxAuthAge !== undefined) return false
    const seen: Guarded = { headers, auth: null, identityHeaders: null, assertion: null }
    let ready: Promise<void> | null | undefined
    try {
      ready = guard.cached(seen)
    } catch {
      // A claim no header can carry: Fastify's path refuses it (401).
      return false
    }
    if (ready === undefined) return false
    const routeName = routes[route]!.name
    if (ready === null) answer(req, res, handler, seen, routeName, started)
    // The identity assertion is still being signed (a token's first request on its route). A
    // failure there is Fastify's to answer, as it would have been.
    else
      ready.then(
        () => answer(req, res, handler, seen, routeName, started),
        () => handler(req, res),
      )
    return true
  }

  /** 200 with the identity, then the request's metrics and access line. */
  function answer(req: IncomingMessage, res: ServerResponse, handler: Handler, seen: Guarded, routeName: string, started: number): void {
    const id = requestId(req)
    const method = req.method!
    const out: Record<string, string> = { 'x-request-id': id, 'cache-control': 'no-store' }
    forward.identity(seen, out)
    // As Fastify answers: no length for HEAD (it would announce the length of a GET's answer).
    if (method !== 'HEAD') out['content-length'] = '0'
    try {
      res.writeHead(200, out)
    } catch {
      // Nothing was sent (Node checks every header first). The claims were checked to be
      // header-safe when verified, so this is not expected; were it to happen, Fastify's path
      // answers rather than an exception ending the process.
      return handler(req, res)
    }
    res.end()
    const elapsedTime = performance.now() - started
    metrics.request(routeName, method, 200, elapsedTime)
    accessLog?.record(
      { routeName, trace: { traceId: traceIdOf(seen.headers) }, ip: clientAddress(req), id, method, url: req.url! },
      { elapsedTime, statusCode: 200, raw: res },
    )
  }
}
