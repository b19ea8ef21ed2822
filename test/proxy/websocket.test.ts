import t from 'tap'
import WebSocket from 'ws'
import { startGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const config = (up: string) => `
routes:
  - { name: ws, prefix: /ws, upstream: "${up}", websocket: true }
  - { name: plain, prefix: /plain, upstream: "${up}" }
`

function open(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })))
    ws.once('error', reject)
  })
}

t.test('a WebSocket upgrade without a token is refused with 401 before reaching the upstream', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await startGateway(t, config(up.url))
  const refused = await open(gw.url.replace('http', 'ws') + '/ws/chat').then(
    () => null,
    (err: { status?: number }) => err.status,
  )
  t.equal(refused, 401)
  t.equal(up.seen.length, 0)
})

t.test('an authenticated WebSocket is proxied with identity headers and no spoofed ones', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring, { sub: 'u-ws' })
  const ws = await open(gw.url.replace('http', 'ws') + '/ws/chat?room=1', {
    authorization: `Bearer ${token}`,
    'x-user-id': 'root',
    x_user_roles: 'admin',
    cookie: `portcullis_at=${token}; app=1`,
  })
  const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
  ws.send('hello')
  t.equal(await reply, 'echo:hello')
  ws.close()
  const seen = up.last()
  t.equal(seen.method, 'WS')
  t.equal(seen.url, '/ws/chat?room=1')
  t.equal(seen.headers['x-user-id'], 'u-ws')
  t.equal(seen.headers['x-user-roles'], 'user')
  t.equal(seen.headers['x_user_roles'], undefined)
  t.equal(seen.headers['authorization'], undefined)
  t.equal(seen.headers['cookie'], 'app=1')
})

t.test('a WebSocket with the access cookie from another origin is refused (cross-site WebSocket hijacking)', async (t) => {
  const up = await startUpstream(t, { websocket: true })
  const gw = await startGateway(t, config(up.url))
  const token = await makeToken(gw.keyring)
  const url = gw.url.replace('http', 'ws') + '/ws/chat'
  const refused = await open(url, { cookie: `__Host-portcullis_at=${token}`, origin: 'https://evil.example' }).then(
    () => null,
    (err: { status?: number }) => err.status,
  )
  t.equal(refused, 403)
  const ws = await open(url, { cookie: `__Host-portcullis_at=${token}`, origin: gw.url })
  const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
  ws.send('ping')
  t.equal(await reply, 'echo:ping')
  ws.close()
  t.equal(up.seen.filter((s) => s.method === 'WS').length, 1, 'only the same-origin one reached the upstream')
})
