/**
 * `server.bodyLimit` for proxied requests. @fastify/http-proxy streams a body to the upstream
 * as it arrives, so Fastify's own bodyLimit (which applies to bodies it parses) never sees it.
 *
 * - A declared Content-Length above the limit is refused with 413 before the upstream is
 *   contacted.
 * - A chunked body (no Content-Length), or an HTTP/2 one without Content-Length (HTTP/2 has no
 *   chunked coding: any request may carry DATA frames), is counted as it streams; past the
 *   limit the stream is cut, the upstream request aborts, and the client gets 413 if no
 *   response has started.
 * A body with a Content-Length within the limit needs no counting: Node's parsers never
 * deliver more bytes than it declares (HTTP/2's refuses a stream whose DATA exceed it).
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'

/**
 * The client may still be sending: closing the connection after the 413 stops Node from
 * reading (and discarding) the rest of an oversized body to keep the connection alive.
 */
export const tooLarge = (cause?: unknown): GatewayError =>
  new GatewayError('payload_too_large', undefined, { cause, headers: { connection: 'close' } })

class CappedBody extends Transform {
  #left: number
  constructor(limit: number) {
    super()
    this.#left = limit
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#left -= chunk.length
    if (this.#left < 0) return callback(tooLarge())
    callback(null, chunk)
  }
}

/** A Fastify preParsing hook enforcing `limit` bytes on the streamed body. */
export function bodyLimitHook(limit: number) {
  return function limitBody(
    request: FastifyRequest,
    _reply: FastifyReply,
    payload: Readable,
    done: (err: Error | null, stream?: Readable) => void,
  ): void {
    const declared = request.headers['content-length']
    if (declared !== undefined) {
      // Node has already refused a malformed Content-Length; what is left is digits.
      return Number(declared) > limit ? done(tooLarge()) : done(null, payload)
    }
    if (request.headers['transfer-encoding'] === undefined && request.raw.httpVersionMajor !== 2) return done(null, payload)
    done(null, payload.pipe(new CappedBody(limit)))
  }
}

/** True when a failed upstream call failed because our cap cut the body. */
export function isBodyCut(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof GatewayError && e.code === 'payload_too_large') return true
  }
  return false
}
