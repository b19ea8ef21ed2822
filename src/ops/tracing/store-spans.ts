/**
 * A span for each store call a request's handler makes (login's create, refresh's rotate,
 * logout's end, the session list...), as a child of that request's server span. Calls made
 * outside a handler (revocation sync, readiness, background expiry) pass straight through:
 * they belong to no request and would only be noise.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api'
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME, ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions'
import type { SessionStore } from '../../sessions/types.js'

export function traceStore(store: SessionStore, tracer: Tracer, current: () => Span | undefined): SessionStore {
  // A Redis store is a remote call (client span); the memory store runs in this process.
  const kind = store.kind === 'redis' ? SpanKind.CLIENT : SpanKind.INTERNAL
  const system = store.kind === 'redis' ? 'redis' : 'memory'
  const spanned = <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    const parent = current()
    if (parent === undefined || !parent.isRecording()) return call()
    const span = tracer.startSpan(
      `store ${operation}`,
      { kind, attributes: { [ATTR_DB_SYSTEM_NAME]: system, [ATTR_DB_OPERATION_NAME]: operation } },
      trace.setSpan(ROOT_CONTEXT, parent),
    )
    return call().then(
      (result) => {
        span.end()
        return result
      },
      (err: unknown) => {
        span.setAttribute(ATTR_ERROR_TYPE, err instanceof Error ? err.name : 'error')
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) })
        span.end()
        throw err
      },
    )
  }
  const traced: SessionStore = {
    kind: store.kind,
    create: (session, now) => spanned('create', () => store.create(session, now)),
    rotate: (request) => spanned('rotate', () => store.rotate(request)),
    get: (sessionId, now) => spanned('get', () => store.get(sessionId, now)),
    list: (subject, now) => spanned('list', () => store.list(subject, now)),
    end: (sessionId, reason, now, subject) => spanned('end', () => store.end(sessionId, reason, now, subject)),
    endByRefresh: (sessionId, hash, now) => spanned('endByRefresh', () => store.endByRefresh(sessionId, hash, now)),
    endAll: (subject, reason, now) => spanned('endAll', () => store.endAll(subject, reason, now)),
    putNew: (key, value, ttl, now) => spanned('putNew', () => store.putNew(key, value, ttl, now)),
    take: (key, now) => spanned('take', () => store.take(key, now)),
    link: (key, member, expiresAt, now) => spanned('link', () => store.link(key, member, expiresAt, now)),
    linked: (key, now) => spanned('linked', () => store.linked(key, now)),
    revocations: (now) => store.revocations(now),
    ...(store.revocationPages ? { revocationPages: (now: number) => store.revocationPages!(now) } : {}),
    ...(store.revoke ? { revoke: (ids: string[], now: number, subject?: string) => spanned('revoke', () => store.revoke!(ids, now, subject)) } : {}),
    subscribe: (listener) => store.subscribe(listener),
    ping: () => store.ping(),
    close: () => store.close(),
  }
  return traced
}
