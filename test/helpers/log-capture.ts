/**
 * A logger made by createLogger (src/ops/logger.ts) writing into memory: what it wrote, as
 * written and as parsed lines.
 */
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createLogger } from '../../src/ops/logger.js'

export interface CapturedLog {
  logger: Logger
  /** Each write the destination received. */
  writes: string[]
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[]
}

export function captureLog(level = 'info'): CapturedLog {
  const writes: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString('utf8'))
      cb()
    },
  })
  const lines = () =>
    writes
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  return { logger: createLogger(level, sink), writes, lines }
}
