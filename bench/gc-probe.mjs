// Loaded with `node --import ./bench/gc-probe.mjs` into a process under test (bench/tail.ts):
// on SIGWINCH (close-with-grace takes SIGUSR2 as a shutdown) it appends to $GC_PROBE_FILE one
// JSON line of what happened since the last one (garbage-collection pauses by kind, the event
// loop's delay, page faults, memory), then starts counting again. Nothing here runs per request.
import { appendFileSync } from 'node:fs'
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'

const file = process.env.GC_PROBE_FILE
if (file) {
  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
  }
  let pauses = []
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push([KINDS[e.detail?.kind ?? e.kind] ?? 'other', e.startTime, e.duration])
  }).observe({ entryTypes: ['gc'] })
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  let since = performance.now()
  let usage = process.resourceUsage()
  process.on('SIGWINCH', () => {
    const now = performance.now()
    const u = process.resourceUsage()
    const byKind = {}
    for (const [kind, , ms] of pauses) {
      byKind[kind] ??= { count: 0, totalMs: 0, maxMs: 0, over2ms: 0, over5ms: 0 }
      const k = byKind[kind]
      k.count++
      k.totalMs += ms
      k.maxMs = Math.max(k.maxMs, ms)
      if (ms > 2) k.over2ms++
      if (ms > 5) k.over5ms++
    }
    const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
    const line = {
      wallMs: now - since,
      gc: byKind,
      loopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, p999: delay.percentile(99.9) / 1e6, max: delay.max / 1e6 },
      minorFaults: u.minorPageFault - usage.minorPageFault,
      majorFaults: u.majorPageFault - usage.majorPageFault,
      cpuMs: (u.userCPUTime + u.systemCPUTime - usage.userCPUTime - usage.systemCPUTime) / 1000,
      rssMiB: process.memoryUsage.rss() / 2 ** 20,
      newSpaceMiB: (newSpace?.space_size ?? 0) / 2 ** 20,
      // the slowest pauses, with when they began (ms since the process started)
      longest: pauses
        .sort((a, b) => b[2] - a[2])
        .slice(0, 5)
        .map(([k, at, ms]) => `${k}@${at.toFixed(0)}:${ms.toFixed(2)}`),
    }
    appendFileSync(file, JSON.stringify(line) + '\n')
    pauses = []
    delay.reset()
    since = now
    usage = u
  })
}
