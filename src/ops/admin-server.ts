/**
 * `server.admin`: a second listener for operators. It serves `/metrics` (which the public
 * listener then answers 404), `/healthz` and `/readyz`, and nothing else: no route, no auth
 * endpoint, so it can sit on a private address while the public listener faces the internet.
 *
 * A plain http.Server rather than a Fastify generation: three fixed endpoints that a reload
 * never changes, which must keep answering while generations come and go.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { PROBLEM_CONTENT_TYPE, problemOf, type ErrorCode } from '../errors.js'
import { hostPort, listenError } from '../listen.js'
import { clientError } from '../server.js'
import type { Readiness } from './health.js'

export interface AdminAddress {
  host: string
  port: number
}

/** What the listener shows: this process's, or (the primary of several workers) all of theirs. */
export interface AdminSources {
  metrics(): Promise<{ contentType: string; body: string }>
  readiness: Readiness
}

export interface AdminListener {
  readonly url: string
  close(): Promise<void>
}

/**
 * Listens on `address`; when it cannot, rejects with an error naming `server.admin.port` in
 * `file` (the process then fails to start rather than run without its metrics).
 */
export async function listenAdmin(address: AdminAddress, sources: AdminSources, log: Logger, file: string): Promise<AdminListener> {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    answer(req, res, sources).catch((err: unknown) => {
      log.error({ err, path: req.url }, 'admin listener: request failed')
      if (!res.headersSent) send(res, 500, PROBLEM_CONTENT_TYPE, JSON.stringify(problemOf('internal_error')))
      else res.destroy()
    })
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => clientError(err, socket))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      resolve()
    })
  }).catch((err: unknown) => {
    throw listenError(err, { ...address, setting: 'server.admin.port', file })
  })
  const bound = server.address() as AddressInfo
  const url = `http://${hostPort(bound.address, bound.port)}`
  return { url, close: () => closeServer(server) }
}

async function answer(req: IncomingMessage, res: ServerResponse, sources: AdminSources): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]
  if (req.method !== 'GET' && req.method !== 'HEAD') return problem(res, 'not_found')
  switch (path) {
    case '/healthz':
      return send(res, 200, 'application/json; charset=utf-8', '{"status":"ok"}')
    case '/readyz': {
      const reason = await sources.readiness.notReadyBecause()
      if (reason === null) return send(res, 200, 'application/json; charset=utf-8', '{"status":"ready"}')
      return send(res, 503, 'application/json; charset=utf-8', JSON.stringify({ status: 'not_ready', reason }))
    }
    case '/metrics': {
      const { contentType, body } = await sources.metrics()
      return send(res, 200, contentType, body)
    }
    default:
      return problem(res, 'not_found')
  }
}

function problem(res: ServerResponse, code: ErrorCode): void {
  const body = problemOf(code)
  send(res, body.status, PROBLEM_CONTENT_TYPE, JSON.stringify(body))
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/** Stops listening and ends its connections: a scraper's keep-alive must not hold up an exit. */
function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  return closed
}
