import t from 'tap'
import { normalizeTarget, RouteTable } from '../../src/proxy/normalize.js'
import { startGateway } from '../helpers/gateway.js'
import { raw, statusOf } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('normalisation resolves dot-segments and refuses what upstreams read differently', async (t) => {
  const table: Array<[string, string | null]> = [
    ['/api/x', '/api/x'],
    ['/api/x?a=1&b=/../', '/api/x?a=1&b=/../'],
    ['/public/../api', '/api'],
    ['/public/./x', '/public/x'],
    ['/public/%2e%2e/api', '/api'],
    ['/public/%2E%2E/api', '/api'],
    ['/public/.%2e/api', '/api'],
    ['//api//x', '/api/x'],
    ['/api/x/', '/api/x/'],
    ['/..', null],
    ['/../etc/passwd', null],
    ['/public/..%2fapi', null],
    ['/public/%2e%2e%2fapi', null],
    ['/public%2fapi', null],
    ['/public/..%5capi', null],
    ['/public\\..\\api', null],
    ['/public/..;/api', null],
    ['/public/.;x/api', null],
    ['/api;jsessionid=1/x', null],
    ['/api/x;jsessionid=1', '/api/x;jsessionid=1'],
    ['/public/%00', null],
    ['/bad%zzescape', null],
    ['/not-utf8/%ff', null],
    ['/with#fragment', null],
    ['http://evil.example/api/x', '/api/x'],
    ['HTTP://evil.example', '/'],
    ['http://evil.example?x=1', '/?x=1'],
    ['*', null],
    ['api/x', null],
  ]
  const routes = new RouteTable(['/public', '/api'])
  for (const [input, expected] of table) t.equal(normalizeTarget(input, routes), expected, input)
})

t.test('the path-confusion table over a real gateway: no request reaches a route its normalised path does not match', async (t) => {
  const pub = await startUpstream(t)
  const api = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
routes:
  - { name: public, prefix: /public, upstream: "${pub.url}", auth: none }
  - { name: api, prefix: /api, upstream: "${api.url}" }
`,
  )
  const get = (target: string, extra = '') => raw(gw.url, `GET ${target} HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n`)
  const cases: Array<[string, number]> = [
    ['/public/../api/secret', 401],
    ['/public/%2e%2e/api/secret', 401],
    ['/public/%2E%2E/api/secret', 401],
    ['/public/..%2fapi/secret', 400],
    ['/public%2f..%2fapi/secret', 400],
    ['/public/..;/api/secret', 400],
    ['/public/..%5capi/secret', 400],
    ['//public/x', 200],
    ['/public//x', 200],
    ['/public/;/x', 200],
    ['/public/x/../../../etc/passwd', 400],
    ['http://evil.example/api/secret', 401],
    ['http://evil.example/public/x', 200],
    ['/public/%00', 400],
    ['/public/%zz', 400],
    ['/public/%ff', 400],
    ['/api/%ff', 400],
    ['/public/%c0%ae%c0%ae/api', 400],
    ['*', 400],
  ]
  for (const [target, status] of cases) {
    const answer = await get(target)
    t.equal(statusOf(answer), status, target)
    if (status === 400) t.match(answer, /"code":"invalid_request"/, `${target} is JSON`)
  }
  t.equal(api.seen.length, 0, 'the protected upstream saw nothing')
  t.ok(
    pub.seen.every((s) => !s.url.includes('..') && !/%2e/i.test(s.url) && !s.url.includes('//')),
    'the public upstream only saw normalised paths',
  )
  t.ok(pub.seen.some((s) => s.url === '/public/x'))

  const token = await makeToken(gw.keyring)
  t.equal(statusOf(await get('/public/../api/ok', `Authorization: Bearer ${token}\r\n`)), 200)
  t.equal(api.last().url, '/api/ok', 'the upstream receives the normalised path')
})
