/**
 * The metrics table of docs/reference/metrics.md, read from a fresh `GatewayMetrics` registry:
 * every metric the gateway registers, its type, labels and help text.
 */
import type { Registry } from 'prom-client'
import { GatewayMetrics } from '../../src/ops/metrics.js'
import { cell, code, table } from './blocks.js'

type Exported = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number]

const SAMPLE_ROUTE = 'sample-route'

function labelValues(metrics: Exported[]): Map<string, Map<string, Set<string>>> {
  const out = new Map<string, Map<string, Set<string>>>()
  for (const m of metrics) {
    const labels = new Map<string, Set<string>>()
    for (const { labels: set } of m.values) {
      for (const [label, value] of Object.entries(set ?? {})) {
        if (label === 'le') continue
        if (!labels.has(label)) labels.set(label, new Set())
        labels.get(label)!.add(String(value))
      }
    }
    out.set(m.name, labels)
  }
  return out
}

/** The Markdown table of every metric, in registration order. */
export async function metricsMarkdown(): Promise<string> {
  const metrics = new GatewayMetrics()
  // Series with a fixed set of label values are exported (at 0) from the start: those lists are complete.
  const fresh = labelValues(await metrics.registry.getMetricsAsJSON())
  // Per-route series appear only once a route is used: record one of each to learn their label names.
  metrics.request(SAMPLE_ROUTE, 'GET', 200, 1)
  metrics.upstream(SAMPLE_ROUTE)
  metrics.limiter('route', SAMPLE_ROUTE)
  const exported = await metrics.registry.getMetricsAsJSON()
  const used = labelValues(exported)
  const rows = exported.map((m) => {
    const labels = [...(used.get(m.name)?.keys() ?? [])].map((label) => {
      const values = fresh.get(m.name)?.get(label)
      // One value at the start is a fact of this process (a version), not a closed list.
      return values && values.size > 1 ? `${code(label)} (${[...values].map(code).join(', ')})` : code(label)
    })
    return [code(m.name), String(m.type), labels.join(', '), cell(m.help)]
  })
  return table(['metric', 'type', 'labels', 'help'], rows)
}
