/**
 * The gateway's Prometheus metrics, registered in a Registry handed in (never prom-client's
 * global one: several gateways share one test process, and a config reload must not
 * re-register anything). main.ts makes one per process; it outlives config generations.
 *
 * Every label value comes from a closed set (route names from the config, fixed names, enums
 * below): never a path, a user or a session id, so the series count stays bounded. Series
 * are bound once and reused (./metric-families.ts), so recording a request costs a Map
 * lookup, an array read, an increment and a bucket search, and allocates nothing.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { TokenCacheStats } from '../auth/verify.js'
import type { EndReason } from '../sessions/types.js'
import { version } from '../version.js'
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from './metric-families.js'
import type { DropReason, RetryReason, WebhookCounters } from './webhook.js'

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'] as const
const METHOD_INDEX: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, {
  GET: 0,
  HEAD: 1,
  POST: 2,
  PUT: 3,
  PATCH: 4,
  DELETE: 5,
  OPTIONS: 6,
})
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

export const AUTH_OUTCOMES = [
  'ok',
  'anonymous',
  'missing_token',
  'invalid_token',
  'token_expired',
  'token_revoked',
  'forbidden',
  'csrf_rejected',
  'store_unavailable',
  'rate_limited',
  'error',
] as const
export const LOGIN_RESULTS = [
  'ok',
  'invalid_credentials',
  'rate_limited',
  'invalid_request',
  'csrf_rejected',
  'identity_unavailable',
  'store_unavailable',
  // An OpenID Connect sign-in refused by the source's requireClaims.
  'forbidden',
  'error',
] as const
export const REFRESH_RESULTS = ['rotated', 'grace', 'reused', 'expired', 'unknown', 'rate_limited', 'rejected', 'error'] as const
export const END_REASONS: readonly EndReason[] = ['logout', 'logout_all', 'deleted', 'admin', 'reuse', 'expired', 'evicted', 'provider_logout']
export const LIMITERS = ['login_user', 'login_client', 'refresh_session', 'route'] as const
export type LimiterName = (typeof LIMITERS)[number]
const CLIENT_ERRORS = ['header_too_large', 'timeout', 'aborted', 'bad_request'] as const
const UPSTREAM_ERRORS = ['timeout', 'unavailable'] as const
const EVENT_RETRIES: readonly RetryReason[] = ['timeout', 'network', 'status']
const EVENT_DROPS: readonly DropReason[] = ['overflow', 'rejected', 'shutdown']

/** Seconds; from a cache hit on loopback to a slow upstream. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

interface RouteSeries {
  /** By METHOD_INDEX * 5 + status class, bound on first use. */
  counts: Array<CounterSeries | undefined>
  seconds: HistogramSeries
}

/** What a proxied route records about its upstream, bound once per route. */
export interface UpstreamSeries {
  observe(ms: number): void
  error(reason: (typeof UPSTREAM_ERRORS)[number]): void
}

/** Read at scrape time (main.ts hands over the process-wide store, set and sync). */
export interface MetricSources {
  store?: { ping(): Promise<void> }
  revocations?: { readonly size: number }
  sync?: { readonly resyncs: number; readonly lastSyncAt: number }
  /** Security events waiting for the webhook (src/ops/events.ts). */
  events?: { readonly queued: number }
}

/** One series per label value of the last label, all exported from the start (at 0). */
function bind<const V extends string>(
  family: CounterFamily,
  label: string,
  values: readonly V[],
  fixed: Record<string, string> = {},
): Record<V, CounterSeries> {
  const out = Object.create(null) as Record<V, CounterSeries>
  for (const v of values) out[v] = family.series({ ...fixed, [label]: v })
  return out
}

export class GatewayMetrics implements WebhookCounters {
  readonly registry: Registry
  /** Counted by each config generation's verifier as plain numbers; read at scrape time. */
  readonly tokenCache: TokenCacheStats = { hits: 0, misses: 0, held: () => ({ entries: 0, bytes: 0 }) }
  #sources: MetricSources = {}
  #routes = new Map<string, RouteSeries>()
  #certificateReloads: Record<'ok' | 'rejected', CounterSeries>
  #certificateExpiry: Gauge<'subject'>
  #requests: CounterFamily
  #requestSeconds: HistogramFamily
  #propagation!: HistogramSeries
  #upstreamSeconds: HistogramFamily
  #upstreamErrors: CounterFamily
  #auth: Record<string, CounterSeries>
  /** normal valid, normal invalid, deferred valid, deferred invalid */
  #checks: CounterSeries[]
  #logins: Record<string, CounterSeries>
  #refreshes: Record<string, CounterSeries>
  #reuse: CounterSeries
  #ended: Record<string, CounterSeries>
  #limited: CounterFamily
  #limitErrors: Record<LimiterName, CounterSeries>
  #reloads: Record<'ok' | 'rejected', CounterSeries>
  #storeErrors: Record<'request' | 'connection', CounterSeries>
  #clientErrors: Record<(typeof CLIENT_ERRORS)[number], CounterSeries>
  #evictionPolicies: Gauge<'policy'>
  #eventsDelivered: CounterSeries
  #eventRetries: Record<RetryReason, CounterSeries>
  #eventsDropped: Record<DropReason, CounterSeries>

  constructor(opts: { registry?: Registry; processMetrics?: boolean } = {}) {
    const registry = opts.registry ?? new Registry()
    this.registry = registry
    const counter = (name: string, help: string) => new CounterFamily(name, help, registry)
    const histogram = (name: string, help: string) => new HistogramFamily(name, help, registry, LATENCY_BUCKETS)
    if (opts.processMetrics) collectDefaultMetrics({ register: registry })

    this.#requests = counter('portcullis_requests_total', 'Requests answered, by route, method and status class.')
    this.#requestSeconds = histogram('portcullis_request_duration_seconds', 'Time from receiving a request to its response, by route.')
    this.#upstreamSeconds = histogram(
      'portcullis_upstream_duration_seconds',
      'Time from forwarding a request to the upstream response headers, by route.',
    )
    this.#upstreamErrors = counter('portcullis_upstream_errors_total', 'Upstream calls that failed, by route and reason.')
    this.#auth = bind(counter('portcullis_auth_outcomes_total', 'Access-token authentications, by outcome.'), 'outcome', AUTH_OUTCOMES)
    const checks = counter(
      'portcullis_signature_checks_total',
      'Access-token signature checks, by lane (deferred: the address had spent its failure budget) and result.',
    )
    this.#checks = (['normal', 'deferred'] as const).flatMap((lane) => {
      const r = bind(checks, 'result', ['valid', 'invalid'] as const, { lane })
      return [r.valid, r.invalid]
    })
    this.#logins = bind(counter('portcullis_logins_total', 'Sign-in attempts, by result.'), 'result', LOGIN_RESULTS)
    this.#refreshes = bind(counter('portcullis_refreshes_total', 'Refresh-token presentations, by result.'), 'result', REFRESH_RESULTS)
    this.#reuse = counter(
      'portcullis_refresh_reuse_detected_total',
      'Rotated refresh tokens presented again (theft suspected; the session was ended).',
    ).series({})
    this.#ended = bind(counter('portcullis_sessions_ended_total', 'Sessions ended by this instance, by reason.'), 'reason', END_REASONS)
    this.#limited = counter('portcullis_rate_limited_total', 'Requests refused with 429, by limiter and route.')
    this.#limitErrors = bind(
      counter('portcullis_rate_limit_errors_total', 'Rate-limit checks that could not reach their store, by limiter.'),
      'limiter',
      LIMITERS,
    )
    this.#reloads = bind(counter('portcullis_config_reloads_total', 'Config reloads, by result.'), 'result', ['ok', 'rejected'])
    this.#certificateReloads = bind(
      counter(
        'portcullis_tls_certificate_reloads_total',
        'server.tls certificate and key pairs read again: put in service (ok) or refused (rejected).',
      ),
      'result',
      ['ok', 'rejected'],
    )
    this.#certificateExpiry = new Gauge({
      name: 'portcullis_tls_certificate_expiry_timestamp_seconds',
      help: 'When the served certificate (by subject) expires, in Unix time: alert well before it. Absent without server.tls.',
      labelNames: ['subject'],
      registers: [registry],
      aggregator: 'min',
    })
    this.#storeErrors = bind(
      counter('portcullis_store_errors_total', 'Session store failures: calls made for requests, and client connection errors.'),
      'source',
      ['request', 'connection'],
    )
    this.#clientErrors = bind(
      counter('portcullis_client_errors_total', 'Requests refused before routing (malformed, too large a head, too slow).'),
      'reason',
      CLIENT_ERRORS,
    )
    this.#eventsDelivered = counter('portcullis_events_delivered_total', 'Security events the webhook receiver accepted (2xx).').series({})
    this.#eventRetries = bind(
      counter(
        'portcullis_events_retries_total',
        'Security event deliveries that failed and will be retried, by reason (timeout, network error, 429 or 5xx).',
      ),
      'reason',
      EVENT_RETRIES,
    )
    this.#eventsDropped = bind(
      counter(
        'portcullis_events_dropped_total',
        'Security events given up on before the webhook accepted them: the queue was full, the receiver refused them (4xx), or shutdown.',
      ),
      'reason',
      EVENT_DROPS,
    )
    // `first`, `min` and `max` below say how the primary of several workers merges its
    // workers' values into one (prom-client's AggregatorRegistry; counters are summed).
    new Gauge({
      name: 'portcullis_build_info',
      help: 'Always 1; its labels say which Portcullis version runs on which Node.js.',
      labelNames: ['version', 'node'],
      registers: [registry],
      aggregator: 'first',
    }).set({ version: version(), node: process.version }, 1)
    this.#evictionPolicies = new Gauge({
      name: 'portcullis_store_maxmemory_policy',
      help: 'Redis masters by their maxmemory-policy as read at start (anything but noeviction can evict revocations; unknown: could not be read).',
      labelNames: ['policy'],
      registers: [registry],
      aggregator: 'max',
    })
    this.#propagation = histogram(
      'portcullis_revocation_propagation_seconds',
      "Time from the store's publish of a revocation to this instance's revoked set (Redis stores; by Redis's clock against this host's).",
    ).series({})
    this.#scrapeTimeGauges([registry])
  }

  /** A revocation message from the store's feed, this many seconds after Redis published it. */
  revocationPropagated(seconds: number): void {
    this.#propagation.observe(seconds)
  }

  /** Sets what the scrape-time gauges read. */
  watch(sources: MetricSources): void {
    this.#sources = { ...this.#sources, ...sources }
  }

  request(route: string, method: string, status: number, ms: number): void {
    const series = this.#routes.get(route) ?? this.#route(route)
    const m = METHOD_INDEX[method] ?? 7
    const c = status < 200 ? 0 : status >= 500 ? 4 : ((status / 100) | 0) - 1
    const i = m * 5 + c
    let counter = series.counts[i]
    if (counter === undefined) {
      counter = this.#requests.series({ route, method: METHODS[m]!, status_class: CLASSES[c]! })
      series.counts[i] = counter
    }
    counter.value++
    series.seconds.observe(ms / 1000)
  }

  upstream(route: string): UpstreamSeries {
    const seconds = this.#upstreamSeconds.series({ route })
    const errors = bind(this.#upstreamErrors, 'reason', UPSTREAM_ERRORS, { route })
    return { observe: (ms) => seconds.observe(ms / 1000), error: (reason) => void errors[reason].value++ }
  }

  auth(outcome: string): void {
    ;(this.#auth[outcome] ?? this.#auth['error']!).value++
  }

  signatureCheck(deferred: boolean, valid: boolean): void {
    this.#checks[(deferred ? 2 : 0) + (valid ? 0 : 1)]!.value++
  }

  login(result: string): void {
    ;(this.#logins[result] ?? this.#logins['error']!).value++
  }

  refresh(result: string): void {
    ;(this.#refreshes[result] ?? this.#refreshes['error']!).value++
  }

  reuseDetected(): void {
    this.#reuse.value++
  }

  sessionsEnded(reason: EndReason, count = 1): void {
    const series = this.#ended[reason]
    if (series) series.value += count
  }

  /** A limiter's counters, bound once when the limiter is made. */
  limiter(name: LimiterName, route: string): { limited(): void; unreachable(): void } {
    const limited = this.#limited.series({ limiter: name, route })
    const errors = this.#limitErrors[name]
    return { limited: () => void limited.value++, unreachable: () => void errors.value++ }
  }

  reload(result: 'ok' | 'rejected'): void {
    this.#reloads[result].value++
  }

  /** A certificate went into service (src/tls/certificates.ts): at start, or as a reload. */
  certificateLoaded(certificate: { subject: string; notAfter: number }, reloaded: boolean): void {
    if (reloaded) this.#certificateReloads.ok.value++
    this.#certificateExpiry.reset()
    this.#certificateExpiry.set({ subject: certificate.subject }, Math.floor(certificate.notAfter / 1000))
  }

  certificateRejected(): void {
    this.#certificateReloads.rejected.value++
  }

  storeError(source: 'request' | 'connection'): void {
    this.#storeErrors[source].value++
  }

  /** The maxmemory-policy of each Redis master (src/ops/eviction-policy.ts). */
  evictionPolicies(policies: readonly string[]): void {
    this.#evictionPolicies.reset()
    for (const policy of policies) this.#evictionPolicies.inc({ policy })
  }

  eventsDelivered(count: number): void {
    this.#eventsDelivered.value += count
  }

  eventDeliveryRetried(reason: RetryReason): void {
    this.#eventRetries[reason].value++
  }

  eventsDropped(reason: DropReason, count: number): void {
    this.#eventsDropped[reason].value += count
  }

  /** Node's HTTP parser refused a request (see server.ts clientError). */
  clientError(code: string | undefined): void {
    const reason =
      code === 'HPE_HEADER_OVERFLOW'
        ? 'header_too_large'
        : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? 'timeout'
          : code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE'
            ? 'aborted'
            : 'bad_request'
    this.#clientErrors[reason].value++
  }

  #route(route: string): RouteSeries {
    const series: RouteSeries = { counts: new Array(METHODS.length * CLASSES.length), seconds: this.#requestSeconds.series({ route }) }
    this.#routes.set(route, series)
    return series
  }

  #scrapeTimeGauges(registers: Registry[]): void {
    const sources = () => this.#sources
    new Gauge({
      name: 'portcullis_store_up',
      help: '1 when the session store answered a ping at scrape time, else 0.',
      registers,
      aggregator: 'min',
      async collect() {
        const store = sources().store
        if (store)
          this.set(
            await store.ping().then(
              () => 1,
              () => 0,
            ),
          )
      },
    })
    new Gauge({
      name: 'portcullis_revocation_set_size',
      help: 'Ended sessions and logout-all marks held in memory for the revocation check.',
      registers,
      aggregator: 'max',
      collect() {
        const set = sources().revocations
        if (set) this.set(set.size)
      },
    })
    new Gauge({
      name: 'portcullis_events_queued',
      help: 'Security events held for the webhook (waiting or being sent).',
      registers,
      aggregator: 'sum',
      collect() {
        const events = sources().events
        if (events) this.set(events.queued)
      },
    })
    let counted = 0
    new Counter({
      name: 'portcullis_revocation_resyncs_total',
      help: 'Completed full reloads of the revocation set from the store.',
      registers,
      collect() {
        const sync = sources().sync
        if (sync && sync.resyncs > counted) {
          this.inc(sync.resyncs - counted)
          counted = sync.resyncs
        }
      },
    })
    const tokenCache = this.tokenCache
    const looked = { hit: 0, miss: 0 }
    new Counter({
      name: 'portcullis_token_cache_requests_total',
      help: 'Access tokens looked up in the verified-token cache, by result (miss: a signature check was needed); a request refused after a hit (revoked, forbidden) counts twice.',
      labelNames: ['result'],
      registers,
      collect() {
        this.inc({ result: 'hit' }, tokenCache.hits - looked.hit)
        this.inc({ result: 'miss' }, tokenCache.misses - looked.miss)
        looked.hit = tokenCache.hits
        looked.miss = tokenCache.misses
      },
    })
    new Gauge({
      name: 'portcullis_token_cache_entries',
      help: 'Verified access tokens held in the cache (auth.tokenCache).',
      registers,
      aggregator: 'sum',
      collect() {
        this.set(tokenCache.held().entries)
      },
    })
    new Gauge({
      name: 'portcullis_token_cache_bytes',
      help: 'Heap the verified-token cache holds, as it reckons it (at most auth.tokenCache.maxMemory).',
      registers,
      aggregator: 'sum',
      collect() {
        this.set(tokenCache.held().bytes)
      },
    })
    new Gauge({
      name: 'portcullis_revocation_last_sync_timestamp_seconds',
      help: 'When the revocation set was last fully reloaded (alert when it falls behind).',
      registers,
      aggregator: 'min',
      collect() {
        const sync = sources().sync
        if (sync && sync.lastSyncAt > 0) this.set(sync.lastSyncAt / 1000)
      },
    })
  }
}
