import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/ops/logger.js'

function capture() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line))
      cb()
    },
  })
  return { logger: createLogger('info', sink), lines }
}

t.test('a logged request keeps method, path and peer, never headers or query secrets', async (t) => {
  const { logger, lines } = capture()
  const req = {
    method: 'GET',
    url: '/api/x?a=1&access_token=abc.def&password=hunter2',
    ip: '10.0.0.7',
    headers: { authorization: 'Bearer abc.def', cookie: 'pc_refresh=secret' },
  }
  logger.info({ req }, 'request')
  logger.info({ req: { ...req, url: '/plain' } }, 'request')
  t.same(lines[0]!['req'], { method: 'GET', url: '/api/x?a=1&access_token=[redacted]&password=[redacted]', remoteAddress: '10.0.0.7' })
  t.same(lines[1]!['req'], { method: 'GET', url: '/plain', remoteAddress: '10.0.0.7' })
  t.notMatch(JSON.stringify(lines), /abc\.def|hunter2|secret/)
})

t.test('credential fields are censored wherever our own lines could carry them', async (t) => {
  const { logger, lines } = capture()
  logger.info({ password: 'hunter2', refreshToken: 'r1', body: { password: 'p2' }, headers: { authorization: 'Bearer x' } }, 'oops')
  t.equal(lines[0]!['password'], '[redacted]')
  t.equal(lines[0]!['refreshToken'], '[redacted]')
  t.same(lines[0]!['body'], { password: '[redacted]' })
  t.same(lines[0]!['headers'], { authorization: '[redacted]' })
})

t.test('every line carries its own ISO time, also when lines share a millisecond', async (t) => {
  const { logger, lines } = capture()
  const before = Date.now()
  logger.info('one')
  logger.info('two')
  await new Promise((r) => setTimeout(r, 5))
  logger.info('three')
  const times = lines.map((l) => Date.parse(String(l['time'])))
  for (const time of times) t.ok(time >= before && time <= Date.now(), 'a real time')
  t.match(String(lines[0]!['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.ok(times[2]! > times[0]!, 'a later line has a later time')
})

t.test('on stdout, a lone line is written within about a second, with no later line to push it out', async (t) => {
  // The child logs one line, says so on stderr and stays alive: the line must not wait for its exit.
  const script = `
    import { createLogger } from './src/ops/logger.ts'
    createLogger('info').info('alone')
    process.stderr.write('logged')
    setTimeout(() => {}, 10_000)
  `
  const child = spawn(process.execPath, ['--import', '@tapjs/typescript/import', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => void child.kill())
  const line = once(child.stdout, 'data') as Promise<[Buffer]>
  await once(child.stderr, 'data')
  const logged = performance.now()
  const [chunk] = await line
  const waited = performance.now() - logged
  t.match(JSON.parse(chunk.toString('utf8').trim()), { msg: 'alone' })
  t.ok(waited < 2500, `written ${Math.round(waited)} ms after it was logged, long before the process ended`)
})
