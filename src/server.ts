/**
 * One long-lived http.Server in front of successive config generations.
 *
 * Fastify cannot add routes once started, so each config generation is its own Fastify
 * instance built with a `serverFactory` that hands us its request handler instead of
 * listening. Every new request (and WebSocket upgrade) goes to the current generation; a
 * retired generation keeps serving what it already accepted and is closed once drained.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyServerFactory } from 'fastify'
import type { Logger } from 'pino'
import { problemOf, PROBLEM_CONTENT_TYPE } from './errors.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface Generation {
  readonly id: number
  readonly app: FastifyInstance
  /** Open requests plus open WebSockets. */
  active: number
  retired: boolean
}

export interface ServerLimits {
  maxHeaderSize: number
  requestTimeout: number
  headersTimeout: number
  keepAliveTimeout: number
}

interface Slot extends Generation {
  handler: Handler
  /** The never-listening server the generation's plugins attach to (WebSocket upgrades). */
  shadow: Server
  onDrained: (() => void) | null
}

export class GenerationServer {
  readonly server: Server
  #current: Slot | null = null
  #nextId = 1
  #log: Logger

  constructor(limits: ServerLimits, log: Logger) {
    this.#log = log
    this.server = createServer(
      {
        maxHeaderSize: limits.maxHeaderSize,
        requestTimeout: limits.requestTimeout,
        headersTimeout: limits.headersTimeout,
        keepAliveTimeout: limits.keepAliveTimeout,
      },
      (req, res) => this.#dispatch(req, res),
    )
    this.server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head))
    this.server.on('clientError', (err, socket) => clientError(err as NodeJS.ErrnoException, socket))
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
    const slot: Slot = { id: this.#nextId++, app, active: 0, retired: false, handler, shadow, onDrained: null }
    return slot
  }

  /** Makes `generation` current; the previous one drains and closes. Returns when it has closed. */
  async activate(generation: Generation, drainTimeout: number): Promise<void> {
    const previous = this.#current
    this.#current = generation as Slot
    if (previous) await this.retire(previous, drainTimeout)
  }

  /** Waits for a generation's requests and WebSockets to finish (or the timeout), then closes it. */
  async retire(generation: Generation, drainTimeout: number): Promise<void> {
    const slot = generation as Slot
    slot.retired = true
    if (slot.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeout)
        timer.unref()
        slot.onDrained = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    await slot.app.close().catch((err: unknown) => this.#log.warn({ err, generation: slot.id }, 'closing a generation failed'))
  }

  #dispatch(req: IncomingMessage, res: ServerResponse): void {
    const slot = this.#current
    if (!slot) {
      res.writeHead(503, { 'content-type': PROBLEM_CONTENT_TYPE, connection: 'close' })
      res.end(JSON.stringify(problemOf('internal_error')))
      return
    }
    this.#track(slot, res)
    slot.handler(req, res)
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const slot = this.#current
    if (!slot || slot.shadow.listenerCount('upgrade') === 0) {
      // No route takes WebSockets in this generation.
      writeRawProblem(socket, 404, 'not_found')
      return
    }
    this.#track(slot, socket)
    slot.shadow.emit('upgrade', req, socket, head)
  }

  #track(slot: Slot, stream: { once(event: 'close', fn: () => void): unknown }): void {
    slot.active++
    stream.once('close', () => {
      slot.active--
      if (slot.retired && slot.active === 0 && slot.onDrained) slot.onDrained()
    })
  }
}

function writeRawProblem(socket: Duplex, status: number, code: 'not_found' | 'invalid_request' | 'request_header_too_large'): void {
  if (!socket.writable) return void socket.destroy()
  const body = JSON.stringify(problemOf(code))
  socket.end(
    `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/** Malformed HTTP never reaches Fastify: answer it here, as JSON like every other error. */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy()
  if (err.code === 'HPE_HEADER_OVERFLOW') return writeRawProblem(socket, 431, 'request_header_too_large')
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end('HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
    return
  }
  writeRawProblem(socket, 400, 'invalid_request')
}
