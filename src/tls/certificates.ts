/**
 * The certificate in service and its rotation. The pair `server.tls` names is read again on
 * every reload (SIGHUP, a config change: src/main.ts) and whenever either file changes. A new
 * pair is handed to the server with setSecureContext, which only new handshakes use: open
 * connections, and the requests in flight on them, keep the session they negotiated. A pair
 * that fails its checks (src/tls/certificate.ts) is logged with the file to fix and counted,
 * and the pair in service stays, so a botched copy never takes the gateway off the air.
 */
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from 'pino'
import { watchFile } from '../ops/watch.js'
import { CertificateError, contextOptions, readCertificate, type Certificate, type TlsFiles } from './certificate.js'

/** What rotation reports to the metrics (src/ops/metrics.ts). */
export interface CertificateCounters {
  certificateLoaded(certificate: Certificate, reloaded: boolean): void
  certificateRejected(): void
}

/** The server the certificate is served by (a tls.Server: https or HTTP/2). */
export interface SecureServer {
  setSecureContext(options: SecureContextOptions): void
}

export type ReloadResult = 'loaded' | 'unchanged' | 'rejected'

export interface CertificatesOptions {
  log: Logger
  counters?: CertificateCounters
  now?: () => number
  /** How long a burst of file events is waited out (tests shorten it). */
  debounceMs?: number
}

export class Certificates {
  #files: TlsFiles
  #current: Certificate
  #server: SecureServer | null = null
  #stopWatching: () => void = () => {}
  /** Reloads run one at a time: a watcher's and a SIGHUP's must not interleave their reads. */
  #queue: Promise<unknown> = Promise.resolve()
  readonly #opts: CertificatesOptions

  private constructor(files: TlsFiles, current: Certificate, opts: CertificatesOptions) {
    this.#files = files
    this.#current = current
    this.#opts = opts
  }

  /** Reads the pair for the start; a bad one throws (CertificateError, naming the file): nothing is served yet. */
  static async load(files: TlsFiles, opts: CertificatesOptions): Promise<Certificates> {
    const certificate = await readCertificate(files, (opts.now ?? Date.now)())
    opts.counters?.certificateLoaded(certificate, false)
    logLoaded(opts.log, 'start', files, certificate)
    return new Certificates({ ...files }, certificate, opts)
  }

  get current(): Certificate {
    return this.#current
  }

  /** Options for the server that starts with the current pair. */
  contextOptions(): SecureContextOptions {
    return contextOptions(this.#current)
  }

  /** From now on, rotations go to `server`, and both files are watched. */
  serve(server: SecureServer): void {
    this.#server = server
    this.#watch()
  }

  /**
   * Reads the pair again (from `files` when a reload names others: they are watched from now
   * on, even if they cannot be loaded yet) and puts it in service if it is new and sound.
   */
  reload(trigger: string, files: TlsFiles = this.#files): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reload(trigger, files))
    this.#queue = run.catch(() => {})
    return run
  }

  stop(): void {
    this.#server = null
    this.#stopWatching()
  }

  async #reload(trigger: string, files: TlsFiles): Promise<ReloadResult> {
    const moved = files.certFile !== this.#files.certFile || files.keyFile !== this.#files.keyFile
    if (moved) {
      this.#files = { ...files }
      if (this.#server !== null) this.#watch()
    }
    const { log, counters } = this.#opts
    let next: Certificate
    try {
      next = await readCertificate(files, (this.#opts.now ?? Date.now)())
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err
      counters?.certificateRejected()
      const serving = this.#current
      log.error(
        { trigger, file: err.file, certFile: files.certFile, keyFile: files.keyFile, serving: describe(serving) },
        `TLS certificate not loaded: ${err.message}; still serving the previous one (${serving.subject}, expires ${new Date(serving.notAfter).toISOString()})`,
      )
      return 'rejected'
    }
    if (next.digest === this.#current.digest) {
      log.debug({ trigger, certFile: files.certFile }, 'TLS certificate unchanged')
      return 'unchanged'
    }
    this.#server?.setSecureContext(contextOptions(next))
    this.#current = next
    counters?.certificateLoaded(next, true)
    logLoaded(log, trigger, files, next)
    return 'loaded'
  }

  #watch(): void {
    this.#stopWatching()
    const { log, debounceMs } = this.#opts
    const onChange = () => void this.reload('file change').catch((err: unknown) => log.error({ err }, 'TLS certificate reload failed'))
    const cert = watchFile(this.#files.certFile, onChange, log, { what: 'the TLS certificate', ...(debounceMs !== undefined && { debounceMs }) })
    const key = watchFile(this.#files.keyFile, onChange, log, { what: 'the TLS private key', ...(debounceMs !== undefined && { debounceMs }) })
    this.#stopWatching = () => {
      cert()
      key()
    }
  }
}

function describe(c: Certificate) {
  return { subject: c.subject, names: c.names, notAfter: new Date(c.notAfter).toISOString(), fingerprint: c.fingerprint }
}

function logLoaded(log: Logger, trigger: string, files: TlsFiles, c: Certificate): void {
  log.info({ trigger, certFile: files.certFile, keyFile: files.keyFile, ...describe(c) }, 'TLS certificate loaded')
}
