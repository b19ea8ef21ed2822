import t from 'tap'
import { hashPassword } from '../../src/auth/passwords.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'

const HINT = /X-Forwarded-Proto: https was refused csrf_rejected while server\.trustProxy is off/

const config = (hash: string, trustProxy: boolean) => `
server: { trustProxy: ${trustProxy} }
auth:
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${hash}" }] }]
`

/** A browser's cookie-mode sign-in on https://<the gateway's host>, as a TLS-terminating load balancer forwards it. */
function signInThroughHttpsProxy(gw: TestGateway) {
  return gw.fetch('/auth/login', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: `https://${new URL(gw.url).host}`,
      'x-forwarded-proto': 'https',
    },
    body: JSON.stringify({ username: 'ann', password: 'pw' }),
  })
}

const hints = (gw: TestGateway) => gw.logs().filter((l) => HINT.test(String(l['msg'])))

t.test('a sign-in refused because trustProxy is off behind an HTTPS proxy is explained in the log, once', async (t) => {
  const gw = await startGateway(t, config(await hashPassword('pw'), false))
  for (let i = 0; i < 3; i++) {
    const answer = await signInThroughHttpsProxy(gw)
    t.equal(answer.status, 403)
    t.equal(((await answer.json()) as { code: string }).code, 'csrf_rejected')
  }
  const [hint, ...more] = hints(gw)
  t.ok(hint, 'a warning says why')
  t.equal(hint!['level'], 40)
  t.equal(hint!['forwardedProto'], 'https')
  t.equal(hint!['gatewayOrigin'], `http://${new URL(gw.url).host}`)
  t.match(String(hint!['msg']), /Set server\.trustProxy: true/)
  t.equal(more.length, 0, 'not once per request')
})

t.test('a cross-origin refusal without X-Forwarded-Proto, and a sign-in with trustProxy on, log no such warning', async (t) => {
  const hash = await hashPassword('pw')
  const off = await startGateway(t, config(hash, false))
  const plain = await off.fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: 'https://elsewhere.example' },
    body: JSON.stringify({ username: 'ann', password: 'pw' }),
  })
  t.equal(plain.status, 403)
  t.equal(hints(off).length, 0)

  const on = await startGateway(t, config(hash, true))
  t.equal((await signInThroughHttpsProxy(on)).status, 200, "trustProxy on: the https origin is the gateway's own")
  t.equal(hints(on).length, 0)
})
