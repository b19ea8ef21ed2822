import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hashPassword } from '../../src/auth/passwords.js'
import { writeKey } from '../../src/cli/keys-generate.js'
import { startGateway } from '../../src/main.js'
import { send } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('reloads keep the throwaway key while no keys are configured, and switch to configured keys when added', async (t) => {
  const up = await startUpstream(t)
  const dir = t.testdir({})
  const file = join(dir, 'gateway.yaml')
  const hash = await hashPassword('pw')
  const yaml = (keys: string, route: string) => `
server: { host: 127.0.0.1, port: 0, logLevel: silent }
auth:
${keys}  identity: [{ type: static, users: [{ username: ann, passwordHash: "${hash}" }] }]
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
  - { name: ${route}, prefix: /${route}, upstream: "${up.url}", auth: none }
`
  await writeFile(file, yaml('', 'one'))
  const gw = await startGateway({ configPath: file, env: {} })
  t.teardown(() => gw.close())
  const login = await send(gw.url, '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-transport': 'token' },
    body: JSON.stringify({ username: 'ann', password: 'pw' }),
  })
  const auth = { authorization: `Bearer ${String(login.json()['accessToken'])}` }

  await writeFile(file, yaml('', 'two'))
  t.equal((await gw.reload()).ok, true)
  t.equal((await send(gw.url, '/two/x')).status, 200, 'the new config serves')
  t.equal((await send(gw.url, '/api/x', { headers: auth })).status, 200, 'a token signed before the reload still verifies')

  const key = await writeKey('ES256', 'k1', dir)
  await writeFile(file, yaml(`  keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: "${key}" }] }\n`, 'three'))
  t.equal((await gw.reload()).ok, true)
  const jwks = (await send(gw.url, '/.well-known/jwks.json')).json<{ keys: Array<{ kid: string }> }>()
  t.same(
    jwks.keys.map((k) => k.kid),
    ['k1'],
    'the configured key replaces the throwaway one',
  )
  t.equal((await send(gw.url, '/api/x', { headers: auth })).json()['code'], 'invalid_token', 'so its tokens no longer verify')
})
