/**
 * Forward-auth's answer before Fastify's routing (src/proxy/verify-early.ts): for a token
 * verified before, the same answer Fastify's route gives (status, headers, access line,
 * metrics), without Fastify; for everything else, Fastify's answer. Each case runs against two
 * gateways of one config: the one tests normally get, and one on Fastify's own server, where
 * the early answer cannot run. Fastify's route handler announces itself on the diagnostics
 * channel `tracing:fastify.request.handler:start`, which tells which path answered.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const NOW = Date.UTC(2026, 11, 3, 12)
const MINUTE = 60_000

/** Requests Fastify's route handlers ran, by URL. */
const handled: string[] = []
const onHandler = (message: unknown) => {
  handled.push((message as { request: { url: string } }).request.url)
}
subscribe('tracing:fastify.request.handler:start', onHandler)
t.teardown(() => unsubscribe('tracing:fastify.request.handler:start', onHandler))

async function setup(t: Test) {
  const up = await startUpstream(t)
  const yaml = `
server: { trustProxy: true }
auth:
  accessTokenTtl: 30m
  identityHeaders: { x-user-email: email }
routes:
  - { name: api, prefix: /api, upstream: "${up.url}", roles: [user] }
  - { name: orders, prefix: /orders, upstream: "${up.url}", identityAssertion: true }
  - { name: payments, prefix: /payments, upstream: "${up.url}", maxAuthAge: 15m }
  - { name: limited, prefix: /limited, upstream: "${up.url}", rateLimit: { max: 2, window: 1m } }
`
  const early = await startGateway(t, yaml, { now: NOW })
  // The same keys, so that one token is good at both.
  const fastify = await startGateway(t, yaml, { now: NOW, keyring: early.keyring, fastifyOnly: true })
  const token = (spec: Parameters<typeof makeToken>[1] = {}) =>
    makeToken(early.keyring, { exp: 1500, sub: 'u-alice', extra: { email: 'alice@example.com', auth_time: Math.floor(NOW / 1000) }, ...spec }, NOW)
  return { early, fastify, token }
}

/** What two answers to one question must share: all but the date and a request id made up. */
async function answerOf(r: Response, keepRequestId: boolean) {
  const headers = Object.fromEntries(
    [...r.headers]
      .filter(([name]) => name !== 'date' && (keepRequestId || name !== 'x-request-id'))
      // ES256 signatures differ each time: an assertion is compared by its claims.
      .map(([name, value]) => [name, name === 'x-portcullis-assertion' ? value.split('.')[1] : value]),
  )
  return { status: r.status, headers, body: await r.text() }
}

/** The last access line, without what differs between two processes' answers to one request. */
function lastLine(gw: TestGateway, keepRequestId: boolean): Record<string, unknown> {
  const line = gw.logs().findLast((l) => l['msg'] === 'request')!
  const { time: _time, ms, reqId, trace_id, pid: _pid, ...rest } = line
  return {
    ...rest,
    msIsNumber: typeof ms === 'number',
    traceIdIsHex: /^[0-9a-f]{32}$/.test(String(trace_id)),
    ...(keepRequestId && { reqId, trace_id }),
  }
}

async function requestsTotal(gw: TestGateway): Promise<string[]> {
  const text = await (await gw.fetch('/metrics')).text()
  return text.split('\n').filter((l) => l.startsWith('portcullis_requests_total{') || l.startsWith('portcullis_request_duration_seconds_count{'))
}

t.test('a token verified before is answered ahead of Fastify, exactly as Fastify answers it', async (t) => {
  const { early, fastify, token } = await setup(t)
  const bearer = `Bearer ${await token({ roles: ['user', 'ops'], sid: 'AAAAAAsession-one' })}`
  const questions: Array<{ name: string; path: string; init: RequestInit; keepRequestId?: boolean }> = [
    {
      name: 'Traefik and Caddy',
      path: '/auth/verify',
      init: { headers: { authorization: bearer, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/a?b=1' } },
    },
    { name: 'nginx', path: '/auth/verify', init: { headers: { authorization: bearer, 'x-original-method': 'POST', 'x-original-uri': '/api/a' } } },
    { name: 'Envoy (path after /verify)', path: '/auth/verify/api/a?q=2', init: { method: 'POST', headers: { authorization: bearer } } },
    { name: 'HEAD', path: '/auth/verify', init: { method: 'HEAD', headers: { authorization: bearer, 'x-forwarded-uri': '/api/a' } } },
    { name: 'a query on the verify path', path: '/auth/verify?from=edge', init: { headers: { authorization: bearer, 'x-forwarded-uri': '/api/a' } } },
    {
      name: 'with a request id, a trace and a client address',
      path: '/auth/verify',
      keepRequestId: true,
      init: {
        headers: {
          authorization: bearer,
          'x-forwarded-uri': '/api/a',
          'x-request-id': 'edge-42',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          'x-forwarded-for': '203.0.113.9, 10.0.0.1',
        },
      },
    },
    {
      name: 'identity headers and a signed assertion',
      path: '/auth/verify',
      init: { headers: { authorization: bearer, 'x-forwarded-uri': '/orders/7' } },
    },
  ]
  for (const q of questions) {
    // The first question verifies the token (Fastify's path on both).
    for (const gw of [early, fastify]) t.equal((await gw.fetch(q.path, q.init)).status, 200, `${q.name}: verified`)
    const before = handled.length
    const earlyAnswer = await answerOf(await early.fetch(q.path, q.init), q.keepRequestId === true)
    t.equal(handled.length, before, `${q.name}: answered without Fastify`)
    const fastifyAnswer = await answerOf(await fastify.fetch(q.path, q.init), q.keepRequestId === true)
    t.equal(handled.length, before + 1, `${q.name}: the other gateway's Fastify route answered`)
    t.equal(earlyAnswer.status, 200, q.name)
    t.same(earlyAnswer, fastifyAnswer, `${q.name}: the same answer`)
    if (q.keepRequestId) t.equal(earlyAnswer.headers['x-request-id'], 'edge-42', 'a sane request id is kept')
    t.same(lastLine(early, q.keepRequestId === true), lastLine(fastify, q.keepRequestId === true), `${q.name}: the same access line`)
  }
  t.match(
    early.logs().find((l) => l['reqId'] === 'edge-42'),
    { trace_id: '0af7651916cd43dd8448eb211c80319c', req: { remoteAddress: '203.0.113.9' }, route: 'api', status: 200 },
    'trace id and client address as Fastify has them',
  )
  t.same(await requestsTotal(early), await requestsTotal(fastify), 'the same request metrics')
})

t.test('anything else goes through Fastify, and gets its answer', async (t) => {
  const { early, fastify, token } = await setup(t)
  const bearer = `Bearer ${await token()}`
  const ask = (gw: TestGateway, uri: string, init: RequestInit = {}, path = '/auth/verify') =>
    gw.fetch(path, {
      ...init,
      headers: { authorization: bearer, ...(uri && { 'x-forwarded-uri': uri }), ...(init.headers as Record<string, string>) },
    })
  for (const gw of [early, fastify]) t.equal((await ask(gw, '/api/a')).status, 200, 'verified')

  const cases: Array<{ name: string; status: number; run: (gw: TestGateway) => Promise<Response> }> = [
    { name: 'no route', status: 404, run: (gw) => ask(gw, '/nowhere') },
    { name: 'a body', status: 200, run: (gw) => ask(gw, '/api/a', { method: 'POST', body: 'x'.repeat(100) }) },
    // (fetch resolves dot-segments itself; an empty segment it leaves for the gateway to collapse.)
    { name: 'a path to normalise', status: 200, run: (gw) => ask(gw, '', {}, '/auth/verify//api/a') },
    {
      name: 'the edge names the request twice, in two ways that disagree',
      status: 400,
      run: (gw) => ask(gw, '/api/a', { headers: { 'x-original-uri': '/orders/1' } }),
    },
    {
      name: 'roles not held',
      status: 403,
      run: async (gw) =>
        gw.fetch('/auth/verify', { headers: { authorization: `Bearer ${await token({ roles: ['guest'] })}`, 'x-forwarded-uri': '/api/a' } }),
    },
  ]
  for (const c of cases) {
    for (const gw of [early, fastify]) {
      const before = handled.length
      const r = await c.run(gw)
      t.equal(r.status, c.status, `${c.name}: ${r.status}`)
      t.equal(handled.length, before + 1, `${c.name}: Fastify's route answered`)
    }
  }

  // A route's rate limit counts every question: two pass, the third is refused.
  for (const gw of [early, fastify]) {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await ask(gw, '/limited/x')).status)
    t.same(statuses, [200, 200, 429], 'a rate-limited route is counted on every question')
  }

  // maxAuthAge: a sign-in that was recent when the token was verified is stale 16 minutes on.
  for (const gw of [early, fastify]) t.equal((await ask(gw, '/payments/1')).status, 200, 'recent sign-in')
  early.clock.now += 16 * MINUTE
  fastify.clock.now += 16 * MINUTE
  for (const gw of [early, fastify]) {
    const stale = await ask(gw, '/payments/1')
    t.equal(stale.status, 401, 'a stale sign-in is refused on a route with maxAuthAge, cached token or not')
    t.match(await stale.json(), { code: 'reauthentication_required' })
  }
})

t.test('a session ended after its token was verified is refused at once', async (t) => {
  const { early, token } = await setup(t)
  const bearer = `Bearer ${await token({ sid: 'AAAAAAsession-two' })}`
  const ask = () => early.fetch('/auth/verify', { headers: { authorization: bearer, 'x-forwarded-uri': '/api/a' } })
  t.equal((await ask()).status, 200)
  const before = handled.length
  t.equal((await ask()).status, 200, 'answered early')
  t.equal(handled.length, before)
  early.revocations.apply({ type: 'session', sessionId: 'AAAAAAsession-two', forgetAfter: NOW + 60 * MINUTE })
  const ended = await ask()
  t.equal(ended.status, 401, 'refused')
  t.match(await ended.json(), { code: 'token_revoked' })
  t.equal(handled.length, before + 1, 'by Fastify')
  early.revocations.apply({ type: 'user', subject: 'u-alice', notBefore: NOW + MINUTE, forgetAfter: NOW + 60 * MINUTE })
  const other = `Bearer ${await token({ sid: 'AAAAAAsession-three' })}`
  const r = await early.fetch('/auth/verify', { headers: { authorization: other, 'x-forwarded-uri': '/api/a' } })
  t.equal(r.status, 401, 'every session of a user logged out everywhere')
})

t.test('a cookie-authenticated question is judged by Fastify (CSRF)', async (t) => {
  const { early, token } = await setup(t)
  const access = await token()
  const cookie = `__Host-portcullis_at=${access}`
  const ask = (method: string, origin: string) =>
    early.fetch('/auth/verify', { headers: { cookie, origin, 'x-forwarded-method': method, 'x-forwarded-uri': '/api/a' } })
  t.equal((await ask('GET', 'https://evil.example')).status, 200, 'a safe method needs no CSRF check')
  const before = handled.length
  const forged = await ask('POST', 'https://evil.example')
  t.equal(forged.status, 403, 'a cross-site unsafe request is refused')
  t.equal(handled.length, before + 1)
})

t.test('a closing gateway answers 503, as Fastify does, not from its early path', async (t) => {
  const { early, token } = await setup(t)
  const bearer = `Bearer ${await token()}`
  t.equal((await early.fetch('/auth/verify', { headers: { authorization: bearer, 'x-forwarded-uri': '/api/a' } })).status, 200, 'verified')
  const address = early.url.replace('http://', '').split(':')
  // A question whose head is still arriving when the gateway begins to close (its connection is
  // not idle, so closing leaves it open), finished once Fastify's preClose hooks have run.
  const socket = connect(Number(address[1]), address[0])
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`GET /auth/verify HTTP/1.1\r\nhost: x\r\nauthorization: ${bearer}\r\nx-forwarded-uri: /api/a\r\n`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const closed = early.app.close()
  await new Promise((resolve) => setImmediate(resolve))
  const answer = new Promise<string>((resolve) => {
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (!text.includes('\r\n\r\n')) return
      resolve(text)
      socket.destroy()
    })
  })
  socket.write('\r\n')
  const text = await answer
  await closed
  t.match(text, /^HTTP\/1\.1 503 /, `503 while closing: ${text.split('\r\n')[0]}`)
})
