/**
 * Each request's logger (src/ops/request-logger.ts): made only when the request logs, and then
 * writing what a pino child bound to the request id would have written.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Logger } from 'pino'
import t from 'tap'
import { captureLog } from '../helpers/log-capture.js'
import { requestLoggerFactory } from '../../src/ops/request-logger.js'
import { startGateway } from '../helpers/gateway.js'

function capture(level = 'info') {
  const { logger, lines: written } = captureLog(level)
  // pino writes asynchronously to a Writable: lines are read after a turn.
  const lines = async () => {
    await new Promise((r) => setImmediate(r))
    return written()
  }
  // Counts the children made of `logger` (the real pino method does the work).
  let children = 0
  const child = logger.child.bind(logger)
  logger.child = ((...args: Parameters<Logger['child']>) => {
    children++
    return child(...args)
  }) as Logger['child']
  return { logger, lines, children: () => children }
}

t.test('a request that logs nothing makes no child logger', async (t) => {
  const { logger, children } = capture()
  const log = requestLoggerFactory(logger as FastifyBaseLogger, { reqId: 'r-1' }, {})
  log.debug('below the level')
  t.equal(log.level, 'info')
  t.equal((log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('debug'), false)
  t.equal(children(), 0)
  log.info('now')
  log.warn('again')
  t.equal(children(), 1, 'one child, made at the first line and kept')
})

t.test('its lines are those of a pino child bound to the request id', async (t) => {
  const { logger, lines } = capture()
  const log = requestLoggerFactory(logger as FastifyBaseLogger, { reqId: 'r-2' }, {})
  log.info({ code: 'x' }, 'request refused')
  log.error({ err: new Error('boom') }, 'request failed')
  logger.child({ reqId: 'r-2' }).info({ code: 'x' }, 'request refused')
  const [ours, failed, pinos] = await lines()
  t.same({ ...ours, time: 0 }, { ...pinos, time: 0 })
  t.equal(failed!['reqId'], 'r-2')
  t.equal((failed!['err'] as { message: string }).message, 'boom')
})

t.test("a route's own log level is kept without a child until one is needed", async (t) => {
  const { logger, lines, children } = capture()
  const log = requestLoggerFactory(logger as FastifyBaseLogger, { reqId: 'r-3' }, { level: 'warn' })
  t.equal(log.level, 'warn')
  log.info('dropped, as the route asks')
  t.equal(children(), 0)
  log.warn('kept')
  const out = await lines()
  t.same(
    out.map((l) => [l['reqId'], l['msg']]),
    [['r-3', 'kept']],
  )
  t.equal(log.level, 'warn')
})

t.test('a silent route logs nothing, even errors', async (t) => {
  const { logger, lines, children } = capture()
  const log = requestLoggerFactory(logger as FastifyBaseLogger, { reqId: 'r-4' }, { level: 'silent' })
  log.error('nothing')
  t.equal(children(), 0)
  t.same(await lines(), [])
})

t.test('through a gateway, a refused request is logged under its request id', async (t) => {
  const gw = await startGateway(
    t,
    `
auth:
  cookies: { secure: false }
routes:
  - { name: public, prefix: /public, upstream: "http://127.0.0.1:9", auth: none }
`,
  )
  const res = await gw.fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'bad-json-1' },
    body: '{not json',
  })
  t.equal(res.status, 400)
  for (let i = 0; i < 50 && !gw.logs().some((l) => l['msg'] === 'request refused'); i++) await new Promise((r) => setTimeout(r, 10))
  const refused = gw.logs().find((l) => l['msg'] === 'request refused')
  t.equal(refused?.['reqId'], 'bad-json-1')
  t.equal(refused?.['code'], 'invalid_request')
})
