/**
 * The process's one listening server (src/server.ts dispatches its requests to generations):
 * plain HTTP, HTTPS with HTTP/1.1 only, or HTTPS offering HTTP/2 and HTTP/1.1 by ALPN
 * (`server.tls`). Node runs its HTTP/1 machinery for the HTTP/1.1 connections of an HTTP/2
 * server (`allowHTTP1`), so the request head limits, the `upgrade` event that WebSockets use,
 * `checkContinue` and `clientError` work alike in all three.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { contextOptions, type Certificate } from './tls/certificate.js'

export type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void

export type Listening = HttpServer | HttpsServer | Http2SecureServer

export interface ServerLimits {
  maxHeaderSize: number
  requestTimeout: number
  headersTimeout: number
  keepAliveTimeout: number
}

export interface ListenerTls {
  certificate: Certificate
  /** Offer h2 beside http/1.1. */
  http2: boolean
}

/**
 * RFC 9113 §6.5.2 asks for no fewer than 100. A client may open this many requests at once on
 * one connection; nginx allows 128, Go 250. Node's default is 2³²−1, which would let one
 * connection hold as many requests in flight as it likes.
 */
const MAX_CONCURRENT_STREAMS = 100

export interface Listener {
  readonly server: Listening
  readonly http2: boolean
  /** Ends idle connections; an HTTP/2 one is told (GOAWAY) to take no new requests and ends once its open ones finish. */
  closeIdle(): void
  /** Ends every connection now. */
  closeAll(): void
}

export function createListener(limits: ServerLimits, tls: ListenerTls | null, handler: Handler): Listener {
  const http1 = {
    maxHeaderSize: limits.maxHeaderSize,
    requestTimeout: limits.requestTimeout,
    headersTimeout: limits.headersTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionsCheckingInterval: checkingInterval(limits),
    // Node would answer a Host-less HTTP/1.1 request 400 with an empty body: src/server.ts
    // refuses it with a JSON problem instead (src/request-head.ts).
    requireHostHeader: false,
  }
  if (tls === null) return plain(createHttpServer(http1, handler))
  if (!tls.http2) return plain(createHttpsServer({ ...http1, ...contextOptions(tls.certificate), ALPNProtocols: ['http/1.1'] }, handler))

  const server = createSecureServer(
    {
      ...contextOptions(tls.certificate),
      allowHTTP1: true,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: limits.maxHeaderSize },
    },
    handler,
  )
  // Http2SecureServer takes no HTTP/1 options, but its HTTP/1.1 connections read them from the
  // server object as http.Server's do (and it has set up its own defaults the same way).
  Object.assign(server, http1)
  const sessions = new Set<Http2Session>()
  const sockets = new Set<TLSSocket>()
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
    // keepAliveTimeout for HTTP/2: a session quiet that long is closed, gracefully (requests
    // still waiting on an upstream finish first).
    if (limits.keepAliveTimeout > 0) session.setTimeout(limits.keepAliveTimeout, () => session.close())
  })
  return {
    server,
    http2: true,
    closeIdle() {
      // Node's own, for its HTTP/1.1 connections (in @types/node only from Node 22 on).
      ;(server as unknown as Partial<Pick<HttpServer, 'closeIdleConnections'>>).closeIdleConnections?.()
      for (const session of sessions) session.close()
    },
    closeAll() {
      for (const socket of sockets) socket.destroy()
    },
  }
}

function plain(server: HttpServer | HttpsServer): Listener {
  return {
    server,
    http2: false,
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
  }
}

/**
 * Node enforces requestTimeout and headersTimeout on a timer, every 30 s by default, so a
 * 5 s headersTimeout could let a slow client (slowloris) hold a connection for 35 s. Checking
 * at a quarter of the shortest timeout makes either fire within 125% of its value.
 */
function checkingInterval(limits: ServerLimits): number {
  const shortest = Math.min(...[limits.requestTimeout, limits.headersTimeout].filter((ms) => ms > 0))
  return Math.min(30_000, Math.max(100, Math.floor(shortest / 4)))
}
