/**
 * `Expect: 100-continue` is answered only after authentication, roles, CSRF and the declared
 * size are decided (issue #14, item 4), through the real GenerationServer (src/main.ts), over
 * raw sockets so that every interim line the client would see is visible.
 */
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { loadKeyring } from '../../src/auth/keys.js'
import { hashPassword } from '../../src/auth/passwords.js'
import { configFrom } from '../helpers/gateway.js'
import { statusOf } from '../helpers/http.js'
import { LISTEN, startRunning } from '../helpers/running.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const KEYS = 'keys: { algorithm: HS256, signing: [{ kid: k1, secret: "0123456789abcdef0123456789abcdef" }] }'

async function gateway(t: Test) {
  const up = await startUpstream(t)
  const yaml = `${LISTEN}auth:
  cookies: { secure: false }
  ${KEYS}
  identity: [{ type: static, users: [{ username: ann, passwordHash: "${await hashPassword('pw')}", roles: [user] }] }]
routes:
  - { name: api, prefix: /api, upstream: "${up.url}", roles: [user] }
  - { name: admin, prefix: /admin, upstream: "${up.url}", roles: [admin] }
  - { name: pub, prefix: /pub, upstream: "${up.url}", auth: none }
`
  const { gw } = await startRunning(t, yaml)
  const keyring = await loadKeyring(configFrom(yaml).auth.keys, 'HS256')
  return { gw, up, token: await makeToken(keyring, { roles: ['user'] }) }
}

/** A raw HTTP/1.1 connection: what the server has sent so far, and whether it has closed. */
function open(base: string) {
  const url = new URL(base)
  const socket: Socket = connect(Number(url.port), url.hostname)
  const state = { text: '', closed: false }
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const w of waiters) w()
  }
  socket.on('data', (c: Buffer) => {
    state.text += c.toString('latin1')
    wake()
  })
  socket.on('close', () => {
    state.closed = true
    wake()
  })
  socket.on('error', () => {})
  t.teardown(() => void socket.destroy())
  return {
    state,
    write: (text: string) => socket.write(text),
    /** Resolves once `test` holds, the socket closes, or 3 s pass. */
    until: (test: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!test() && !state.closed) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          resolve()
        }, 3000)
        waiters.add(check)
        check()
      }),
  }
}

/** Sends a head with `Expect: 100-continue` and no body; returns what came back before the body was sent. */
async function headOnly(base: string, head: string) {
  const conn = open(base)
  conn.write(`${head}Expect: 100-continue\r\n\r\n`)
  // A final answer, complete with its JSON body, or the interim 100 alone.
  await conn.until(
    () => /^HTTP\/1\.1 [2-5]\d\d [\s\S]*\r\n\r\n\{[\s\S]*\}$/.test(conn.state.text) || /^HTTP\/1\.1 100 Continue\r\n\r\n$/.test(conn.state.text),
  )
  return conn
}

const upload = (path: string, headers: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n${headers}`

/** Asserts the answer to a refused head: its 4xx at once, no 100, and the connection closed. */
async function refused(t: Test, base: string, what: string, head: string, status: number, code: string) {
  const conn = await headOnly(base, head)
  const { text } = conn.state
  t.notMatch(text, /100 Continue/, `${what}: no 100 Continue`)
  t.equal(statusOf(text), status, `${what}: ${status} at once`)
  t.match(text, `"code":"${code}"`, `${what}: ${code}`)
  await conn.until(() => false)
  t.ok(conn.state.closed, `${what}: the connection is closed, not kept waiting for the upload`)
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

t.test('on a proxied route, 100 Continue goes out only after authentication, roles, CSRF and the declared size pass', async (t) => {
  const { gw, up, token } = await gateway(t)
  const bearer = `Authorization: Bearer ${token}\r\n`
  await refused(t, gw.url, 'no token', upload('/api/files', '', 100_000), 401, 'missing_token')
  await refused(t, gw.url, 'a bad token', upload('/api/files', 'Authorization: Bearer not.a.token\r\n', 100_000), 401, 'invalid_token')
  await refused(t, gw.url, 'a role it lacks', upload('/admin/files', bearer, 100_000), 403, 'forbidden')
  const crossSite = `Cookie: portcullis_at=${token}\r\nOrigin: https://evil.example\r\n`
  await refused(t, gw.url, 'a cross-site cookie request', upload('/api/files', crossSite, 100_000), 403, 'csrf_rejected')
  await refused(t, gw.url, 'a declared length above server.bodyLimit', upload('/api/files', bearer, 5_000_000), 413, 'payload_too_large')
  t.equal(up.seen.length, 0, 'the upstream saw none of them')

  const body = 'x'.repeat(50_000) + 'end'
  const conn = await headOnly(gw.url, upload('/api/files', bearer, body.length))
  t.equal(conn.state.text, CONTINUE, 'a request that passes gets 100 Continue, before a byte of its body')
  conn.write(body)
  await conn.until(() => /\r\n\r\n[\s\S]*\r\n\r\n\{[\s\S]*\}$/.test(conn.state.text))
  t.equal(statusOf(conn.state.text.slice(CONTINUE.length)), 200, 'then the upstream’s answer')
  t.equal(up.last().body, body, 'the body arrived whole')
  t.equal(up.last().headers['expect'], undefined, 'Expect is not forwarded')
  t.equal(up.last().headers['x-user-id'], 'u-alice')
})

t.test('on the session endpoints, 100 Continue goes out only after the declared size passes', async (t) => {
  const { gw } = await gateway(t)
  const login = (length: number) => upload('/auth/login', 'X-Auth-Transport: token\r\n', length).replace('octet-stream', 'json')
  await refused(t, gw.url, 'a login body above its 16 KiB limit', login(20_000), 413, 'payload_too_large')

  const credentials = JSON.stringify({ username: 'ann', password: 'pw' })
  const conn = await headOnly(gw.url, login(credentials.length))
  t.equal(conn.state.text, CONTINUE, 'a login within the limit gets 100 Continue before its body is read')
  conn.write(credentials)
  await conn.until(() => /"accessToken"[\s\S]*\}$/.test(conn.state.text))
  t.equal(statusOf(conn.state.text.slice(CONTINUE.length)), 200, 'and signs in')
})

t.test('Expect: 100-continue on a bodiless request gets no 100, and an HTTP/1.0 client is served as if it had not sent it', async (t) => {
  const { gw, up } = await gateway(t)
  const bodiless = open(gw.url)
  bodiless.write('GET /pub/x HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\n\r\n')
  await bodiless.until(() => /\r\n\r\n\{[\s\S]*\}$/.test(bodiless.state.text))
  t.equal(statusOf(bodiless.state.text), 200, 'answered at once')
  t.notMatch(bodiless.state.text, /100 Continue/, 'with nothing to upload, nothing to continue (RFC 9110 §10.1.1)')

  // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
  const old = open(gw.url)
  old.write('POST /pub/x HTTP/1.0\r\nHost: gw.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello')
  await old.until(() => false)
  t.match(old.state.text, /^HTTP\/1\.1 200 /, 'HTTP/1.0: no 100, the answer')
  t.equal(up.last().body, 'hello')
})
