/**
 * What an upstream's answer may not do through the gateway (src/proxy/headers.ts): send the
 * browser to another origin by way of the Location rewriting, or set the gateway's cookies.
 */
import t from 'tap'
import { gatewayLocation } from '../../src/proxy/headers.js'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { startUpstream } from '../helpers/upstream.js'

const config = (up: string) => `
routes:
  - { name: app, prefix: /app, upstream: "${up}", rewritePrefix: /v1, auth: none }
  - { name: root, prefix: /, upstream: "${up}", rewritePrefix: /v1, auth: none }
`

const PAYLOADS = [
  '/v1//evil.example/',
  '/v1/\\evil.example/',
  '/v1/\\\\evil.example',
  '/v1//\\evil',
  '/v1/%2f%2fevil',
  '/v1/\t/evil',
  '/v1/\\\t\\evil.example',
  '/v1///evil.example',
]

t.test('a Location rewritten for a root route never resolves to another origin', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const origin = new URL(gw.url).origin
  for (const location of PAYLOADS) {
    up.handle((_req, res) => res.writeHead(302, { location }).end())
    for (const path of ['/x', '/app/x']) {
      const res = await send(gw.url, path)
      t.equal(res.status, 302)
      const answered = String(res.headers.location)
      t.equal(new URL(answered, gw.url).origin, origin, `${JSON.stringify(location)} through ${path} answered ${JSON.stringify(answered)}`)
    }
  }
  up.handle((_req, res) => res.writeHead(302, { location: '/v1//evil.example/next' }).end())
  t.equal((await send(gw.url, '/x')).headers.location, '/evil.example/next', 'the run of slashes collapses to one')
})

t.test('a root route maps the upstream prefix itself, with or without a query, to the gateway root', async (t) => {
  const root = { prefix: '/', upstreamPrefix: '/v1' }
  t.equal(gatewayLocation('/v1', root), '/')
  t.equal(gatewayLocation('/v1?next=1', root), '/?next=1')
  t.equal(gatewayLocation('/v1#top', root), '/#top')
  t.equal(gatewayLocation('/v1/a//b', root), '/a//b', 'slashes further in stay: they are a path either way')
  // Not rewritten, so whatever origin the upstream named is the one it meant.
  t.equal(gatewayLocation('//cdn.example/x', root), '//cdn.example/x')
  t.equal(gatewayLocation('/\\elsewhere', root), '/\\elsewhere', 'outside the upstream prefix: not rewritten')
  t.equal(gatewayLocation('http://127.0.0.1:9/v1/x', root), 'http://127.0.0.1:9/v1/x', 'an absolute URL, even the upstream’s own')
})

t.test('an upstream Set-Cookie without a name, or with one of the gateway’s in any spelling, is dropped', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, config(up.url))
  const dropped = [
    '=portcullis_at=evil',
    '  =portcullis_at=evil; Path=/',
    'portcullis_at',
    'portcullis_at; Path=/; x=1',
    ' portcullis_at =x',
    '__Host-portcullis_at=x; Path=/; Secure',
    '__host-portcullis_at=x; Path=/; Secure',
    '__SECURE-portcullis_rt=x; Secure',
    'Portcullis_AT=x',
    '__Secure-PORTCULLIS_RT=x; Secure',
  ]
  const kept = ['app=1', 'theme=dark; Path=/', 'portcullis_at_other=1', 'xportcullis_at=1', '__Host-app=1; Path=/; Secure']
  up.handle((_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': [...dropped, ...kept] }).end('ok'))
  const res = await send(gw.url, '/app/x')
  t.equal(res.status, 200)
  t.same(res.headers['set-cookie'], kept)
})
