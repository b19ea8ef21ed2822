/**
 * src/ops/metric-families.ts hands prom-client's Registry objects of its own, not prom-client
 * metrics: `registerMetric` is public, but what the Registry then calls on a metric (name, help,
 * type, get(), reset(), aggregator, the shape of get()'s values) is prom-client's internal
 * contract. These tests pin that contract, so that a prom-client upgrade that changes it fails
 * here, loudly, rather than as a silently wrong or empty /metrics.
 */
import t from 'tap'
import { AggregatorRegistry, Registry } from 'prom-client'
import { CounterFamily, HistogramFamily } from '../../src/ops/metric-families.js'

function record(registry: Registry, scale: number) {
  const counter = new CounterFamily('t_requests_total', 'Requests.', registry)
  counter.series({ route: 'a' }).value += 2 * scale
  counter.series({ route: 'b' }).value += 1 * scale
  const histogram = new HistogramFamily('t_seconds', 'Durations.', registry, [0.1, 1])
  const series = histogram.series({ route: 'a' })
  for (let i = 0; i < scale; i++) for (const v of [0.05, 0.5, 3]) series.observe(v)
  return { counter, histogram }
}

const exposition = (n: number) =>
  [
    '# HELP t_requests_total Requests.',
    '# TYPE t_requests_total counter',
    `t_requests_total{route="a"} ${2 * n}`,
    `t_requests_total{route="b"} ${n}`,
    '',
    '# HELP t_seconds Durations.',
    '# TYPE t_seconds histogram',
    `t_seconds_bucket{route="a",le="0.1"} ${n}`,
    `t_seconds_bucket{route="a",le="1"} ${2 * n}`,
    `t_seconds_bucket{route="a",le="+Inf"} ${3 * n}`,
    `t_seconds_sum{route="a"} ${3.55 * n}`,
    `t_seconds_count{route="a"} ${3 * n}`,
    '',
  ].join('\n')

t.test("a Registry formats the families' series in the Prometheus text format", async (t) => {
  const registry = new Registry()
  record(registry, 1)
  t.equal(await registry.metrics(), exposition(1))
})

t.test("the primary's AggregatorRegistry sums the families of two workers", async (t) => {
  const workers = [new Registry(), new Registry()]
  for (const registry of workers) record(registry, 1)
  const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())))
  t.equal(await merged.metrics(), exposition(2))
})

t.test('the Registry finds a family by name, resets it, and refuses a second of the same name', async (t) => {
  const registry = new Registry()
  const { counter } = record(registry, 1)
  t.equal(registry.getSingleMetric('t_requests_total'), counter as never)
  registry.resetMetrics()
  t.match(await registry.metrics(), /t_requests_total\{route="a"\} 0\n[\s\S]*t_seconds_count\{route="a"\} 0\n/)
  t.throws(() => new CounterFamily('t_requests_total', 'Again.', registry), /already been registered/)
})
