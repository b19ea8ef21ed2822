/**
 * The HTTP leg of a proxied request: one undici Pool per route, driven through its
 * documented dispatch API, and plugged into @fastify/http-proxy as its `handler` (the plugin
 * keeps routing, prefix rewriting, destination checks and WebSockets).
 *
 * Why not the plugin's default, `reply.from()` (@fastify/reply-from): for each request it
 * builds a cache key with JSON.stringify, copies headers twice, wraps the response body in a
 * stream even when it is 40 bytes, and may retry a GET that got a 503 up to ten times. On
 * this machine, forwarding through a dispatch handler served 1.6–1.9× the requests/s of
 * `reply.from()` with the same undici (docs/benchmarks.md).
 *
 * A response whose Content-Length is known and small is collected and sent in one write, as
 * nginx's proxy buffering does; anything else (chunked, event streams, large downloads) is
 * streamed with backpressure: the upstream socket is paused while the client is slow.
 */
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Pool, type Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import { isBodyCut, tooLarge } from './body-limit.js'

/** Responses up to this size (declared by Content-Length) are sent in one piece. */
export const BUFFERED_RESPONSE_LIMIT = 64 * 1024
/** How much of a streamed response may wait for a slow client before the upstream is paused. */
const STREAM_BUFFER = 64 * 1024

export interface UpstreamOptions {
  /** scheme://host:port of the upstream. */
  origin: string
  connectTimeout: number
  /** No response headers, or no body bytes, for this long: 504. */
  timeout: number
}

export interface ExchangeHooks {
  /** The headers to send upstream, built from the client's. */
  requestHeaders(request: FastifyRequest, host: string): Record<string, unknown>
  /** The client-facing headers for an upstream response (hop-by-hop removed, Location rewritten…). */
  responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, unknown>
  /** Called once per request that reached the upstream: response headers arrived, or it failed. */
  settled(request: FastifyRequest, failure: 'timeout' | 'unavailable' | null): void
  /** The answer never finished: the client left, or the upstream broke off a streamed body. */
  cutShort(request: FastifyRequest, reply: FastifyReply, by: 'client' | 'upstream'): void
}

export class UpstreamPool {
  readonly #pool: Pool
  readonly #host: string
  readonly #hooks: ExchangeHooks

  constructor(options: UpstreamOptions, hooks: ExchangeHooks) {
    this.#pool = new Pool(options.origin, {
      connect: { timeout: options.connectTimeout },
      headersTimeout: options.timeout,
      bodyTimeout: options.timeout,
    })
    this.#host = new URL(options.origin).host
    this.#hooks = hooks
  }

  /** Sends the request to `path` (query included) upstream and the answer to the client. */
  forward(request: FastifyRequest, reply: FastifyReply, path: string): void {
    const headers = this.#hooks.requestHeaders(request, this.#host)
    // Every type of body is handed over as the client's byte stream (src/proxy/routes.ts); a
    // bodiless method has none.
    const body = request.body instanceof Readable ? request.body : null
    // Without a body to send, a declared length would make undici (rightly) refuse.
    if (body === null && headers['content-length'] !== undefined) delete headers['content-length']
    const exchange = new Exchange(request, reply, this.#hooks)
    reply.raw.on('close', exchange.clientClosed)
    this.#pool.dispatch({ path, method: request.method as Dispatcher.HttpMethod, headers: headers as Record<string, string>, body }, exchange)
  }

  /** Drops every connection; the generation owning it has drained (src/server.ts). */
  close(): Promise<void> {
    return this.#pool.destroy()
  }
}

const CLIENT_GONE = 'client closed the connection'

/** One request's conversation with the upstream (undici's DispatchHandler). */
class Exchange implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | null = null
  /** The body being collected for one write (set once headers arrived on the buffered path). */
  #chunks: Buffer[] | null = null
  #size = 0
  /** Writing the body to the client as it arrives (reply hijacked). */
  #streaming = false
  #status = 0
  #headers: Record<string, unknown> | null = null
  #done = false
  /** The answer was cut short, and by whom: recorded once. */
  #cut: 'client' | 'upstream' | null = null

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly hooks: ExchangeHooks,
  ) {}

  /** The client's response closed: if before it finished, stop whatever still runs upstream. */
  readonly clientClosed = (): void => {
    if (this.reply.raw.writableFinished) return
    if (!this.#done) this.#controller?.abort(new Error(CLIENT_GONE))
    this.#cutShort('client')
  }

  #cutShort(by: 'client' | 'upstream'): void {
    if (this.#cut !== null) return
    this.#cut = by
    this.hooks.cutShort(this.request, this.reply, by)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.reply.raw.destroyed) controller.abort(new Error(CLIENT_GONE))
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // HTTP statuses end at 599 (Fastify refuses more, Node would send up to 999 as they are):
    // an upstream failure like any other, answered 502 by onResponseError.
    if (statusCode > 599) return void controller.abort(new Error(`the upstream answered with an invalid status (${statusCode})`))
    this.hooks.settled(this.request, null)
    this.#status = statusCode
    this.#headers = this.hooks.responseHeaders(headers)
    const declared = headers['content-length']
    const length = typeof declared === 'string' ? Number(declared) : Number.NaN
    // A body without Content-Type is streamed: Fastify would label a Buffer octet-stream.
    const bodiless = length === 0 || this.request.method === 'HEAD' || statusCode === 204 || statusCode === 304
    if (bodiless || (length <= BUFFERED_RESPONSE_LIMIT && headers['content-type'] !== undefined)) {
      this.#chunks = []
      return
    }
    this.#stream()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks !== null) {
      this.#chunks.push(chunk)
      this.#size += chunk.length
      return
    }
    const res = this.reply.raw
    // undici hands over an empty chunk after each read; Node would send it as its own write.
    if (res.destroyed || chunk.length === 0) return
    // Up to STREAM_BUFFER may wait for a slow client (fewer, larger writes to its socket when
    // it drains); past that, the upstream is held until the client's socket drains.
    if (!res.write(chunk) && res.writableLength >= STREAM_BUFFER) {
      controller.pause()
      res.once('drain', () => controller.resume())
    }
  }

  onResponseEnd(): void {
    this.#done = true
    const chunks = this.#chunks
    if (chunks === null) {
      if (this.#streaming) this.reply.raw.end()
      return
    }
    this.#send(chunks.length === 1 ? chunks[0]! : chunks.length === 0 ? undefined : Buffer.concat(chunks, this.#size))
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#done = true
    if (this.#streaming) {
      // Headers went out already: all the client can learn is that the body was cut short.
      // A client that left, or whose upload outgrew the body limit meanwhile, is no upstream fault.
      if (error.message !== CLIENT_GONE && !isBodyCut(error)) {
        this.request.log.warn({ err: error }, 'upstream failed mid-response')
        this.#cutShort('upstream')
      }
      return void this.reply.raw.destroy()
    }
    const answer = gatewayErrorFor(error)
    // The upstream's own failures count against it; a client's (a cut body) does not.
    if (this.#headers === null && answer.code !== 'payload_too_large' && answer.code !== 'invalid_request') {
      this.hooks.settled(this.request, answer.code === 'upstream_timeout' ? 'timeout' : 'unavailable')
    }
    if (this.reply.raw.destroyed || error.message === CLIENT_GONE) return
    this.reply.send(answer)
  }

  /**
   * Sends the headers now and each body chunk as it arrives, straight to the client's socket
   * (the reply is hijacked). Handing Fastify a Readable to pipe instead cost 1.3–1.5× the bare
   * proxy's CPU per 128 KiB answer in `npm run bench`, most of it stream bookkeeping and
   * garbage; this way it measured 0.99× side by side. The access log and metrics still see the
   * request: Fastify runs onResponse hooks when the response finishes, hijacked or not. (For an
   * answer cut short by either side, hijacked or not, it runs none: `hooks.cutShort` logs it.)
   */
  #stream(): void {
    const reply = this.reply
    const res = reply.raw
    const headers = reply.getHeaders() as Record<string, string | string[]>
    // Cookies the gateway set itself (reply.header) are added to the upstream's, as
    // reply.headers() does on the buffered path. (The cookie plugin, whose setCookie() is
    // written by an onSend hook that a hijacked reply skips, serves the session endpoints only.)
    const ownCookies = headers['set-cookie']
    Object.assign(headers, this.#headers)
    const upstreamCookies = this.#headers!['set-cookie'] as string | string[] | undefined
    if (ownCookies !== undefined && upstreamCookies !== undefined) headers['set-cookie'] = [ownCookies, upstreamCookies].flat()
    if (this.#unreadBody()) headers['connection'] = 'close'
    // Should writeHead throw, undici hands the error to onResponseError: a 502, nothing sent yet.
    res.writeHead(this.#status, headers)
    reply.hijack()
    this.#streaming = true
  }

  #send(payload: Buffer | undefined): void {
    const reply = this.reply
    reply.code(this.#status)
    reply.headers(this.#headers as Record<string, string | string[]>)
    // Node would keep reading a request body the upstream did not wait for, to reuse the
    // connection; closing it is cheaper and cannot desynchronise the client.
    if (this.#unreadBody()) reply.header('connection', 'close')
    reply.send(payload)
  }

  /**
   * An HTTP/1 request whose body is still arriving. (HTTP/2 needs no such care: its streams end
   * on their own, it forbids Connection, and a body nobody reads leaves `complete` false.)
   */
  #unreadBody(): boolean {
    return !this.request.raw.complete && this.request.raw.httpVersionMajor === 1
  }
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
/** undici refusing what the client sent (a header it cannot forward, a length that lies). */
const REFUSED = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'])

function gatewayErrorFor(error: Error & { code?: string }): GatewayError {
  if (isBodyCut(error)) return tooLarge(error)
  if (REFUSED.has(error.code ?? '')) return new GatewayError('invalid_request', 'the request cannot be forwarded', { cause: error })
  if (TIMEOUTS.has(error.code ?? '')) return new GatewayError('upstream_timeout', undefined, { cause: error })
  return new GatewayError('upstream_unavailable', undefined, { cause: error })
}
