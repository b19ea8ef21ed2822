import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('a client that keeps sending forged tokens gets 429 without further verification, and recovers after the window', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
rateLimits:
  invalidTokens:
    perClient: { max: 3, window: 10s }
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`,
  )
  const good = await makeToken(gw.keyring, {}, gw.clock.now)
  const [h, p] = good.split('.') as [string, string]
  const forged = `${h}.${p}.${'A'.repeat(86)}`
  const call = (token: string) => send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}` } })

  t.equal((await call(good)).status, 200, 'a good token, now in the verified-token cache')
  for (let i = 0; i < 3; i++) t.equal((await call(forged)).status, 401, `forged #${i + 1} is verified and refused`)
  const limited = await call(forged)
  t.equal(limited.status, 429)
  t.equal(limited.json()['code'], 'rate_limited')
  t.equal(limited.headers['retry-after'], '10')
  t.equal((await call(good)).status, 200, 'a cached good token from the same address still passes')
  const fresh = await makeToken(gw.keyring, { sub: 'u-new' }, gw.clock.now)
  t.equal((await call(fresh)).status, 429, 'a token that would need verifying waits for the window')

  gw.clock.now += 10_000
  t.equal((await call(forged)).status, 401, 'a new window verifies again')
  t.equal((await call(fresh)).status, 200)
})

t.test('expired tokens are an ordinary event and do not use up the budget', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
rateLimits:
  invalidTokens:
    perClient: { max: 2, window: 10s }
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`,
  )
  const call = (token: string) => send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}` } })
  for (let i = 0; i < 5; i++) {
    const expired = await makeToken(gw.keyring, { sub: `u-${i}`, iat: -700, exp: -100 }, gw.clock.now)
    t.equal((await call(expired)).json()['code'], 'token_expired')
  }
  t.equal((await call(await makeToken(gw.keyring, {}, gw.clock.now))).status, 200)
})
