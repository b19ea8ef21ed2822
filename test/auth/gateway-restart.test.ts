import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hashPassword } from '../../src/auth/passwords.js'
import { writeKey } from '../../src/cli/keys-generate.js'
import { startGateway } from '../../src/main.js'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('sessions live on in Redis across a gateway restart, and so do their revocations', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'k1', dir)
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `
server: { host: 127.0.0.1, port: 0, logLevel: silent }
auth:
  keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: "${key}" }] }
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${await hashPassword('pw')}" }] }]
store: { type: redis, url: "${redis.url}" }
routes:
  - { name: api, prefix: /api, upstream: "${up.url}" }
`,
  )
  const json = { 'content-type': 'application/json', 'x-auth-transport': 'token' }
  const login = async (url: string) =>
    (await send(url, '/auth/login', { method: 'POST', headers: json, body: JSON.stringify({ username: 'ann', password: 'pw' }) })).json<{
      accessToken: string
      refreshToken: string
    }>()

  const first = await startGateway({ configPath: file, env: {} })
  const kept = await login(first.url)
  const ended = await login(first.url)
  t.equal((await send(first.url, '/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${ended.accessToken}` } })).status, 204)
  await first.close()

  const second = await startGateway({ configPath: file, env: {} })
  t.teardown(() => second.close())
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  // The revoked set is loaded before the instance starts serving, not a retry later.
  t.equal((await send(second.url, '/readyz')).status, 200, 'ready as soon as it has started')
  t.equal((await send(second.url, '/api/x', { headers: bearer(kept.accessToken) })).status, 200, 'an access token from before the restart')
  const refreshed = await send(second.url, '/auth/refresh', {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ refreshToken: kept.refreshToken }),
  })
  t.equal(refreshed.status, 200, 'a refresh token from before the restart rotates')
  t.equal(
    (await send(second.url, '/api/x', { headers: bearer(ended.accessToken) })).json()['code'],
    'token_revoked',
    'a session ended before the restart stays ended',
  )
  const sessions = await send(second.url, '/auth/sessions', { headers: bearer(refreshed.json<{ accessToken: string }>().accessToken) })
  t.equal(sessions.json<{ sessions: unknown[] }>().sessions.length, 1)
})
