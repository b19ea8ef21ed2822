import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import { createHttpSource, MAX_RESPONSE_BYTES } from '../../src/auth/identity/http.js'
import { GatewayError } from '../../src/errors.js'

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void

/** A real user service on 127.0.0.1:0 answering with `handler`; closed after the test. */
async function userService(t: Test, handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => handler(req, body, res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify`
}

const json =
  (status: number, value: unknown): Handler =>
  (_req, _body, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
  }

const unavailable = { name: 'GatewayError', code: 'identity_unavailable', statusCode: 503 }

t.test('a 200 with a subject gives that identity', async (t) => {
  let seen: { method?: string; type?: string; body?: unknown } = {}
  const url = await userService(t, (req, body, res) => {
    seen = { method: req.method, type: req.headers['content-type'], body: JSON.parse(body) }
    json(200, { subject: 'u-1', roles: ['user'], claims: { tenant: 't1', nested: { a: [1] } } })(req, body, res)
  })
  const source = createHttpSource({ url, timeout: 2000 })
  t.same(await source.authenticate('alice', 'pw'), {
    subject: 'u-1',
    roles: ['user'],
    claims: { tenant: 't1', nested: { a: [1] } },
  })
  t.same(seen, { method: 'POST', type: 'application/json', body: { username: 'alice', password: 'pw' } })
})

t.test('roles and claims may be absent or null', async (t) => {
  const absent = createHttpSource({ url: await userService(t, json(200, { subject: 'u-2' })), timeout: 2000 })
  t.same(await absent.authenticate('a', 'b'), { subject: 'u-2', roles: [], claims: {} })
  const nulls = createHttpSource({ url: await userService(t, json(200, { subject: 'u-3', roles: null, claims: null })), timeout: 2000 })
  t.same(await nulls.authenticate('a', 'b'), { subject: 'u-3', roles: [], claims: {} })
})

t.test('reserved claims from the user service are dropped', async (t) => {
  const claims = { iss: 'evil', aud: 'x', sub: 'admin', sid: 's', iat: 1, exp: 9e9, nbf: 0, jti: 'j', roles: ['admin'], team: 'red' }
  const url = await userService(t, (_req, _body, res) => {
    // Written by hand so "__proto__" is a real key of the JSON object.
    res.writeHead(200).end(`{"subject":"u-4","roles":["user"],"claims":${JSON.stringify(claims).slice(0, -1)},"__proto__":{"admin":true}}}`)
  })
  const identity = await createHttpSource({ url, timeout: 2000 }).authenticate('a', 'b')
  t.same(identity, { subject: 'u-4', roles: ['user'], claims: { team: 'red' } })
  t.equal(Object.getPrototypeOf(identity!.claims), Object.prototype, 'the prototype is untouched')
})

t.test('a malformed 200 body is identity_unavailable, never a sign-in', async (t) => {
  const bodies = [
    'not json',
    '',
    '[]',
    'null',
    '"u-1"',
    JSON.stringify({}),
    JSON.stringify({ subject: '' }),
    JSON.stringify({ subject: 42 }),
    JSON.stringify({ subject: 'a\r\nx-user-id: root' }),
    JSON.stringify({ subject: 'x'.repeat(257) }),
    JSON.stringify({ subject: 'u', roles: 'admin' }),
    JSON.stringify({ subject: 'u', roles: [1] }),
    JSON.stringify({ subject: 'u', roles: [''] }),
    JSON.stringify({ subject: 'u', roles: ['user,admin'] }),
    JSON.stringify({ subject: 'u', claims: [] }),
    JSON.stringify({ subject: 'u', claims: 'x' }),
  ]
  for (const body of bodies) {
    const url = await userService(t, (_req, _body, res) => res.writeHead(200).end(body))
    await t.rejects(createHttpSource({ url, timeout: 2000 }).authenticate('a', 'b'), unavailable, JSON.stringify(body))
  }
  const badUtf8 = await userService(t, (_req, _body, res) => res.writeHead(200).end(Buffer.from([0x7b, 0x22, 0x73, 0xff, 0x22, 0x7d])))
  await t.rejects(createHttpSource({ url: badUtf8, timeout: 2000 }).authenticate('a', 'b'), unavailable, 'invalid UTF-8')
})

t.test('401, 403 and 404 mean invalid credentials', async (t) => {
  for (const status of [401, 403, 404]) {
    const url = await userService(t, json(status, { error: 'nope' }))
    t.equal(await createHttpSource({ url, timeout: 2000 }).authenticate('a', 'b'), null, String(status))
  }
})

t.test('any other status is identity_unavailable', async (t) => {
  for (const status of [500, 502, 503, 400, 204, 201]) {
    const url = await userService(t, json(status, { subject: 'u-1' }))
    const err = await createHttpSource({ url, timeout: 2000 })
      .authenticate('a', 'b')
      .catch((e: unknown) => e)
    t.match(err, unavailable, String(status))
    t.ok(err instanceof GatewayError)
  }
})

t.test('a redirect is not followed, so the password is not sent elsewhere', async (t) => {
  let followed = false
  const elsewhere = await userService(t, (req, body, res) => {
    followed = true
    json(200, { subject: 'u-1' })(req, body, res)
  })
  const url = await userService(t, (_req, _body, res) => res.writeHead(307, { location: elsewhere }).end())
  await t.rejects(createHttpSource({ url, timeout: 2000 }).authenticate('a', 'b'), unavailable)
  t.equal(followed, false)
})

t.test('a service that never answers times out as identity_unavailable', async (t) => {
  const url = await userService(t, () => {})
  const started = performance.now()
  await t.rejects(createHttpSource({ url, timeout: 200 }).authenticate('a', 'b'), {
    ...unavailable,
    message: /no answer within 200 ms/,
  })
  t.ok(performance.now() - started < 5000, 'gives up near the configured timeout')
})

t.test('a body that stalls half way times out as identity_unavailable', async (t) => {
  const url = await userService(t, (_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"subject":')
  })
  await t.rejects(createHttpSource({ url, timeout: 200 }).authenticate('a', 'b'), unavailable)
})

t.test('a refused connection is identity_unavailable', async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await t.rejects(createHttpSource({ url: `http://127.0.0.1:${port}/verify`, timeout: 2000 }).authenticate('a', 'b'), {
    ...unavailable,
    message: /request failed/,
  })
})

t.test('an oversized body is identity_unavailable, announced or not', async (t) => {
  const big = JSON.stringify({ subject: 'u', claims: { pad: 'x'.repeat(MAX_RESPONSE_BYTES) } })
  const announced = await userService(t, (_req, _body, res) => res.writeHead(200, { 'content-length': Buffer.byteLength(big) }).end(big))
  await t.rejects(createHttpSource({ url: announced, timeout: 2000 }).authenticate('a', 'b'), unavailable)
  const chunked = await userService(t, (_req, _body, res) => {
    res.writeHead(200)
    for (let i = 0; i < big.length; i += 1000) res.write(big.slice(i, i + 1000))
    res.end()
  })
  await t.rejects(createHttpSource({ url: chunked, timeout: 2000 }).authenticate('a', 'b'), unavailable)
})

t.test('a body just under the cap is read', async (t) => {
  const fit = JSON.stringify({ subject: 'u', claims: { pad: '' } })
  const padded = fit.replace('"pad":""', `"pad":"${'x'.repeat(MAX_RESPONSE_BYTES - fit.length)}"`)
  t.equal(Buffer.byteLength(padded), MAX_RESPONSE_BYTES)
  const url = await userService(t, (_req, _body, res) => res.writeHead(200).end(padded))
  t.equal((await createHttpSource({ url, timeout: 2000 }).authenticate('a', 'b'))?.subject, 'u')
})

t.test('the password appears in no error', async (t) => {
  const password = 'hunter2-SECRET'
  const urls = [
    await userService(t, json(500, {})),
    await userService(t, () => {}),
    await userService(t, (_q, _b, res) => res.writeHead(200).end('x')),
  ]
  for (const url of urls) {
    const err = await createHttpSource({ url, timeout: 200 })
      .authenticate('alice', password)
      .catch((e: unknown) => e)
    t.match(err, unavailable)
    t.notMatch(inspect(err, { depth: 10 }), password)
  }
})

t.test('credentials in the url are sent as Basic auth and kept out of errors', async (t) => {
  let authorization: string | undefined
  const url = await userService(t, (req, body, res) => {
    authorization = req.headers.authorization
    json(500, {})(req, body, res)
  })
  const withCreds = url.replace('http://', 'http://gw:s%40cret@')
  const err = await createHttpSource({ url: withCreds, timeout: 2000 })
    .authenticate('a', 'b')
    .catch((e: unknown) => e)
  t.equal(authorization, `Basic ${Buffer.from('gw:s@cret').toString('base64')}`)
  t.notMatch((err as Error).message, 'cret')
})
