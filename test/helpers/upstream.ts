/**
 * A real HTTP upstream on 127.0.0.1 that records what the gateway sent it.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

export interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: string
}

export interface Upstream {
  url: string
  port: number
  /** Every request received, oldest first. */
  seen: Seen[]
  last(): Seen
  /** Replace the default answer (200 JSON echo). */
  handle(fn: ((req: IncomingMessage, res: ServerResponse, body: string) => void) | null): void
  /** Connections currently open to it. */
  close(): Promise<void>
}

export async function startUpstream(t: { teardown(fn: () => unknown): void }, opts: { websocket?: boolean } = {}): Promise<Upstream> {
  const seen: Seen[] = []
  let custom: ((req: IncomingMessage, res: ServerResponse, body: string) => void) | null = null
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body })
      if (custom) return custom(req, res, body)
      const json = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(json)
    })
  })
  if (opts.websocket) {
    const wss = new WebSocketServer({ server })
    wss.on('connection', (socket, req) => {
      seen.push({ method: 'WS', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '' })
      socket.on('message', (data) => socket.send(`echo:${data.toString()}`))
    })
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    last: () => {
      const s = seen.at(-1)
      if (!s) throw new Error('the upstream has received nothing')
      return s
    },
    handle: (fn) => {
      custom = fn
    },
    close,
  }
}
