import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { decodeProtectedHeader } from 'jose'
import { api, login, refresh, type Tokens } from '../helpers/fleet-client.js'
import { send } from '../helpers/http.js'
import { startManagedFleet } from '../helpers/managed-fleet.js'

const MINUTE = 60_000

t.test('with the memory store, one process rotates its managed keys and keeps every session working', async (t) => {
  const clock = { now: Date.UTC(2026, 10, 27, 12) }
  const fleet = await startManagedFleet(t, { store: 'type: memory', now: () => clock.now, rotateEvery: '1h', publishAhead: '10m' })
  const gw = await fleet.start('')
  let tokens: Tokens = await login(gw.url)
  let mintedAt = clock.now
  const kids = new Set([decodeProtectedHeader(tokens.accessToken).kid])
  const refused: string[] = []
  for (let minute = 1; minute <= 190; minute++) {
    clock.now += MINUTE
    await gw.keys.sync()
    if (clock.now - mintedAt >= 4 * MINUTE) {
      tokens = (await refresh(gw.url, tokens.refreshToken)).json<Tokens>()
      mintedAt = clock.now
      kids.add(decodeProtectedHeader(tokens.accessToken).kid)
    }
    const res = await api(gw.url, tokens.accessToken)
    if (res.status !== 200) refused.push(`minute ${minute}: ${res.status} ${res.body}`)
  }
  t.same(refused, [], 'no valid token refused')
  t.equal(kids.size, 4, 'tokens were signed by four keys in turn')
})

t.test('a reload retimes managed keys, and a switch to key files waits for a restart', async (t) => {
  const fleet = await startManagedFleet(t, { store: 'type: memory', publishAhead: '10m' })
  const gw = await fleet.start('')
  const maxAge = async () => (await send(gw.url, '/.well-known/jwks.json')).headers['cache-control']
  t.equal(await maxAge(), 'public, max-age=300')
  const yaml = readFileSync(fleet.configPath, 'utf8')
  writeFileSync(fleet.configPath, yaml.replace('publishAhead: 10m', 'publishAhead: 2m'))
  t.match(await gw.gw.reload(), { ok: true })
  t.equal(await maxAge(), 'public, max-age=60', 'publishAhead applies at once')

  const kid = gw.keys.signer.kid
  const token = (await login(gw.url)).accessToken
  writeFileSync(
    fleet.configPath,
    yaml
      .replace(/managed: .*$/m, 'signing: [{ kid: h1, secret: "0123456789abcdef0123456789abcdef" }]')
      .replace('algorithm: ES256', 'algorithm: HS256'),
  )
  t.match(await gw.gw.reload(), { ok: true })
  t.match(gw.logText(), /"setting":"auth.keys".*"msg":"this setting only takes effect after a restart"/)
  t.equal(gw.gw.keyring(), gw.keys, 'the managed keys stay in use')
  t.equal(gw.keys.signer.kid, kid)
  t.equal((await api(gw.url, token)).status, 200, 'and tokens they signed still work')
  t.equal(await maxAge(), 'public, max-age=60')
})
