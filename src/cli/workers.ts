/**
 * `server.workers`: several processes sharing the listening port (node:cluster), so every
 * core serves requests. The primary only supervises: it forks the workers, relays SIGHUP and
 * config-file changes to them (each reloads its own generation), restarts a worker that dies,
 * and on SIGTERM/SIGINT asks every worker to drain and exits 0 once all have.
 *
 * Workers are asked to stop by message, not by signal: a terminal's Ctrl-C and systemd's
 * default KillMode signal the whole process group, so each worker gets the signal itself as
 * well, and a relayed one would arrive as a second signal, which means "exit now". A second
 * signal to the primary does mean that: the workers are killed and it exits 1.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import type { Logger } from 'pino'
import { watchConfig } from '../ops/watch.js'
import { workerExecArgv } from './node-flags.js'

/** What the primary sends a worker to make it drain and exit (src/cli/start.ts). */
export const STOP_MESSAGE = 'portcullis:stop'

/** What a worker that cannot listen sends its primary instead of printing it (src/cli/start.ts). */
export function cannotListen(message: string): { cannotListen: string } {
  return { cannotListen: message }
}

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
    const askToStop = () => {
      for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send(STOP_MESSAGE)
    }
    const giveUp = () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
      process.exit(1)
    }
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.error({ signal }, 'second signal: stopping workers at once')
        return giveUp()
      }
      stopping = true
      log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping workers')
      stopWatching()
      askToStop()
      setTimeout(() => {
        log.error('workers did not stop in time: exiting')
        giveUp()
      }, shutdownTimeout + 5_000).unref()
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => relay('SIGHUP'))
    // One watcher for all: each worker reloads when told, so a change is read once per worker.
    const stopWatching = watchConfig(configPath, () => relay('SIGHUP'), log)

    // A port that cannot be taken stays so: forking more workers would only say it again.
    cluster.on('message', (_worker, message: unknown) => {
      const problem = (message as { cannotListen?: unknown } | null)?.cannotListen
      if (typeof problem !== 'string' || stopping) return
      process.stderr.write(`portcullis start: ${problem}\n`)
      log.fatal({ problem }, 'workers cannot listen: giving up')
      stopping = true
      stopWatching()
      askToStop()
    })

    let failed = false
    cluster.on('exit', (worker, code, signal) => {
      const lived = Date.now() - (started.get(worker) ?? 0)
      started.delete(worker)
      if (code !== 0) failed = true
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0)
        return
      }
      log.error({ workerPid: worker.process.pid, code, signal, livedMs: lived }, 'worker exited; starting another')
      quickDeaths = lived < QUICK_DEATH_MS ? quickDeaths + 1 : 0
      // A worker that cannot stay up (bad config, port taken) would otherwise be forked forever.
      if (quickDeaths >= MAX_QUICK_DEATHS) {
        log.fatal({ deaths: quickDeaths }, 'workers keep dying at start: giving up')
        stopping = true
        askToStop()
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(1)
        return
      }
      setTimeout(() => stopping || fork(), Math.min(1000 * quickDeaths, 5000)).unref()
    })
    // The gateway's V8 flags, whether or not the primary could re-execute itself with them.
    cluster.setupPrimary({ execArgv: workerExecArgv() })
    for (let i = 0; i < count; i++) fork()
    // The logger's base already carries this process's `pid`: a second one would repeat the key.
    log.info({ workers: count }, 'portcullis primary started')
  })
}
