/**
 * `portcullis start`: run until a signal says otherwise.
 * SIGHUP and a change to the config file reload it; SIGTERM/SIGINT drain and exit 0.
 */
import closeWithGrace from 'close-with-grace'
import cluster from 'node:cluster'
import { loadGatewayConfig } from '../config/gateway.js'
import { startGateway } from '../main.js'
import { ListenError } from '../listen.js'
import { listenAdmin } from '../ops/admin-server.js'
import { createLogger } from '../ops/logger.js'
import { workersAdminSources } from './worker-admin.js'
import { cannotListen, runPrimary, STOP_MESSAGE, workerCount } from './workers.js'
import { watchConfig } from '../ops/watch.js'
import type { FlagsOutcome } from './node-flags.js'

/** Resolves -1: the process stays up until a signal (the primary of several workers: its exit code). */
export async function runStart(configPath: string, flags: FlagsOutcome = { applied: 'already' }): Promise<number> {
  if (cluster.isPrimary) {
    const config = await loadGatewayConfig(configPath, process.env)
    const count = workerCount(config.server.workers)
    if (count > 1) {
      const log = createLogger(config.server.logLevel)
      // Workers get the flags anyway (forked with them): only the primary, which serves nothing, lacks them.
      if (flags.applied === 'no') log.info({ flags: flags.missing }, 'primary runs without these V8 flags; its workers have them')
      // Before any worker is forked: a taken admin port stops the start, as the public one does.
      const admin = config.server.admin ? await listenAdmin(config.server.admin, workersAdminSources(), log, configPath) : null
      if (admin) log.info({ url: admin.url }, 'admin listener: /metrics, /healthz, /readyz (every worker)')
      const code = await runPrimary(configPath, count, log, config.server.shutdownTimeout)
      await admin?.close()
      return code
    }
  }
  const gateway = await startGateway({ configPath }).catch((err: unknown) => {
    // The caller prints why; whatever was started before the failure (a Redis connection, the
    // demo upstream) must not keep a process that failed to start alive.
    setTimeout(() => process.exit(1), 500).unref()
    // Every worker would say the same about the one port they share: the primary says it once.
    if (cluster.isWorker && err instanceof ListenError && process.send) return void process.send(cannotListen(err.message))
    throw err
  })
  if (gateway === undefined) return 1
  const log = gateway.logger
  if (flags.applied === 'no') {
    log.warn(
      { flags: flags.missing, node: process.version },
      'running without these V8 flags: this Node cannot re-execute itself (process.execve needs Node 22.15+, not Windows); pass them to node, or set PORTCULLIS_NODE_FLAGS',
    )
  }
  const reload = (trigger: string) => {
    // Shutting down: a new generation would only be drained again.
    if (gateway.draining) return
    void gateway.reload().then(
      (result) => log.info({ trigger, ok: result.ok }, 'reload finished'),
      (err: unknown) => log.error({ err, trigger }, 'reload failed'),
    )
  }
  process.on('SIGHUP', () => reload('SIGHUP'))
  // A worker is told of file changes by its primary (one watcher for all).
  const stopWatching = cluster.isWorker ? () => {} : watchConfig(configPath, () => reload('file change'), log)

  // SIGHUP means "reload" here, not "hang up": close-with-grace must leave it alone. A second
  // SIGTERM/SIGINT exits at once with 1 (close-with-grace's default), except in a worker: its
  // primary owns the signals and stops it by message (src/cli/workers.ts), while the same
  // signal may reach the worker directly too (a process group's), so there any number of
  // signals and messages make one drain.
  const worker = cluster.isWorker
  let stopReason: string | undefined
  const grace = closeWithGrace(
    { delay: null, skip: worker ? ['SIGHUP', 'SIGTERM', 'SIGINT'] : ['SIGHUP'], logger: { error: (m: unknown) => log.error(m) } } as never,
    async ({ signal, err }: { signal?: string; err?: Error }) => {
      if (err) log.error({ err }, 'fatal error: shutting down')
      else log.info({ signal: signal ?? stopReason }, 'signal received')
      // close() is bounded by server.shutdownTimeout; this is the backstop should releasing the
      // store hang. Read now, not at start: shutdownTimeout reloads live.
      const backstop = gateway.config().server.shutdownTimeout + 5000
      setTimeout(() => {
        log.error({ backstop }, 'shutdown did not finish in time: exiting')
        process.exit(1)
      }, backstop).unref()
      stopWatching()
      await gateway.close()
    },
  ) as { close(): void }
  if (worker) {
    const drain = (reason: string) => {
      if (stopReason !== undefined) return
      stopReason = reason
      grace.close()
    }
    process.on('SIGTERM', () => drain('SIGTERM'))
    process.on('SIGINT', () => drain('SIGINT'))
    process.on('message', (message) => message === STOP_MESSAGE && drain('stop from primary'))
    // A primary killed outright takes its workers with it: Node's cluster module exits a worker
    // at once when its IPC channel closes unexpectedly, before any listener here could drain.
  }
  return -1
}
