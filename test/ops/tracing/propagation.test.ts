/**
 * W3C trace context through a real gateway to a real upstream, with OpenTelemetry off (the
 * default): a valid traceparent is continued under a new parent id, anything else starts a new
 * trace, tracestate travels only with a valid traceparent, and the access line names the trace.
 */
import t from 'tap'
import WebSocket from 'ws'
import { parseTraceparent } from '../../../src/ops/tracing/traceparent.js'
import { startGateway, type TestGateway } from '../../helpers/gateway.js'
import { send } from '../../helpers/http.js'
import { startUpstream, type Upstream } from '../../helpers/upstream.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

async function setUp(t: { teardown(fn: () => unknown): void }): Promise<{ gw: TestGateway; upstream: Upstream }> {
  const upstream = await startUpstream(t)
  const gw = await startGateway(t, `routes:\n  - { name: public, prefix: /public, upstream: "${upstream.url}", auth: none }\n`)
  return { gw, upstream }
}
/** What the upstream got for the last request: its traceparent read back, and its tracestate. */
function sentUpstream(upstream: Upstream) {
  const headers = upstream.last().headers
  const value = headers['traceparent']
  t.equal(typeof value, 'string', 'the upstream got a traceparent')
  t.match(value, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, 'version 00, only the sampled flag')
  return { raw: value as string, parsed: parseTraceparent(value as string)!, tracestate: headers['tracestate'] }
}

function accessLine(gw: TestGateway, url: string): Record<string, unknown> {
  const line = gw.logs().find((l) => l['msg'] === 'request' && (l['req'] as { url?: string } | undefined)?.url === url)
  if (!line) throw new Error(`no access line for ${url}`)
  return line
}

t.test('a valid traceparent is continued: same trace and sampled flag, a new parent id, tracestate as sent', async (t) => {
  const { gw, upstream } = await setUp(t)
  const answer = await send(gw.url, '/public/a', { headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc,other=x' } })
  t.equal(answer.status, 200)
  const sent = sentUpstream(upstream)
  t.equal(sent.parsed.traceId, TRACE)
  t.not(sent.parsed.parentId, PARENT, "the upstream's parent is the gateway's span, not the caller's")
  t.equal(sent.parsed.sampled, true)
  t.equal(sent.tracestate, 'vendor=abc,other=x')
  t.equal(accessLine(gw, '/public/a')['trace_id'], TRACE, 'the access line names the trace')

  await send(gw.url, '/public/b', { headers: { traceparent: `00-${TRACE}-${PARENT}-00` } })
  const unsampled = sentUpstream(upstream)
  t.equal(unsampled.parsed.sampled, false, "the caller's decision not to sample travels on")
  t.equal(unsampled.tracestate, undefined, 'no tracestate sent, none passed on')
  t.not(unsampled.parsed.parentId, sent.parsed.parentId, 'each upstream call gets its own parent id')
})

t.test('a later version is continued and sent on as version 00', async (t) => {
  const { gw, upstream } = await setUp(t)
  await send(gw.url, '/public/v', { headers: { traceparent: `cc-${TRACE}-${PARENT}-01-future-field`, tracestate: 'k=v' } })
  const sent = sentUpstream(upstream)
  t.equal(sent.parsed.traceId, TRACE)
  t.ok(sent.raw.startsWith('00-'))
  t.equal(sent.tracestate, 'k=v')
})

t.test('without a traceparent a new trace starts, unsampled, and a lone tracestate is dropped', async (t) => {
  const { gw, upstream } = await setUp(t)
  await send(gw.url, '/public/1', { headers: { tracestate: 'vendor=abc' } })
  const first = sentUpstream(upstream)
  t.equal(first.parsed.sampled, false, 'nothing recorded here: not marked sampled')
  t.equal(first.tracestate, undefined, 'tracestate is dropped without a valid traceparent')
  t.equal(accessLine(gw, '/public/1')['trace_id'], first.parsed.traceId, 'the access line has the trace the upstream got')
  await send(gw.url, '/public/2')
  const second = sentUpstream(upstream)
  t.not(second.parsed.traceId, first.parsed.traceId, 'every request its own trace')
  t.equal(accessLine(gw, '/public/2')['trace_id'], second.parsed.traceId)
})

t.test('an invalid traceparent starts a new trace and its tracestate is dropped', async (t) => {
  const { gw, upstream } = await setUp(t)
  const invalid = {
    'version ff': `ff-${TRACE}-${PARENT}-01`,
    uppercase: `00-${TRACE.toUpperCase()}-${PARENT}-01`,
    'all-zero trace id': `00-${'0'.repeat(32)}-${PARENT}-01`,
    'all-zero parent id': `00-${TRACE}-${'0'.repeat(16)}-01`,
    'too long for version 00': `00-${TRACE}-${PARENT}-01-x`,
  }
  for (const [why, traceparent] of Object.entries(invalid)) {
    await send(gw.url, `/public/${encodeURIComponent(why)}`, { headers: { traceparent, tracestate: 'vendor=abc' } })
    const sent = sentUpstream(upstream)
    t.not(sent.parsed.traceId, TRACE, `${why}: a new trace`)
    t.not(sent.raw, traceparent, `${why}: not passed on as sent`)
    t.equal(sent.tracestate, undefined, `${why}: tracestate dropped`)
  }
})

t.test('two traceparent headers are one invalid value: a new trace', async (t) => {
  const { gw, upstream } = await setUp(t)
  await send(gw.url, '/public/dup', {
    headers: [
      ['traceparent', `00-${TRACE}-${PARENT}-01`],
      ['traceparent', `00-${TRACE}-${PARENT}-01`],
    ],
  })
  t.not(sentUpstream(upstream).parsed.traceId, TRACE)
})

t.test('an answer the gateway gives itself still has the trace id in its access line', async (t) => {
  const { gw } = await setUp(t)
  const answer = await send(gw.url, '/nowhere', { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })
  t.equal(answer.status, 404)
  t.equal(accessLine(gw, '/nowhere')['trace_id'], TRACE)
})

t.test('a WebSocket upgrade carries the trace upstream too', async (t) => {
  const upstream = await startUpstream(t, { websocket: true })
  const gw = await startGateway(t, `routes:\n  - { name: live, prefix: /live, upstream: "${upstream.url}", auth: none, websocket: true }\n`)
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/live/feed`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'k=v' } })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  t.teardown(() => ws.close())
  // The gateway answers the client before its own connection upstream is up: an echo proves it is.
  const echoed = new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())))
  ws.send('hi')
  t.equal(await echoed, 'echo:hi')
  const seen = upstream.seen.find((s) => s.method === 'WS')
  const sent = parseTraceparent(seen?.headers['traceparent'] as string | undefined)
  t.equal(sent?.traceId, TRACE)
  t.not(sent?.parentId, PARENT)
  t.equal(seen?.headers['tracestate'], 'k=v')
})
