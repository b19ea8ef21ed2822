/**
 * OpenTelemetry spans from a whole gateway (src/main.ts, set up from OTEL_* variables) to a
 * real OTLP/HTTP receiver on loopback: a server span per request, a client span for its
 * upstream call under it (whose id the upstream gets as its parent), store spans under login
 * and refresh, the caller's sampling decision honoured, and the last spans sent at shutdown.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { hash, type Algorithm } from '@node-rs/argon2'
import t from 'tap'
import { parseTraceparent } from '../../../src/ops/tracing/traceparent.js'
import { send } from '../../helpers/http.js'
import { CLIENT, INTERNAL, SERVER, startOtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver.js'
import { startRunning } from '../../helpers/running.js'
import { startUpstream } from '../../helpers/upstream.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const UNSAMPLED = 'a1a2a3a4a5a6a7a8a9aaabacadaeaf00'
const PARENT = '00f067aa0ba902b7'
const JSON_TOKEN = { 'content-type': 'application/json', 'x-auth-transport': 'token' }
// Tiny argon2 parameters: these tests are about spans, not password hashing.
const passwordHash = hash('ann-pw', { memoryCost: 1024, timeCost: 1, parallelism: 1, algorithm: 2 as Algorithm })

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function config(upstream: string): Promise<string> {
  return `server: { host: 127.0.0.1, port: 0, shutdownTimeout: 2s }
auth:
  keys: { algorithm: HS256, signing: [{ kid: k1, secret: "0123456789abcdef0123456789abcdef" }] }
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${await passwordHash}", subject: u-ann, roles: [user] }] }]
routes:
  - { name: api, prefix: /api, upstream: "${upstream}" }
  - { name: down, prefix: /down, upstream: "http://127.0.0.1:${await closedPort()}", auth: none }
`
}

const byName = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name)
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) =>
  spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId)

t.test('spans reach a real OTLP receiver: server, client and store spans, related as they happened', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const upstream = await startUpstream(t)
  // Batches wait a minute: only the flush at shutdown can deliver these spans.
  const running = await startRunning(t, await config(upstream.url), {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_SERVICE_NAME: 'edge-gw' },
  })
  const url = running.gw.url

  const login = await send(url, '/auth/login', { method: 'POST', headers: JSON_TOKEN, body: JSON.stringify({ username: 'ann', password: 'ann-pw' }) })
  t.equal(login.status, 200)
  const refreshed = await send(url, '/auth/refresh', {
    method: 'POST',
    headers: JSON_TOKEN,
    body: JSON.stringify({ refreshToken: login.json()['refreshToken'] }),
  })
  t.equal(refreshed.status, 200)
  const bearer = { authorization: `Bearer ${String(refreshed.json()['accessToken'])}` }

  t.equal((await send(url, '/api/continued', { headers: { ...bearer, traceparent: `00-${TRACE}-${PARENT}-01` } })).status, 200)
  const continued = parseTraceparent(upstream.last().headers['traceparent'] as string)!
  t.equal((await send(url, '/api/fresh', { headers: bearer })).status, 200)
  const fresh = parseTraceparent(upstream.last().headers['traceparent'] as string)!
  t.equal((await send(url, '/api/unsampled', { headers: { ...bearer, traceparent: `00-${UNSAMPLED}-${PARENT}-00` } })).status, 200)
  const unsampled = parseTraceparent(upstream.last().headers['traceparent'] as string)!
  t.equal((await send(url, '/down/x')).status, 502)
  t.equal(receiver.spans.length, 0, 'nothing sent before the batch is due')

  await running.gw.close()
  const spans = await receiver.until((s) => s.length >= 9)
  t.ok(
    receiver.posts.every((p) => p.path === '/v1/traces' && p.contentType === 'application/json'),
    'OTLP/HTTP JSON to /v1/traces',
  )
  t.equal(spans[0]!.resource['service.name'], 'edge-gw', 'OTEL_SERVICE_NAME names the service')
  t.type(spans[0]!.resource['service.version'], 'string')
  t.equal(spans[0]!.scope, 'portcullis')

  t.test('a continued request: server span under the caller, client span under it, its id sent upstream', async (t) => {
    const [server] = spans.filter((s) => s.traceId === TRACE && s.kind === SERVER)
    t.ok(server, 'a server span in the caller’s trace')
    t.equal(server!.parentSpanId, PARENT, "its parent is the caller's span")
    t.equal(server!.name, 'GET /api/*')
    t.match(server!.attributes, {
      'http.request.method': 'GET',
      'http.route': '/api/*',
      'portcullis.route': 'api',
      'url.path': '/api/continued',
      'http.response.status_code': 200,
    })
    const [client, ...others] = childrenOf(spans, server!)
    t.equal(others.length, 0, 'one child')
    t.equal(client!.kind, CLIENT)
    t.equal(client!.spanId, continued.parentId, 'the upstream got the client span as its parent')
    t.match(client!.attributes, {
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': upstream.port,
      'http.response.status_code': 200,
    })
    t.ok(client!.startNs >= server!.startNs && client!.endNs <= server!.endNs, 'the upstream call lies within the request')
  })

  t.test('a request without a traceparent is a root span, and the log and the upstream name its trace', async (t) => {
    const [server] = spans.filter((s) => s.traceId === fresh.traceId && s.kind === SERVER)
    t.ok(server)
    t.equal(server!.parentSpanId, '', 'a root span')
    t.equal(childrenOf(spans, server!)[0]?.spanId, fresh.parentId)
    t.equal(fresh.sampled, true, 'recorded here, so sampled for the upstream')
    const line = running.logs().find((l) => l['msg'] === 'request' && (l['req'] as { url: string }).url === '/api/fresh')
    t.equal(line?.['trace_id'], fresh.traceId)
  })

  t.test("a caller's unsampled trace is not recorded, and travels on unsampled", async (t) => {
    t.equal(spans.filter((s) => s.traceId === UNSAMPLED).length, 0)
    t.equal(unsampled.traceId, UNSAMPLED)
    t.equal(unsampled.sampled, false)
  })

  t.test('login and refresh have a span for each store call under them', async (t) => {
    const [loginSpan] = byName(spans, 'POST /auth/login')
    t.ok(loginSpan, 'a server span for the login')
    t.match(loginSpan!.attributes, { 'http.response.status_code': 200, 'http.route': '/auth/login' })
    const create = childrenOf(spans, loginSpan!).find((s) => s.name === 'store create')
    t.ok(create, 'the session is created under it')
    t.equal(create!.kind, INTERNAL, 'the memory store is in this process')
    t.match(create!.attributes, { 'db.system.name': 'memory', 'db.operation.name': 'create' })
    const [refreshSpan] = byName(spans, 'POST /auth/refresh')
    t.ok(refreshSpan)
    const rotate = childrenOf(spans, refreshSpan!).find((s) => s.name === 'store rotate')
    t.ok(rotate, 'the rotation is under the refresh')
    t.ok(rotate!.startNs >= refreshSpan!.startNs && rotate!.endNs <= refreshSpan!.endNs)
  })

  t.test('an upstream that cannot be reached: the client span says why, the server span is in error', async (t) => {
    const server = spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === '/down/x')
    t.ok(server)
    t.equal(server!.status, 2, 'error')
    t.match(server!.attributes, { 'http.response.status_code': 502, 'error.type': '502' })
    const [client] = childrenOf(spans, server!)
    t.equal(client!.kind, CLIENT)
    t.equal(client!.status, 2)
    t.equal(client!.attributes['error.type'], 'unavailable')
  })
})

t.test('OTEL_TRACES_SAMPLER=always_off records nothing, and the trace still travels on', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const upstream = await startUpstream(t)
  const running = await startRunning(t, await config(upstream.url), {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_TRACES_SAMPLER: 'always_off' },
  })
  t.equal((await send(running.gw.url, '/down/x', { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })).status, 502)
  const login = await send(running.gw.url, '/auth/login', {
    method: 'POST',
    headers: JSON_TOKEN,
    body: JSON.stringify({ username: 'ann', password: 'ann-pw' }),
  })
  const bearer = { authorization: `Bearer ${String(login.json()['accessToken'])}` }
  await send(running.gw.url, '/api/x', { headers: { ...bearer, traceparent: `00-${TRACE}-${PARENT}-01` } })
  const sent = parseTraceparent(upstream.last().headers['traceparent'] as string)!
  t.equal(sent.traceId, TRACE)
  t.not(sent.parentId, PARENT)
  t.equal(sent.sampled, false, 'this gateway decided not to record: it says so')
  await running.gw.close()
  t.equal(receiver.spans.length, 0)
})

t.test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is, and batches go out on their schedule', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const upstream = await startUpstream(t)
  const running = await startRunning(t, await config(upstream.url), {
    env: {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/not-this-one',
      OTEL_BSP_SCHEDULE_DELAY: '20',
    },
  })
  t.equal((await send(running.gw.url, '/down/x')).status, 502)
  const spans = await receiver.until((s) => s.some((span) => span.kind === SERVER))
  t.equal(spans.find((s) => s.kind === SERVER)?.attributes['url.path'], '/down/x', 'sent while the gateway runs')
  t.equal(receiver.posts[0]?.path, '/v1/traces')
})

t.test('a collector that is away costs requests nothing, and the failed exports are logged', async (t) => {
  const upstream = await startUpstream(t)
  const running = await startRunning(t, await config(upstream.url), {
    // A short export timeout leaves no time for the exporter's retries (1 s apart at first).
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_EXPORTER_OTLP_TIMEOUT: '300' },
  })
  const answers = await Promise.all(Array.from({ length: 5 }, () => send(running.gw.url, '/down/x')))
  t.same(
    answers.map((a) => a.status),
    [502, 502, 502, 502, 502],
  )
  const line = await running.logged((l) => l['level'] === 40 && String(l['msg']).startsWith('tracing:'))
  t.ok(line, 'a warning names the failed export')
})
