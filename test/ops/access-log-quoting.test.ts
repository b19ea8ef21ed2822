/**
 * The access log quotes its string fields itself (src/ops/access-log.ts): whatever a request id,
 * method, path or address holds, the line stays one valid JSON object that reads back the same.
 */
import { Writable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { AccessLog } from '../../src/ops/access-log.js'
import { createLogger } from '../../src/ops/logger.js'

const AWKWARD = ['"', '\\', '\n', '\u0000', '\u001f', '\u007f', 'é', '\u2028', '\ud800', '\udfff', '😀', '</script>', ' ']

t.test('every awkward character in every quoted field reads back as it was (a lone surrogate escaped, as JSON.stringify does)', async (t) => {
  const writes: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString('utf8'))
      cb()
    },
  })
  const log = new AccessLog(createLogger('info', sink))
  const reply = { statusCode: 200, elapsedTime: 1 } as unknown as FastifyReply
  const sent: Array<Record<string, string>> = []
  for (const c of AWKWARD) {
    const fields = { id: `id${c}x`, method: `GE${c}T`, url: `/p${c}q?a=${c}`, ip: `10.0.0.1${c}`, routeName: `r${c}` }
    sent.push(fields)
    log.record(fields as unknown as FastifyRequest, reply)
  }
  log.flush()
  await new Promise((r) => setImmediate(r))
  const lines = writes.join('').split('\n').filter(Boolean)
  t.equal(lines.length, AWKWARD.length, 'one line per request: no raw newline got through')
  lines.forEach((line, i) => {
    const parsed = JSON.parse(line) as { reqId: string; route: string; req: { method: string; url: string; remoteAddress: string } }
    const want = Object.values(sent[i]!)
    const got = [parsed.reqId, parsed.req.method, parsed.req.url, parsed.req.remoteAddress, parsed.route]
    t.same(got, want, `U+${AWKWARD[i]!.codePointAt(0)!.toString(16).padStart(4, '0')}`)
  })
})
