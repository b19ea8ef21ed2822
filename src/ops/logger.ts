/**
 * pino setup: JSON lines on stdout, secrets redacted wherever they could appear.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { pino, type Logger, type DestinationStream } from 'pino'
import { maskQuerySecrets } from './query-secrets.js'

/**
 * Anything that could carry a credential where it could be logged. Explicit paths only:
 * wildcard paths made redaction a visible share of every request's CPU time when profiled, and
 * our own log lines never carry bodies or headers. No `req.*` paths: every `req` goes through
 * serializeRequest, which keeps no headers, and a path there would make pino clone and walk the
 * access log line of every request.
 */
const REDACT = [
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'password',
  'refreshToken',
  'accessToken',
  'token',
  'secret',
  'body.password',
  'body.refreshToken',
]

/**
 * Standard output, written from libuv's thread pool and at most about once a second: lines
 * wait until 16 KiB have gathered or a second has passed, and whatever is pending is written
 * synchronously when the process exits. pino's default writes each batch on its own trip
 * through the thread pool (waking a thread and being woken back); side by side against a
 * gateway without the access log, that took 1.14× its CPU per request, and this 1.08×
 * (synchronous writes: 1.05×, but a stalled reader of standard output would then stall
 * every request). Lines are lost only if the process is killed outright (SIGKILL, OOM), as
 * with Envoy's buffered access log.
 */
function standardOutput(): DestinationStream {
  // 16 KiB rather than 4: each write is a trip through the thread pool, and a busy gateway
  // fills 4 KiB every ~13 requests. Per access line, formatting and writing included (one core,
  // Node 20, 8 lines per event-loop turn): 2.2–2.4 µs at 4 KiB, 1.7–2.1 µs at 16 KiB.
  return pino.destination({ dest: 1, sync: false, minLength: 16 * 1024, maxWrite: 64 * 1024, periodicFlush: 1000 })
}

export function createLogger(level: string, destination: DestinationStream = standardOutput()): Logger {
  const base = { pid: process.pid }
  const logger = pino(
    {
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { req: serializeRequest, err: pino.stdSerializers.err },
      base,
      timestamp: isoTime,
    },
    destination,
  )
  // pino writes `base` after the time as `,"pid":…`; kept here so that the access log does
  // not have to read it (or the destination) from pino's private symbols.
  outputs.set(logger, { destination, bindings: ',' + JSON.stringify(base).slice(1, -1) })
  return logger
}

/** Where a logger writes, and its bindings as they appear in each of its lines. */
export interface LoggerOutput {
  readonly destination: DestinationStream
  readonly bindings: string
}

const outputs = new WeakMap<Logger, LoggerOutput>()

/** The output of a logger made by `createLogger`, for lines formatted outside pino (the access log). */
export function outputOf(logger: Logger): LoggerOutput {
  const output = outputs.get(logger)
  if (output === undefined) throw new Error('the access log needs a logger made by createLogger')
  return output
}

let lastMs = -1
let lastTime = ''
/**
 * pino's ISO timestamp, formatted once per millisecond: under load many lines share one, and
 * formatting a Date was a visible share of each proxied request's CPU time when profiled.
 */
export function isoTime(): string {
  const ms = Date.now()
  if (ms !== lastMs) {
    lastMs = ms
    lastTime = `,"time":"${new Date(ms).toISOString()}"`
  }
  return lastTime
}

/** Method, path (secrets in the query masked) and peer; never headers or bodies. */
function serializeRequest(req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) {
  return {
    method: req.method,
    url: req.url === undefined ? undefined : maskQuerySecrets(req.url),
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
  }
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

/** Keeps a caller's X-Request-Id when it is harmless, so traces join up; else makes one. */
export function requestId(req: Pick<IncomingMessage, 'headers'>): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID()
}
