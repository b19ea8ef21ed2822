import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/ops/logger.js'
import { isSecretName, maskQuerySecrets } from '../../src/ops/query-secrets.js'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('credential-looking parameter names are recognised in any case and spelling', async (t) => {
  const secret = [
    'refreshToken',
    'AccessToken',
    'access_token',
    'ACCESS-TOKEN',
    'id_token',
    'token',
    'api_key',
    'apikey',
    'X-API-Key',
    'key',
    'client_secret',
    'password',
    'Passwd',
    'pwd',
    'pass',
    'auth',
    'oauth_verifier',
    'Authorization',
    'session',
    'JSESSIONID',
    'PHPSESSID',
    'code',
    'device_code',
    'X-Amz-Signature',
    'sig',
    'X-Amz-Credential',
    'client_assertion',
    'jwt',
    'SAMLResponse',
    'user[password]',
    'access%5Ftoken',
    'totp',
  ]
  const plain = ['page', 'q', 'author', 'authority', 'zipcode', 'sort', 'keyword', 'limit', 'state', 'redirect_uri', 'signed']
  for (const name of secret) t.ok(isSecretName(name), `${name} is masked`)
  for (const name of plain) t.notOk(isSecretName(name), `${name} is kept`)
})

t.test('only the values of credential parameters are masked, names and everything else kept', async (t) => {
  t.equal(maskQuerySecrets('/api/x'), '/api/x')
  t.equal(
    maskQuerySecrets('/api/x?refreshToken=abc&AccessToken=def&api_key=x&page=2'),
    '/api/x?refreshToken=[redacted]&AccessToken=[redacted]&api_key=[redacted]&page=2',
  )
  t.equal(maskQuerySecrets('/a&token=path?flag&q=1;password=p&token='), '/a&token=path?flag&q=1;password=[redacted]&token=[redacted]')
  t.equal(maskQuerySecrets('/x?%zz=1&sig=%zz'), '/x?%zz=1&sig=[redacted]', 'a bad escape is no reason to log a secret')
  t.equal(maskQuerySecrets('/x?%74oken=abc&page=2'), '/x?%74oken=[redacted]&page=2', 'an escaped name is judged decoded')
  t.equal(maskQuerySecrets('/x?page=2&sort=desc'), '/x?page=2&sort=desc')
})

t.test('the access log of a real gateway masks refreshToken, AccessToken and api_key and keeps page=2', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `routes:\n  - { name: open, prefix: /open, upstream: "${up.url}", auth: none }\n`)
  t.equal((await gw.fetch('/open/x?refreshToken=abc1&AccessToken=def2&api_key=ghi3&page=2')).status, 200)
  t.equal(up.last().url, '/open/x?refreshToken=abc1&AccessToken=def2&api_key=ghi3&page=2', 'the upstream still gets the query as sent')
  const line = gw.logs().find((l) => l['msg'] === 'request')
  t.same(line?.['req'], {
    method: 'GET',
    url: '/open/x?refreshToken=[redacted]&AccessToken=[redacted]&api_key=[redacted]&page=2',
    remoteAddress: '127.0.0.1',
  })
  t.notMatch(gw.logText(), /abc1|def2|ghi3/)
})

t.test("pino's request serializer masks them the same way", async (t) => {
  let text = ''
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8')
      cb()
    },
  })
  createLogger('info', sink).info({ req: { method: 'GET', url: '/x?refresh_token=abc1&Session=def2&page=2' } }, 'failed')
  t.match(text, /"url":"\/x\?refresh_token=\[redacted\]&Session=\[redacted\]&page=2"/)
  t.notMatch(text, /abc1|def2/)
})
