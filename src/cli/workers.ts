/**
 * `server.workers`: several processes sharing the listening port (node:cluster), so every
 * core serves requests. The primary only supervises: it forks the workers, relays SIGHUP and
 * config-file changes to them (each reloads its own generation), restarts a worker that dies,
 * and on SIGTERM/SIGINT asks every worker to drain and exits 0 once all have.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import type { Logger } from 'pino'
import { watchConfig } from '../ops/watch.js'

/** How many processes a `server.workers` setting means on this machine. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting
}

/** A worker that dies sooner than this after its start counts towards a crash loop. */
const QUICK_DEATH_MS = 5_000
const MAX_QUICK_DEATHS = 5

export function runPrimary(configPath: string, count: number, log: Logger, shutdownTimeout: number): Promise<number> {
  let stopping = false
  let quickDeaths = 0
  const started = new Map<Worker, number>()
  const fork = () => started.set(cluster.fork({ PORTCULLIS_WORKER: '1' }), Date.now())

  return new Promise((resolve) => {
    const relay = (signal: NodeJS.Signals) => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
    }
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return void process.exit(1) // a second signal: give up waiting
      stopping = true
      log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping workers')
      stopWatching()
      relay('SIGTERM')
      setTimeout(() => {
        log.error('workers did not stop in time: exiting')
        process.exit(1)
      }, shutdownTimeout + 5_000).unref()
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => relay('SIGHUP'))
    // One watcher for all: each worker reloads when told, so a change is read once per worker.
    const stopWatching = watchConfig(configPath, () => relay('SIGHUP'), log)

    let failed = false
    cluster.on('exit', (worker, code, signal) => {
      const lived = Date.now() - (started.get(worker) ?? 0)
      started.delete(worker)
      if (code !== 0) failed = true
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0)
        return
      }
      log.error({ pid: worker.process.pid, code, signal, livedMs: lived }, 'worker exited; starting another')
      quickDeaths = lived < QUICK_DEATH_MS ? quickDeaths + 1 : 0
      // A worker that cannot stay up (bad config, port taken) would otherwise be forked forever.
      if (quickDeaths >= MAX_QUICK_DEATHS) {
        log.fatal({ deaths: quickDeaths }, 'workers keep dying at start: giving up')
        stopping = true
        relay('SIGTERM')
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(1)
        return
      }
      setTimeout(fork, Math.min(1000 * quickDeaths, 5000)).unref()
    })
    for (let i = 0; i < count; i++) fork()
    log.info({ workers: count, pid: process.pid }, 'portcullis primary started')
  })
}
