/**
 * For the tests of open WebSockets closing with their session: an echo upstream that records
 * how each of its sockets was closed, a client socket that records when and how it was closed,
 * and static users with cheap password hashes.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hash, type Algorithm } from '@node-rs/argon2'
import WebSocket, { WebSocketServer } from 'ws'

export interface Closed {
  code: number
  reason: string
  /** performance.now() when the close event came. */
  at: number
}

export interface EchoUpstream {
  url: string
  /** How each upstream socket was closed, by the x-session-id the gateway sent with it. */
  closes: Map<string, Closed[]>
  /** Resolves with the close of an upstream socket of this session (the first one not yet taken). */
  closeOf(sessionId: string): Promise<Closed>
}

export async function startEchoUpstream(t: { teardown(fn: () => unknown): void }): Promise<EchoUpstream> {
  const server = createServer((_req, res) => res.end('{}'))
  const wss = new WebSocketServer({ server })
  const closes = new Map<string, Closed[]>()
  const waiting = new Map<string, Array<(c: Closed) => void>>()
  wss.on('connection', (socket, req) => {
    const sid = String(req.headers['x-session-id'] ?? '')
    socket.on('message', (data) => socket.send(`echo:${data.toString()}`))
    socket.on('close', (code, reason) => {
      const closed = { code, reason: reason.toString(), at: performance.now() }
      const next = waiting.get(sid)?.shift()
      if (next) next(closed)
      else closes.set(sid, [...(closes.get(sid) ?? []), closed])
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    closes,
    closeOf(sid) {
      const kept = closes.get(sid)?.shift()
      if (kept) return Promise.resolve(kept)
      return new Promise((resolve) => waiting.set(sid, [...(waiting.get(sid) ?? []), resolve]))
    },
  }
}

export interface ClientSocket {
  ws: WebSocket
  /** Resolves when the gateway closes it. */
  closed: Promise<Closed>
  /** Sends `text` and resolves with the answer relayed back. */
  echo(text: string): Promise<string>
  readonly open: boolean
}

/** Opens a WebSocket through the gateway with a bearer token (or these headers); rejects when refused. */
export function openSocket(gatewayUrl: string, path: string, credentials: string | Record<string, string>): Promise<ClientSocket> {
  const headers = typeof credentials === 'string' ? { authorization: `Bearer ${credentials}` } : credentials
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(gatewayUrl.replace(/^http/, 'ws') + path, { headers })
    const closed = new Promise<Closed>((done) => ws.once('close', (code, reason) => done({ code, reason: reason.toString(), at: performance.now() })))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once('error', reject)
    ws.once('open', () =>
      resolve({
        ws,
        closed,
        echo: (text) =>
          new Promise((answer, fail) => {
            ws.once('message', (data) => answer(data.toString()))
            ws.send(text, (err) => err && fail(err))
          }),
        get open() {
          return ws.readyState === WebSocket.OPEN
        },
      }),
    )
  })
}

/** How the socket was closed, or null if it was not within `ms` (a bound, not a pause). */
export function closedWithin(socket: ClientSocket, ms: number): Promise<Closed | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(resolve, ms, null)
  })
  return Promise.race([socket.closed, late]).finally(() => clearTimeout(timer))
}

/** alice, bob and root (an admin), each with the password `<name>-pw`. */
export async function staticUsers(): Promise<string> {
  // Tiny argon2 parameters: these tests are about sockets, not password hashing.
  const cheap = (user: string) => hash(`${user}-pw`, { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm })
  const [alice, bob, root] = await Promise.all(['alice', 'bob', 'root'].map(cheap))
  return `
    - type: static
      users:
        - { username: alice, passwordHash: "${alice}", subject: u-alice, roles: [user] }
        - { username: bob, passwordHash: "${bob}", subject: u-bob, roles: [user] }
        - { username: root, passwordHash: "${root}", subject: u-root, roles: [user, admin] }`
}
