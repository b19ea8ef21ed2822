/**
 * OpenTelemetry spans for requests (src/ops/tracing/otel.ts builds the SDK from the
 * environment): a server span per request, a client span for its upstream call, and a span per
 * store call made while a request's handler runs (login, refresh, logout, sessions).
 *
 * No global context manager and no instrumentation patching http or undici: the request carries
 * its own spans, and the store finds the current request's span through an AsyncLocalStorage
 * entered only around handlers.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api'
import type { TracerProvider } from '@opentelemetry/sdk-trace'
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SessionStore } from '../../sessions/types.js'
import type { RequestTrace, Traces } from './request-trace.js'
import { formatTraceparent, parseTraceparent, randomSpanId } from './traceparent.js'
import { traceStore } from './store-spans.js'

/** The configured route's name (routes[].name, or the endpoint's for the gateway's own). */
export const ATTR_PORTCULLIS_ROUTE = 'portcullis.route'
export const ATTR_PORTCULLIS_REQUEST_ID = 'portcullis.request_id'

/** nginx's status for a client that left before the answer began (as the access log has it). */
const CLIENT_CLOSED_REQUEST = 499

export class Tracing implements Traces {
  readonly #tracer: Tracer
  readonly #provider: TracerProvider
  /** The server span of the request whose handler is running. */
  readonly #handling = new AsyncLocalStorage<Span>()

  constructor(provider: TracerProvider, tracer: Tracer) {
    this.#provider = provider
    this.#tracer = tracer
  }

  readonly begin = (request: FastifyRequest, reply: FastifyReply): RequestTrace => new TracedRequest(this.#tracer, request, reply)

  attach(app: FastifyInstance): void {
    // preHandler, not onRequest: a handler with a body runs from the body stream's events,
    // which would not carry a store entered before the body was read.
    app.addHook('preHandler', (request, _reply, done) => {
      const traced = request.trace
      if (traced instanceof TracedRequest) this.#handling.run(traced.span, done)
      else done()
    })
  }

  store(store: SessionStore): SessionStore {
    return traceStore(store, this.#tracer, () => this.#handling.getStore())
  }

  /** Sends what is buffered and stops (spans ended afterwards are dropped), waiting at most `timeout` ms. */
  shutdown(timeout = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout)
    })
    return Promise.race([this.#provider.shutdown().catch(() => {}), waited]).finally(() => clearTimeout(timer))
  }
}

class TracedRequest implements RequestTrace {
  readonly span: Span
  readonly traceId: string
  readonly tracestate: string | undefined
  readonly #tracer: Tracer
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  #client: Span | null = null
  /** performance.now() when the upstream's response headers arrived. */
  #answeredAt = 0

  constructor(tracer: Tracer, request: FastifyRequest, reply: FastifyReply) {
    this.#tracer = tracer
    this.#request = request
    this.#reply = reply
    const headers = request.headers
    const parent = parseTraceparent(headers['traceparent'] as string | undefined)
    this.tracestate = parent === null ? undefined : (headers['tracestate'] as string | undefined)
    const context =
      parent === null
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.parentId,
            traceFlags: parent.sampled ? 1 : 0,
            isRemote: true,
            ...(this.tracestate === undefined ? {} : { traceState: createTraceState(this.tracestate) }),
          })
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: request.method,
      [ATTR_URL_PATH]: pathOf(request.url),
      [ATTR_URL_SCHEME]: request.protocol,
      [ATTR_PORTCULLIS_REQUEST_ID]: request.id,
    }
    if (request.ip !== undefined) attributes[ATTR_CLIENT_ADDRESS] = request.ip
    const agent = headers['user-agent']
    if (agent !== undefined) attributes[ATTR_USER_AGENT_ORIGINAL] = agent
    this.span = tracer.startSpan(request.method, { kind: SpanKind.SERVER, attributes }, context)
    this.traceId = this.span.spanContext().traceId
    // A span sampled out records nothing: nothing to finish either.
    if (this.span.isRecording()) reply.raw.once('close', this.#ended)
  }

  upstream(host: string): string {
    const server = this.span.spanContext()
    const sampled = (server.traceFlags & 1) === 1
    // Sampled out: no client span to name, but still a new parent id for the upstream.
    if (!this.span.isRecording()) return formatTraceparent(this.traceId, randomSpanId(), sampled)
    const attributes = serverAttributes(host)
    attributes[ATTR_HTTP_REQUEST_METHOD] = this.#request.method
    const client = this.#tracer.startSpan(this.#request.method, { kind: SpanKind.CLIENT, attributes }, trace.setSpan(ROOT_CONTEXT, this.span))
    this.#client = client
    return formatTraceparent(this.traceId, client.spanContext().spanId, sampled)
  }

  upstreamSettled(failure: 'timeout' | 'unavailable' | null): void {
    const client = this.#client
    if (client === null) return
    if (failure === null) {
      // Ended with the request, once the status the upstream gave is known (the gateway passes
      // it on): it lasts, like the upstream latency metric, until its response headers.
      this.#answeredAt = performance.now()
      return
    }
    client.setAttribute(ATTR_ERROR_TYPE, failure)
    client.setStatus({ code: SpanStatusCode.ERROR, message: failure === 'timeout' ? 'upstream timed out' : 'upstream unavailable' })
    client.end()
    this.#client = null
  }

  readonly #ended = (): void => {
    const request = this.#request
    const res = this.#reply.raw
    const finished = res.writableFinished
    const status = finished || res.headersSent ? res.statusCode : CLIENT_CLOSED_REQUEST
    const span = this.span
    const route = request.routeOptions.url
    if (route !== undefined) {
      span.setAttribute(ATTR_HTTP_ROUTE, route)
      span.updateName(`${request.method} ${route}`)
    }
    if (request.routeName !== '') span.setAttribute(ATTR_PORTCULLIS_ROUTE, request.routeName)
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
    // A 4xx is the client's doing; a server span is in error for a 5xx or an answer cut short.
    if (status >= 500 || !finished) {
      span.setAttribute(ATTR_ERROR_TYPE, finished ? String(status) : 'cut_short')
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    const client = this.#client
    if (client !== null) {
      if (this.#answeredAt !== 0) client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode)
      client.end(this.#answeredAt === 0 ? undefined : this.#answeredAt)
    }
    span.end()
  }
}

/** server.address and server.port of an upstream's `host[:port]` (an IPv6 address without its brackets). */
function serverAttributes(host: string): Attributes {
  const close = host.lastIndexOf(']')
  const colon = host.lastIndexOf(':')
  const hasPort = colon > close && colon > 0
  const name = hasPort ? host.slice(0, colon) : host
  const address = name.startsWith('[') ? name.slice(1, -1) : name
  return hasPort ? { [ATTR_SERVER_ADDRESS]: address, [ATTR_SERVER_PORT]: Number(host.slice(colon + 1)) } : { [ATTR_SERVER_ADDRESS]: address }
}

function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
