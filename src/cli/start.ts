/**
 * `portcullis start`: run until a signal says otherwise.
 * SIGHUP and a change to the config file reload it; SIGTERM/SIGINT drain and exit 0.
 */
import closeWithGrace from 'close-with-grace'
import { startGateway } from '../main.js'
import { watchConfig } from '../ops/watch.js'

/** Resolves -1: the process stays up until a signal. */
export async function runStart(configPath: string): Promise<number> {
  const gateway = await startGateway({ configPath })
  const log = gateway.logger
  const reload = (trigger: string) =>
    gateway.reload().then(
      (result) => log.info({ trigger, ok: result.ok }, 'reload finished'),
      (err: unknown) => log.error({ err, trigger }, 'reload failed'),
    )
  process.on('SIGHUP', () => void reload('SIGHUP'))
  const stopWatching = watchConfig(configPath, () => void reload('file change'), log)

  // SIGHUP means "reload" here, not "hang up": close-with-grace must leave it alone.
  closeWithGrace(
    { delay: gateway.config().server.shutdownTimeout + 5000, skip: ['SIGHUP'], logger: { error: (m: unknown) => log.error(m) } } as never,
    async ({ signal, err }: { signal?: string; err?: Error }) => {
      if (err) log.error({ err }, 'fatal error: shutting down')
      else log.info({ signal }, 'signal received')
      stopWatching()
      await gateway.close()
    },
  )
  return -1
}
