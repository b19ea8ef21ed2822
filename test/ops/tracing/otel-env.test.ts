/**
 * How the OTEL_* environment turns tracing on and shapes it (src/ops/tracing/otel.ts): the
 * endpoint rules of the OTLP exporter spec, the samplers OTEL_TRACES_SAMPLER names, resource
 * attributes, and the ways to leave it off.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../../src/ops/logger.js'
import { resourceAttributes, samplerFrom, startTracing, tracesEndpoint } from '../../../src/ops/tracing/otel.js'

function capture() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: createLogger('info', sink), lines }
}

const warnings = () => {
  const said: string[] = []
  return { said, warn: (variable: string, value: string, problem: string) => said.push(`${variable}=${value}: ${problem}`) }
}

t.test('the traces endpoint: the signal-specific variable as it is, else the base one with /v1/traces', async (t) => {
  t.equal(tracesEndpoint({}), null)
  t.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), 'http://collector:4318/v1/traces')
  t.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), 'http://collector:4318/v1/traces')
  t.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/otlp' }), 'http://collector:4318/otlp/v1/traces')
  t.equal(
    tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom' }),
    'http://b:4318/custom',
    'not suffixed',
  )
  t.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), null, 'blank is unset')
})

t.test('OTEL_TRACES_SAMPLER: the spec names, parent-based always-on by default', async (t) => {
  const { said, warn } = warnings()
  const named = (env: Record<string, string>) => samplerFrom(env, warn).toString()
  t.match(named({}), /^ParentBased\{root=AlwaysOnSampler/)
  t.equal(named({ OTEL_TRACES_SAMPLER: 'always_on' }), 'AlwaysOnSampler')
  t.equal(named({ OTEL_TRACES_SAMPLER: 'always_off' }), 'AlwaysOffSampler')
  t.match(named({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }), /TraceIdRatioBased\{0\.25\}/)
  t.match(named({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }), /^ParentBased\{root=TraceIdRatioBased\{0\.5\}/)
  t.match(named({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }), /^ParentBased\{root=AlwaysOffSampler/)
  t.same(said, [], 'no complaint so far')
  t.match(named({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }), /TraceIdRatioBased\{1\}/)
  t.match(named({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /^ParentBased\{root=AlwaysOnSampler/)
  t.equal(said.length, 2, 'a bad ratio and an unsupported sampler are both logged')
})

t.test('resource attributes: ours, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME', async (t) => {
  const { said, warn } = warnings()
  t.match(resourceAttributes({}, warn), { 'service.name': 'portcullis', 'service.version': String })
  t.match(resourceAttributes({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=edge,deployment.environment.name=prod%20eu' }, warn), {
    'service.name': 'edge',
    'deployment.environment.name': 'prod eu',
  })
  t.equal(resourceAttributes({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=edge', OTEL_SERVICE_NAME: 'gw' }, warn)['service.name'], 'gw')
  const odd = resourceAttributes({ OTEL_RESOURCE_ATTRIBUTES: 'novalue,=x,ok=1,bad=%E0%A4%A' }, warn)
  t.equal(odd['ok'], '1')
  t.notOk('novalue' in odd || 'bad' in odd)
  t.equal(said.length, 3, 'each bad pair logged')
})

t.test('tracing stays off without an endpoint, when disabled, with exporter none, or with an endpoint that is no URL', async (t) => {
  const { logger, lines } = capture()
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }
  t.equal(startTracing({}, logger), undefined)
  t.equal(startTracing({ ...endpoint, OTEL_SDK_DISABLED: 'true' }, logger), undefined)
  t.equal(startTracing({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, logger), undefined)
  t.equal(lines.length, 0, 'silently')
  t.equal(startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318 oops' }, logger), undefined)
  t.match(lines.at(-1), { level: 40, variable: 'OTEL_EXPORTER_OTLP_ENDPOINT' })
  const on = startTracing({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, logger)
  t.ok(on, 'an endpoint turns it on')
  t.match(lines.at(-2), { level: 40, msg: /only http\/json/ }, 'another protocol is named as not supported')
  t.match(lines.at(-1), { level: 30, endpoint: 'http://127.0.0.1:4318/v1/traces' })
  await on!.shutdown()
})
