/**
 * The access log (src/ops/access-log.ts): its lines read like every other pino line, secrets
 * in the query are masked, lines of one event-loop turn go out in one write, and a process
 * that exits right away still writes what it had.
 */
import { execFileSync } from 'node:child_process'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { AccessLog } from '../../src/ops/access-log.js'
import { captureLog } from '../helpers/log-capture.js'

const request = (url: string, routeName = 'api') => ({ id: 'req-1', method: 'GET', url, ip: '10.0.0.7', routeName }) as unknown as FastifyRequest
const reply = { statusCode: 200, elapsedTime: 1.26 } as unknown as FastifyReply
const turn = () => new Promise((r) => setImmediate(r))

t.test('a line has the fields and the order of a pino line with the same content', async (t) => {
  const { logger, writes, lines } = captureLog()
  const log = new AccessLog(logger)
  log.record(request('/api/x?a=1&access_token=abc.def'), reply)
  await turn()
  logger
    .child({ reqId: 'req-1' })
    .info({ req: { method: 'GET', url: '/api/x?a=1&access_token=abc.def', ip: '10.0.0.7' }, route: 'api', status: 200, ms: 1.3 }, 'request')
  const [ours, pinos] = lines()
  t.same(Object.keys(ours!), Object.keys(pinos!), 'same keys, same order')
  t.same({ ...ours, time: 0 }, { ...pinos, time: 0 })
  t.same(ours!['req'], { method: 'GET', url: '/api/x?a=1&access_token=[redacted]', remoteAddress: '10.0.0.7' })
  t.notMatch(writes.join(''), /abc\.def/)
})

t.test('a route-less request has no route field; odd characters in the path stay valid JSON', async (t) => {
  const { logger, lines } = captureLog()
  const log = new AccessLog(logger)
  log.record(request('/"quoted"\\path\u2028', ''), reply)
  log.record({ ...request('/no-peer'), ip: undefined } as unknown as FastifyRequest, reply)
  await turn()
  const [line, noPeer] = lines()
  t.notOk('route' in line!)
  t.same(noPeer!['req'], { method: 'GET', url: '/no-peer' }, 'no peer address: no field, as pino leaves it out')
  t.equal((line!['req'] as { url: string }).url, '/"quoted"\\path\u2028')
})

t.test('lines finished in one turn of the event loop go out in one write, and not later than the turn', async (t) => {
  const { logger, writes, lines } = captureLog()
  const log = new AccessLog(logger)
  for (let i = 0; i < 50; i++) log.record(request(`/api/${i}`), reply)
  t.equal(writes.length, 0, 'nothing written mid-turn')
  await turn()
  t.equal(writes.length, 1, 'one write for the turn')
  t.equal(lines().length, 50)
  log.record(request('/api/next'), reply)
  await turn()
  t.equal(writes.length, 2, 'the next turn writes its own line')
})

t.test('a batch that grows large is written without waiting for the turn to end', async (t) => {
  const { logger, writes, lines } = captureLog()
  const log = new AccessLog(logger)
  const long = '/api/' + 'x'.repeat(2000)
  for (let i = 0; i < 40; i++) log.record(request(long), reply)
  t.ok(writes.length >= 1, 'written before the turn ended')
  await turn()
  t.equal(lines().length, 40, 'and nothing lost')
})

t.test('above info level, no access lines', async (t) => {
  const { logger, writes } = captureLog('warn')
  new AccessLog(logger).record(request('/api/x'), reply)
  await turn()
  t.equal(writes.length, 0)
})

t.test('a process that exits right after a request still writes its line', async (t) => {
  const script = `
    import { createLogger } from './src/ops/logger.ts'
    import { AccessLog } from './src/ops/access-log.ts'
    new AccessLog(createLogger('info')).record({ id: 'r', method: 'GET', url: '/last', ip: '::1', routeName: '' }, { statusCode: 204, elapsedTime: 0 })
    process.exit(0)
  `
  // Transpiled only: FastifyRequest.routeName is declared in src/app.ts, which this script does not load.
  const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' }
  const out = execFileSync(process.execPath, ['--import', '@tapjs/typescript/import', '--input-type=module', '-e', script], { encoding: 'utf8', env })
  t.match(JSON.parse(out.trim()), { msg: 'request', status: 204, req: { url: '/last' } })
})

t.test('an answer cut short is logged with who cut it; a client that left before any of it gets 499', async (t) => {
  const { logger, lines } = captureLog()
  const log = new AccessLog(logger)
  const cut = (headersSent: boolean) => ({ statusCode: 200, elapsedTime: 3, raw: { headersSent } }) as unknown as FastifyReply
  log.record(request('/api/a'), cut(false), 'client')
  log.record(request('/api/b'), cut(true), 'client')
  log.record(request('/api/c'), cut(true), 'upstream')
  log.record(request('/api/d'), reply)
  await turn()
  t.match(lines(), [{ status: 499, cutShort: 'client' }, { status: 200, cutShort: 'client' }, { status: 200, cutShort: 'upstream' }, { status: 200 }])
  t.notOk('cutShort' in lines()[3]!, 'a finished answer has no cutShort field')
})
