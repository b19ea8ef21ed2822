import t from 'tap'
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardFacts } from '../../src/proxy/headers.js'

const facts = (over: Partial<ForwardFacts> = {}): ForwardFacts => ({
  identity: { sub: 'u-1', sid: 's-1', roles: ['user', 'admin'] },
  upstreamHost: 'orders.internal:9000',
  forwardAuthorization: false,
  trustProxy: false,
  peer: '10.0.0.7',
  protocol: 'https',
  host: 'gw.example',
  requestId: 'req-1',
  ...over,
})

const client = () => ({
  host: 'gw.example',
  authorization: 'Bearer abc',
  cookie: 'portcullis_at=t; theme=dark',
  connection: 'keep-alive, x-hop',
  'x-hop': 'only for the gateway',
  te: 'trailers',
  expect: '100-continue',
  'proxy-authorization': 'Basic eA==',
  forwarded: 'for=6.6.6.6',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-host': 'evil.example',
  accept: 'application/json',
})

t.test('without a trusted proxy: the client speaks only for itself, and the gateway for the rest', async (t) => {
  const out = upstreamRequestHeaders(client(), facts())
  t.same(out, {
    host: 'orders.internal:9000',
    cookie: 'theme=dark',
    accept: 'application/json',
    'x-user-id': 'u-1',
    'x-user-roles': 'user,admin',
    'x-session-id': 's-1',
    'x-forwarded-for': '10.0.0.7',
    'x-forwarded-host': 'gw.example',
    'x-forwarded-proto': 'https',
    'x-request-id': 'req-1',
  })
})

t.test('behind a trusted proxy: its Forwarded and X-Forwarded-* are kept, the peer appended', async (t) => {
  const out = upstreamRequestHeaders(client(), facts({ trustProxy: true, forwardAuthorization: true }))
  t.equal(out['authorization'], 'Bearer abc', 'forwardAuthorization keeps the bearer token')
  t.equal(out['forwarded'], 'for=6.6.6.6')
  t.equal(out['x-forwarded-for'], '6.6.6.6, 10.0.0.7')
  t.equal(out['x-forwarded-host'], 'evil.example')
  t.notOk('x-hop' in out || 'te' in out || 'expect' in out || 'proxy-authorization' in out || 'connection' in out, 'hop-by-hop fields never travel')
})

t.test('a Cookie header holding only the gateway’s cookies is left out, not sent empty', async (t) => {
  const out = upstreamRequestHeaders({ host: 'gw.example', cookie: 'portcullis_at=t; portcullis_rt=r' }, facts({ identity: null, host: undefined }))
  t.notOk('cookie' in out)
  t.notOk('x-user-id' in out, 'no identity, no identity headers')
  t.notOk('x-forwarded-host' in out, 'no Host from the client, none claimed for it')
  t.same(
    Object.values(out).filter((v) => v === undefined),
    [],
    'no field is left undefined (the WebSocket client would refuse it)',
  )
  const named = upstreamRequestHeaders({ host: 'gw.example', connection: 'cookie', cookie: 'theme=dark' }, facts())
  t.notOk('cookie' in named, 'a Cookie header its own Connection header names is hop-by-hop too')
})

t.test('response headers: hop-by-hop fields and the gateway’s cookies are dropped, Location mapped back', async (t) => {
  const out = downstreamResponseHeaders(
    {
      'content-type': 'text/plain',
      connection: 'close, x-internal',
      'x-internal': '1',
      'keep-alive': 'timeout=5',
      location: '/v1/orders/7',
      'set-cookie': ['portcullis_rt=evil', 'app=1'],
    },
    { prefix: '/api', upstreamPrefix: '/v1' },
  )
  t.same(out, { 'content-type': 'text/plain', location: '/api/orders/7', 'set-cookie': ['app=1'] })
})
