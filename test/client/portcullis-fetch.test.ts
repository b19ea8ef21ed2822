/**
 * The fetch helper (client/portcullis-fetch.js) against a real HTTP server on 127.0.0.1 that
 * plays the gateway: an access cookie that goes stale, a refresh endpoint that renews it (or
 * refuses, fails, hangs), and counters for every request.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { createAuthFetch, type SessionEnded } from '../../client/portcullis-fetch.js'
import { cookieFetch } from '../helpers/cookie-fetch.js'

interface FakeGateway {
  url: string
  /** The access cookie value the server accepts now; a refresh moves it on. */
  token: number
  refreshes: number
  apiBodies: string[]
  /** 'ok', an HTTP status with a code, or 'hang'. */
  refreshAnswer: 'ok' | 'hang' | { status: number; code: string }
  /** What a stale call gets. */
  apiRefusal: { status: number; code: string; type?: string }
  /** When true, no access cookie is good enough. */
  alwaysRefuse: boolean
}

async function fakeGateway(t: Test): Promise<FakeGateway> {
  const state: FakeGateway = {
    url: '',
    token: 1,
    refreshes: 0,
    apiBodies: [],
    refreshAnswer: 'ok',
    apiRefusal: { status: 401, code: 'token_expired' },
    alwaysRefuse: false,
  }
  const json = (res: ServerResponse, status: number, body: unknown, type = 'application/problem+json') => {
    res.writeHead(status, { 'content-type': type })
    res.end(JSON.stringify(body))
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const presented = /(?:^|; )at=(\d+)/.exec(req.headers.cookie ?? '')?.[1]
      if (url.pathname === '/auth/refresh' && req.method === 'POST') {
        state.refreshes++
        const answer = state.refreshAnswer
        if (answer === 'hang') return
        // Slow enough that concurrent callers overlap with it.
        return void setTimeout(() => {
          if (answer !== 'ok') return json(res, answer.status, { status: answer.status, code: answer.code })
          state.token++
          res.setHeader('set-cookie', `at=${state.token}; Path=/; HttpOnly`)
          json(res, 200, { tokenType: 'Bearer' }, 'application/json')
        }, 40)
      }
      state.apiBodies.push(Buffer.concat(chunks).toString('utf8'))
      const delay = Number(url.searchParams.get('delay') ?? 0)
      setTimeout(() => {
        // Judged on the cookie the call was sent with, as a gateway does.
        if (!state.alwaysRefuse && presented === String(state.token)) return json(res, 200, { ok: true, token: state.token }, 'application/json')
        const { status, code, type } = state.apiRefusal
        if (type) {
          res.writeHead(status, { 'content-type': type })
          return void res.end(code)
        }
        json(res, status, { status, code })
      }, delay)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return state
}

/** A signed-in browser whose access cookie has gone stale (the server moved on to token 2). */
async function staleSession(t: Test) {
  const gw = await fakeGateway(t)
  const jar = cookieFetch()
  jar.jar.set('at', '1')
  gw.token = 2
  const ended: SessionEnded[] = []
  const make = (more: Parameters<typeof createAuthFetch>[0] = {}) =>
    createAuthFetch({ basePath: `${gw.url}/auth`, fetch: jar, onSessionEnded: (e) => ended.push(e), crossTab: false, ...more })
  return { gw, jar, ended, make, authFetch: make() }
}

t.test('concurrent calls with a stale token share one refresh, then all succeed', async (t) => {
  const { gw, authFetch } = await staleSession(t)
  const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => authFetch(`${gw.url}/api/${i}`)))
  t.same(
    answers.map((r) => r.status),
    [200, 200, 200, 200, 200],
  )
  t.equal(gw.refreshes, 1)
  t.equal(gw.apiBodies.length, 10, 'each call sent twice: once stale, once renewed')
})

t.test('a 401 that arrives after another call already refreshed is retried without a second refresh', async (t) => {
  const { gw, authFetch } = await staleSession(t)
  const slow = authFetch(`${gw.url}/api/slow?delay=250`)
  const fast = await authFetch(`${gw.url}/api/fast`)
  t.equal(fast.status, 200)
  t.equal(gw.refreshes, 1, 'the fast call refreshed')
  t.equal((await slow).status, 200)
  t.equal(gw.refreshes, 1, 'the slow call reused that refresh')
})

t.test('a session that stays broken gets a bounded number of refreshes, never a loop', async (t) => {
  for (const [maxRetries, expected] of [
    [1, 1],
    [3, 3],
    [0, 0],
    [1e9, 10],
    [-2, 0],
  ] as const) {
    const { gw, make } = await staleSession(t)
    gw.alwaysRefuse = true
    const res = await make({ maxRetries })(`${gw.url}/api/x`)
    t.equal(res.status, 401, `maxRetries ${maxRetries}`)
    t.equal(gw.refreshes, expected, `maxRetries ${maxRetries}: refreshes`)
    t.equal(gw.apiBodies.length, expected + 1, `maxRetries ${maxRetries}: calls`)
  }
})

t.test('a refused refresh ends the session once, and callers get the original 401', async (t) => {
  const { gw, authFetch, ended } = await staleSession(t)
  gw.refreshAnswer = { status: 401, code: 'refresh_token_reused' }
  const answers = await Promise.all([1, 2, 3].map((i) => authFetch(`${gw.url}/api/${i}`)))
  t.same(
    answers.map((r) => r.status),
    [401, 401, 401],
  )
  t.same(
    await Promise.all(answers.map(async (r) => ((await r.json()) as { code: string }).code)),
    ['token_expired', 'token_expired', 'token_expired'],
    'bodies are intact',
  )
  t.equal(gw.refreshes, 1)
  t.same(ended, [{ code: 'refresh_token_reused', otherTab: false }])
  t.equal(gw.apiBodies.length, 3, 'nothing was retried')
})

t.test('a refresh that fails for another reason, or hangs, does not end the session', async (t) => {
  const failing = await staleSession(t)
  failing.gw.refreshAnswer = { status: 503, code: 'store_unavailable' }
  t.equal((await failing.authFetch(`${failing.gw.url}/api/x`)).status, 401)
  t.same(failing.ended, [])

  const hanging = await staleSession(t)
  hanging.gw.refreshAnswer = 'hang'
  const started = Date.now()
  const res = await hanging.make({ refreshTimeout: 200 })(`${hanging.gw.url}/api/x`)
  t.equal(res.status, 401)
  t.ok(Date.now() - started < 2000, 'the refresh was abandoned after refreshTimeout')
  t.same(hanging.ended, [])
})

t.test('every stale-token code is refreshed; other 401s and other statuses are left alone', async (t) => {
  for (const code of ['token_expired', 'missing_token', 'token_revoked', 'invalid_token']) {
    const { gw, authFetch } = await staleSession(t)
    gw.apiRefusal = { status: 401, code }
    t.equal((await authFetch(`${gw.url}/api/x`)).status, 200, code)
    t.equal(gw.refreshes, 1, code)
  }
  const refusals = [
    { status: 401, code: 'invalid_credentials' },
    { status: 401, code: 'token_expired', type: 'text/plain' },
    { status: 403, code: 'token_expired' },
    { status: 403, code: 'csrf_rejected' },
  ]
  for (const refusal of refusals) {
    const { gw, authFetch } = await staleSession(t)
    gw.apiRefusal = refusal
    t.equal((await authFetch(`${gw.url}/api/x`)).status, refusal.status, JSON.stringify(refusal))
    t.equal(gw.refreshes, 0, JSON.stringify(refusal))
  }
})

t.test('a body is sent again on the retry, from init or from a Request', async (t) => {
  const { gw, authFetch } = await staleSession(t)
  const res = await authFetch(`${gw.url}/api/x`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 200)
  t.same(gw.apiBodies, ['{"n":1}', '{"n":1}'])
  gw.token++ // stale again
  const request = new Request(`${gw.url}/api/y`, { method: 'PUT', body: 'second' })
  t.equal((await authFetch(request)).status, 200)
  t.same(gw.apiBodies.slice(2), ['second', 'second'])
  t.equal(request.bodyUsed, false, "the caller's Request is left unread")
})

t.test('a streamed body cannot be replayed, so its 401 is returned as is', async (t) => {
  const { gw, authFetch } = await staleSession(t)
  const body = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('streamed'))
      c.close()
    },
  })
  const res = await authFetch(`${gw.url}/api/x`, { method: 'POST', body, duplex: 'half' } as RequestInit)
  t.equal(res.status, 401)
  t.equal(gw.refreshes, 0)
  t.same(gw.apiBodies, ['streamed'])
})

t.test('a fresh token needs no refresh at all', async (t) => {
  const { gw, jar, authFetch } = await staleSession(t)
  jar.jar.set('at', String(gw.token))
  t.equal((await authFetch(`${gw.url}/api/x`)).status, 200)
  t.equal(gw.refreshes, 0)
  t.equal(jar.sent.length, 1)
})

t.test('tabs share outcomes over BroadcastChannel: a refresh made elsewhere is reused, an end is announced', async (t) => {
  const { gw, jar } = await staleSession(t)
  const endedHere: SessionEnded[] = []
  const endedThere: SessionEnded[] = []
  const tab = (sink: SessionEnded[]) => createAuthFetch({ basePath: `${gw.url}/auth`, fetch: jar, onSessionEnded: (e) => sink.push(e) })
  const [here, there] = [tab(endedHere), tab(endedThere)]
  // `there` sent its call before `here` refreshed; its 401 arrives well after the news.
  const slow = there(`${gw.url}/api/slow?delay=300`)
  t.equal((await here(`${gw.url}/api/fast`)).status, 200)
  t.equal((await slow).status, 200)
  t.equal(gw.refreshes, 1, 'the other tab did not refresh again')

  gw.token++
  gw.refreshAnswer = { status: 401, code: 'session_expired' }
  t.equal((await here(`${gw.url}/api/x`)).status, 401)
  for (let i = 0; i < 100 && endedThere.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.same(endedHere, [{ code: 'session_expired', otherTab: false }])
  t.same(endedThere, [{ code: 'session_expired', otherTab: true }])
})
