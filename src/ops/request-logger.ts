/**
 * Each request's logger (`request.log`), made only when something logs through it.
 *
 * Fastify gives every request a pino child bound to its id. Most requests never log through
 * it (the access line is written apart, src/ops/access-log.ts), yet a child was made for each:
 * its bindings serialised, and for a route with its own `logLevel` (/healthz, /readyz,
 * /metrics) every log method rebuilt. This stand-in keeps the parent, the id and the options,
 * and makes the child the first time a line is logged at an enabled level.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, Level, LevelWithSilentOrString, Logger } from 'pino'

export class RequestLogger {
  readonly #parent: Logger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: Logger | null = null

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  /** The pino child Fastify would have made, made now. */
  #real(): Logger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  get level(): LevelWithSilentOrString {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level
  }

  set level(level: LevelWithSilentOrString) {
    this.#real().level = level
  }

  isLevelEnabled(level: string): boolean {
    if (this.#child !== null) return this.#child.isLevelEnabled(level)
    const threshold = this.#options.level
    if (threshold === undefined) return this.#parent.isLevelEnabled(level)
    const values = this.#parent.levels.values
    return threshold !== 'silent' && (values[level] ?? Number.POSITIVE_INFINITY) >= (values[threshold] ?? 0)
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#real().child(bindings, options)
  }

  bindings(): Bindings {
    return this.#real().bindings()
  }

  #at(level: Level, args: unknown[]): void {
    // A disabled level makes no child: pino's own method would be a no-op too.
    if (!this.isLevelEnabled(level)) return
    const real = this.#real()
    ;(real[level] as (...a: unknown[]) => void).apply(real, args)
  }

  // Methods on the prototype, not arrow fields: seven closures per request would cost more
  // than the child they stand in for.
  fatal(...args: unknown[]): void {
    this.#at('fatal', args)
  }
  error(...args: unknown[]): void {
    this.#at('error', args)
  }
  warn(...args: unknown[]): void {
    this.#at('warn', args)
  }
  info(...args: unknown[]): void {
    this.#at('info', args)
  }
  debug(...args: unknown[]): void {
    this.#at('debug', args)
  }
  trace(...args: unknown[]): void {
    this.#at('trace', args)
  }
  silent(): void {}
}

/** Fastify's `childLoggerFactory`: a RequestLogger instead of a pino child per request. */
export function requestLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLogger(logger as Logger, bindings, options) as unknown as FastifyBaseLogger
}
