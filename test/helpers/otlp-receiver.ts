/**
 * A real OTLP/HTTP trace receiver on 127.0.0.1:0, as a collector's otlp receiver is on 4318:
 * POST /v1/traces with an ExportTraceServiceRequest in OTLP/JSON (gzip accepted), answered 200.
 * It decodes what arrives into flat spans, following the OTLP JSON encoding rules (ids in hex,
 * enums as numbers, 64-bit integers as strings or numbers), not the SDK's own code.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

/** An AnyValue flattened: strings, numbers, booleans and arrays of them. */
type Value = string | number | boolean | Value[] | null

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number
  startNs: bigint
  endNs: bigint
  attributes: Record<string, Value>
  /** Status code: 0 unset, 1 ok, 2 error. */
  status: number
  resource: Record<string, Value>
  scope: string
}

export const SERVER = 2
export const CLIENT = 3
export const INTERNAL = 1

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string
  spans: ReceivedSpan[]
  /** Every POST's path and content type, in arrival order. */
  posts: { path: string; contentType: string | undefined }[]
  /** Resolves with the spans once `test` holds for them (fails after `ms`). */
  until(test: (spans: ReceivedSpan[]) => boolean, ms?: number): Promise<ReceivedSpan[]>
  close(): Promise<void>
}

interface JsonKeyValue {
  key: string
  value: JsonAnyValue
}
interface JsonAnyValue {
  stringValue?: string
  boolValue?: boolean
  intValue?: string | number
  doubleValue?: number
  arrayValue?: { values?: JsonAnyValue[] }
}

function plainValue(v: JsonAnyValue): Value {
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(plainValue)
  return null
}

const attributesOf = (list: JsonKeyValue[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, plainValue(a.value)]))

export async function startOtlpReceiver(t: { teardown(fn: () => unknown): void }): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const posts: OtlpReceiver['posts'] = []
  const waiters = new Set<() => void>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      posts.push({ path: req.url ?? '', contentType: req.headers['content-type'] })
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !req.headers['content-type']?.startsWith('application/json')) {
        res.writeHead(415).end()
        return
      }
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      const request = JSON.parse(body.toString('utf8')) as {
        resourceSpans?: {
          resource?: { attributes?: JsonKeyValue[] }
          scopeSpans?: {
            scope?: { name?: string }
            spans?: {
              traceId: string
              spanId: string
              parentSpanId?: string
              name: string
              kind: number
              startTimeUnixNano: string | number
              endTimeUnixNano: string | number
              attributes?: JsonKeyValue[]
              status?: { code?: number }
            }[]
          }[]
        }[]
      }
      for (const rs of request.resourceSpans ?? []) {
        const resource = attributesOf(rs.resource?.attributes)
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              startNs: BigInt(s.startTimeUnixNano),
              endNs: BigInt(s.endTimeUnixNano),
              attributes: attributesOf(s.attributes),
              status: s.status?.code ?? 0,
              resource,
              scope: ss.scope?.name ?? '',
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      for (const wake of waiters) wake()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    posts,
    until(test, ms = 5000) {
      if (test(spans)) return Promise.resolve(spans)
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (!test(spans)) return
          waiters.delete(wake)
          clearTimeout(timer)
          resolve(spans)
        }
        const timer = setTimeout(() => {
          waiters.delete(wake)
          reject(new Error(`the receiver did not get the expected spans in ${ms} ms (has ${spans.length})`))
        }, ms)
        waiters.add(wake)
      })
    },
    close,
  }
}
