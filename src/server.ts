/**
 * One long-lived server in front of successive config generations (plain HTTP, HTTPS, or
 * HTTPS with HTTP/2: src/listener.ts).
 *
 * Fastify cannot add routes once started, so each config generation is its own Fastify
 * instance built with a `serverFactory` that hands us its request handler instead of
 * listening. Every new request (and WebSocket upgrade) goes to the current generation; a
 * retired generation keeps serving what it already accepted and is closed once drained.
 */
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import { constants as h2, Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyServerFactory } from 'fastify'
import type { Logger } from 'pino'
import { problemOf, PROBLEM_CONTENT_TYPE } from './errors.js'
import { continueOnFirstRead } from './expect-continue.js'
import { createListener, type Listener, type ListenerTls, type Listening, type ServerLimits } from './listener.js'
import { OpenList, type OpenEntry } from './open-list.js'
import { requestHeadProblem } from './request-head.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface Generation {
  readonly id: number
  readonly app: FastifyInstance
  /** Requests and WebSockets it has taken in all. */
  served: number
  retired: boolean
}

/** A request's response or an upgraded socket: what a generation is still serving. */
type Open = { on(event: 'close', fn: () => void): unknown; destroy(): unknown }

/**
 * After the drain timeout, open WebSockets get a close frame and this long to answer it
 * before their sockets are destroyed.
 */
const CLOSE_FRAME_GRACE = 1000

/** While a shutdown waits for request heads still arriving: how often it counts connections. */
const HEAD_POLL = 25

export type { ServerLimits } from './listener.js'

interface Slot extends Generation {
  handler: Handler
  /** The never-listening server the generation's plugins attach to (WebSocket upgrades). */
  shadow: Server
  /** What it still serves: open requests plus open WebSockets. */
  open: OpenList<Open>
  onDrained: (() => void) | null
  /** While waiting for the drain (not yet closing): ends that wait early. */
  cutShort: (() => void) | null
  /** Set by retire: resolves once the generation is closed. */
  closed: Promise<void> | null
}

export class GenerationServer {
  readonly server: Listening
  readonly #listener: Listener
  #current: Slot | null = null
  /** Retired generations still draining. */
  #retiring = new Set<Slot>()
  #draining = false
  #nextId = 1
  #log: Logger

  /** `tls`: HTTPS (and HTTP/2 unless turned off) instead of plain HTTP. */
  constructor(limits: ServerLimits, log: Logger, tls: ListenerTls | null = null) {
    this.#log = log
    this.#listener = createListener(limits, tls, (req, res) => this.#dispatch(req, res))
    this.server = this.#listener.server
    // The HTTP/1 events, which every kind of listener emits for its HTTP/1.x connections.
    const http1 = this.server as Server
    http1.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head))
    // Without this listener Node answers 100 Continue before authentication and the body limit
    // (an HTTP/2 server emits it for h2 streams too, with the same methods on its request).
    http1.on('checkContinue', (req, res) => {
      continueOnFirstRead(req, res)
      this.#dispatch(req, res)
    })
    http1.on('clientError', (err, socket) => clientError(err as NodeJS.ErrnoException, socket))
  }

  /** Ends idle connections (an HTTP/2 one: no new requests, and it ends once its open ones do). */
  closeIdleConnections(): void {
    this.#listener.closeIdle()
  }

  /** Ends every connection at once. */
  closeAllConnections(): void {
    this.#listener.closeAll()
  }

  get current(): Generation | null {
    return this.#current
  }

  /**
   * Builds a generation with a factory that receives a `serverFactory`; the returned Fastify
   * instance must be ready. It becomes current only once `activate` is called.
   */
  async prepare(build: (serverFactory: FastifyServerFactory) => Promise<FastifyInstance>): Promise<Generation> {
    let handler: Handler | null = null
    const shadow = createServer()
    const app = await build(((h: Handler) => {
      handler = h
      return shadow
    }) as unknown as FastifyServerFactory)
    if (!handler) throw new Error('the generation did not hand over a request handler')
    const slot: Slot = {
      id: this.#nextId++,
      app,
      served: 0,
      retired: false,
      handler,
      shadow,
      open: new OpenList(),
      onDrained: null,
      cutShort: null,
      closed: null,
    }
    return slot
  }

  /** Makes `generation` current; the previous one drains and closes. Returns when it has closed. */
  async activate(generation: Generation, drainTimeout: number): Promise<void> {
    const previous = this.#current
    this.#current = generation as Slot
    if (previous) await this.retire(previous, drainTimeout)
  }

  /**
   * Waits for a generation's requests and WebSockets to finish, for at most `drainTimeout`;
   * then closes whatever is still open (WebSockets get a close frame first) and closes the
   * generation's Fastify instance, which releases its upstream connection pools. The shared
   * http.Server, store and revocation sync are not the generation's: closing it leaves them be
   * (its Fastify instance never listened, so `app.close()` does not touch a server).
   */
  retire(generation: Generation, drainTimeout: number): Promise<void> {
    const slot = generation as Slot
    if (slot.closed !== null) return slot.closed
    slot.retired = true
    this.#retiring.add(slot)
    slot.closed = this.#drainAndClose(slot, drainTimeout).finally(() => this.#retiring.delete(slot))
    return slot.closed
  }

  /**
   * Shutdown: from now on every response asks its client to close the connection, and the
   * current generation plus any still draining from reloads are retired, all within `timeout`.
   */
  async drainAll(timeout: number): Promise<void> {
    this.#draining = true
    // HTTP/2 has no Connection: close; GOAWAY says the same (open requests still finish).
    if (this.#listener.http2) this.#listener.closeIdle()
    const current = this.#current
    if (current) void this.retire(current, timeout)
    // Generations retired by earlier reloads may have longer left to wait: cut them short.
    const deadline = setTimeout(() => {
      for (const slot of this.#retiring) slot.cutShort?.()
    }, timeout)
    await Promise.all([...this.#retiring].map((slot) => slot.closed))
    clearTimeout(deadline)
  }

  async #drainAndClose(slot: Slot, drainTimeout: number): Promise<void> {
    const started = Date.now()
    if (slot.open.size > 0) await this.#drained(slot, drainTimeout, true)
    if (this.#draining && slot === this.#current) await this.#headsArrived(slot, started + drainTimeout)
    const cut = slot.open.size
    if (cut > 0) {
      this.#log.warn({ generation: slot.id, open: cut, drainTimeout }, 'drain timeout: closing what this generation still serves')
      // The proxy plugin closes its WebSockets (close frame) when its server is closed.
      slot.shadow.close()
    }
    // Closing the app destroys its upstream pools: a request still waiting on one ends with
    // 502 rather than a reset connection. Until the drain is over, no pool is touched.
    const closing = slot.app.close().catch((err: unknown) => this.#log.warn({ err, generation: slot.id }, 'closing a generation failed'))
    if (slot.open.size > 0) {
      await this.#drained(slot, Math.min(CLOSE_FRAME_GRACE, drainTimeout))
      for (const open of slot.open.streams()) open.destroy()
    }
    await closing
    this.#log.info({ generation: slot.id, served: slot.served, ms: Date.now() - started, cut }, 'generation drained and closed')
  }

  /**
   * Shutdown: a connection whose request head is still arriving carries a request in flight
   * too. Until `deadline`, the generation stays open to answer it (`Connection: close`, and 503
   * from /readyz) rather than have it reset once the requests already dispatched are done.
   * Node exposes no parser state, so such connections are counted: every connection left once
   * idle ones are closed, beyond one per request or WebSocket still being served.
   */
  async #headsArrived(slot: Slot, deadline: number): Promise<void> {
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) return
      if (slot.open.size > 0) {
        await this.#drained(slot, left, true)
        continue
      }
      this.#listener.closeIdle()
      const connections = await new Promise<number>((resolve) => this.server.getConnections((_err, count) => resolve(count ?? 0)))
      let serving = 0
      for (const retiring of this.#retiring) serving += retiring.open.size
      if (connections <= serving) return
      await new Promise((resolve) => setTimeout(resolve, Math.min(HEAD_POLL, left)))
    }
  }

  #drained(slot: Slot, timeout: number, cuttable = false): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        slot.onDrained = slot.cutShort = null
        resolve()
      }
      const timer = setTimeout(done, timeout)
      timer.unref()
      slot.onDrained = done
      if (cuttable) slot.cutShort = done
    })
  }

  #dispatch(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    // HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2); its GOAWAY does their job.
    const http1 = !(req instanceof Http2ServerRequest)
    const problem = requestHeadProblem(req)
    if (problem !== null) {
      const body = JSON.stringify(problemOf('invalid_request', problem))
      res.writeHead(400, { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), ...(http1 && { connection: 'close' }) })
      res.end(body)
      return
    }
    const slot = this.#current
    if (!slot) {
      res.writeHead(503, { 'content-type': PROBLEM_CONTENT_TYPE, ...(http1 && { connection: 'close' }) })
      res.end(JSON.stringify(problemOf('service_unavailable')))
      return
    }
    // Shutting down: the client should take its next request to another instance.
    if (this.#draining && http1) res.setHeader('connection', 'close')
    // (The stream's own 'finish': Http2ServerResponse emits its 'finish' only once the stream has closed.)
    if (!http1) (res as Http2ServerResponse).stream.once('finish', () => stopUnreadBody(req as Http2ServerRequest))
    this.#track(slot, res)
    // Fastify serves both kinds alike (it looks at httpVersionMajor where they differ).
    slot.handler(req as IncomingMessage, res as ServerResponse)
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const problem = requestHeadProblem(req)
    if (problem !== null) return writeRawProblem(socket, 400, 'invalid_request', problem)
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      // Any other upgrade offer (h2c, which some HTTP clients send by default) may be declined
      // by answering in HTTP/1.1 (RFC 9110 §7.8): serve it as the plain request it also is.
      if (head.length > 0) socket.unshift(head)
      const res = new ServerResponse(req)
      res.shouldKeepAlive = false
      res.assignSocket(socket as Socket)
      res.once('finish', () => socket.end())
      this.#dispatch(req, res)
      return
    }
    const slot = this.#current
    if (!slot || slot.shadow.listenerCount('upgrade') === 0) {
      // No route takes WebSockets in this generation.
      writeRawProblem(socket, 404, 'not_found')
      return
    }
    this.#track(slot, socket)
    slot.shadow.emit('upgrade', req, socket, head)
  }

  #track(slot: Slot, stream: Open): void {
    slot.served++
    const tracked = stream as Tracked
    tracked[kSlot] = slot
    tracked[kEntry] = slot.open.add(stream)
    // One shared listener, not a closure per request ('close' comes once, so `on` will do).
    stream.on('close', untrack)
  }
}

const kSlot = Symbol('portcullis.slot')
const kEntry = Symbol('portcullis.openEntry')
type Tracked = Open & { [kSlot]: Slot; [kEntry]: OpenEntry<Open> }

function untrack(this: Tracked): void {
  const slot = this[kSlot]
  slot.open.remove(this[kEntry])
  if (slot.retired && slot.open.size === 0 && slot.onDrained) slot.onDrained()
}

/**
 * An HTTP/2 answer sent before the request body was all read (a 413, an upstream that answered
 * early): RST_STREAM with NO_ERROR asks the client to stop sending (RFC 9113 §8.1). Node does so
 * by itself only for a body nobody began to read; otherwise the stream stays open, holding one
 * of the connection's concurrent streams, while the client waits on a window never reopened.
 */
function stopUnreadBody(req: Http2ServerRequest): void {
  if (req.complete || req.readableFlowing === null) return
  req.stream.close(h2.NGHTTP2_NO_ERROR)
  // What already arrived is dropped: a paused stream with data left in it would never close.
  req.resume()
}

const REASON: Record<number, string> = { 404: 'Not Found', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

function writeRawProblem(
  socket: Duplex,
  status: number,
  code: 'not_found' | 'invalid_request' | 'request_header_too_large' | 'request_timeout',
  detail?: string,
): void {
  if (!socket.writable) return void socket.destroy()
  const body = JSON.stringify(problemOf(code, detail))
  socket.end(
    `HTTP/1.1 ${status} ${REASON[status] ?? 'Bad Request'}\r\n` +
      `content-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/** Malformed HTTP never reaches Fastify: answer it here, as JSON like every other error. */
export function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy()
  // A response already under way (a slow upload whose upstream answered early): writing a
  // second status line would corrupt it; closing is all that is left.
  if ((socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) return void socket.destroy()
  if (err.code === 'HPE_HEADER_OVERFLOW') return writeRawProblem(socket, 431, 'request_header_too_large')
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return writeRawProblem(socket, 408, 'request_timeout')
  writeRawProblem(socket, 400, 'invalid_request')
}
