/**
 * The OpenTelemetry SDK, set up from the standard environment variables (docs/operations.md,
 * "Tracing"). Tracing is on when an OTLP endpoint is named; spans go out in batches as OTLP/HTTP
 * with JSON bodies, which every OpenTelemetry Collector (and Jaeger, Tempo...) takes on 4318.
 *
 * Only what tracing needs is loaded: a tracer provider, a batch processor and the OTLP exporter.
 * No auto-instrumentation, no global registration: the spans are made in src/ops/tracing/spans.ts.
 */
import { diag, DiagLogLevel } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace'
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import type { Logger } from 'pino'
import { packageInfo } from '../../version.js'
import { Tracing } from './spans.js'
import { randomSpanId, randomTraceId } from './traceparent.js'

type Env = Record<string, string | undefined>

/**
 * The tracing set up by the environment, or undefined when it is off: no endpoint, or
 * OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none. Problems with a variable are logged and
 * its default used, as the SDKs do; an endpoint that is not a URL turns tracing off.
 */
export function startTracing(env: Env, logger: Logger): Tracing | undefined {
  const warn = (variable: string, value: string, problem: string) => logger.warn({ variable, value }, `tracing: ${problem}`)
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return undefined
  const exporters = env['OTEL_TRACES_EXPORTER']?.trim().toLowerCase()
  if (exporters === 'none') return undefined
  const url = tracesEndpoint(env)
  if (url === null) return undefined
  const protocol = URL.canParse(url) ? new URL(url).protocol : ''
  if (protocol !== 'http:' && protocol !== 'https:') {
    const variable = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'
    warn(variable, url, 'the OTLP endpoint is not an http:// or https:// URL: tracing stays off')
    return undefined
  }
  if (exporters !== undefined && exporters !== '' && exporters !== 'otlp')
    warn('OTEL_TRACES_EXPORTER', exporters, 'only otlp is supported: sending OTLP')
  const encoding = (env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'])?.trim()
  if (encoding && encoding !== 'http/json')
    warn('OTEL_EXPORTER_OTLP_PROTOCOL', encoding, 'only http/json is supported: sending OTLP/HTTP with JSON bodies')
  // The SDK's own failures (an export the collector refused or never answered) go to our log.
  diag.setLogger(
    {
      error: (message, ...args) => logger.warn({ args }, `tracing: ${message}`),
      warn: (message, ...args) => logger.warn({ args }, `tracing: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  )
  // Headers, compression and TLS files: the exporter reads their OTEL_EXPORTER_OTLP_* itself.
  const timeoutMillis = positiveWhole(env, ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'], warn)
  const exporter = new OTLPTraceExporter(timeoutMillis === undefined ? { url } : { url, timeoutMillis })
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes(resourceAttributes(env, warn))),
    sampler: samplerFrom(env, warn),
    // Ids from the same random pool as untraced requests: faster than the SDK's own (measured
    // in src/ops/tracing/traceparent.ts) and from the CSPRNG rather than Math.random.
    idGenerator: { generateTraceId: randomTraceId, generateSpanId: randomSpanId },
    spanProcessors: [new BatchSpanProcessor({ exporter, ...batchOptions(env, warn) })],
  })
  const { version } = packageInfo()
  logger.info({ endpoint: url }, 'tracing: exporting spans over OTLP/HTTP')
  return new Tracing(provider, provider.getTracer('portcullis', version))
}

/** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces (the spec's rule). */
export function tracesEndpoint(env: Env): string | null {
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim()
  if (traces) return traces
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim()
  if (!base) return null
  return `${base}${base.endsWith('/') ? '' : '/'}v1/traces`
}

/**
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; parentbased_always_on by default, so a
 * caller's sampled flag decides, and a trace that starts here is recorded.
 */
export function samplerFrom(env: Env, warn: (variable: string, value: string, problem: string) => void): Sampler {
  const name = env['OTEL_TRACES_SAMPLER']?.trim().toLowerCase() || 'parentbased_always_on'
  const arg = env['OTEL_TRACES_SAMPLER_ARG']?.trim()
  const ratio = () => {
    const value = arg === undefined || arg === '' ? 1 : Number(arg)
    if (Number.isFinite(value) && value >= 0 && value <= 1) return new TraceIdRatioBasedSampler(value)
    warn('OTEL_TRACES_SAMPLER_ARG', arg ?? '', 'the sampling ratio must be a number from 0 to 1: using 1')
    return new TraceIdRatioBasedSampler(1)
  }
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return ratio()
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() })
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    default:
      warn('OTEL_TRACES_SAMPLER', name, 'unsupported sampler: using parentbased_always_on')
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}

/**
 * service.name portcullis and the package version, under OTEL_RESOURCE_ATTRIBUTES
 * (`key=value,...`, values percent-encoded) and OTEL_SERVICE_NAME, which win in that order.
 */
export function resourceAttributes(env: Env, warn: (variable: string, value: string, problem: string) => void): Record<string, string> {
  const attributes: Record<string, string> = { [ATTR_SERVICE_NAME]: 'portcullis', [ATTR_SERVICE_VERSION]: packageInfo().version }
  const raw = env['OTEL_RESOURCE_ATTRIBUTES']?.trim()
  if (raw) {
    for (const pair of raw.split(',')) {
      const eq = pair.indexOf('=')
      const key = eq === -1 ? '' : pair.slice(0, eq).trim()
      try {
        if (key === '') throw new Error('no key')
        attributes[key] = decodeURIComponent(pair.slice(eq + 1).trim())
      } catch {
        warn('OTEL_RESOURCE_ATTRIBUTES', pair, 'not a key=value pair: left out')
      }
    }
  }
  const service = env['OTEL_SERVICE_NAME']?.trim()
  if (service) attributes[ATTR_SERVICE_NAME] = service
  return attributes
}

/** OTEL_BSP_*: how spans are batched. */
function batchOptions(env: Env, warn: (variable: string, value: string, problem: string) => void) {
  const options: { scheduledDelayMillis?: number; exportTimeoutMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number } = {}
  const read = (variable: string, key: keyof typeof options) => {
    const value = positiveWhole(env, [variable], warn)
    if (value !== undefined) options[key] = value
  }
  read('OTEL_BSP_SCHEDULE_DELAY', 'scheduledDelayMillis')
  read('OTEL_BSP_EXPORT_TIMEOUT', 'exportTimeoutMillis')
  read('OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize')
  read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'maxExportBatchSize')
  return options
}

/** The first of `variables` that is set, as a positive whole number (else undefined, and a warning if it was set). */
function positiveWhole(env: Env, variables: string[], warn: (variable: string, value: string, problem: string) => void): number | undefined {
  const variable = variables.find((v) => env[v]?.trim())
  if (variable === undefined) return undefined
  const raw = env[variable]!.trim()
  const value = Number(raw)
  if (Number.isInteger(value) && value > 0) return value
  warn(variable, raw, 'not a positive whole number: using the default')
  return undefined
}
