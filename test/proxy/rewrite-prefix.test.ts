import t, { type Test } from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'

/** Each request path through a gateway with one route, and the path its upstream received. */
async function upstreamPaths(t: Test, route: string, paths: string[], base = ''): Promise<string[]> {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `routes:\n  - { name: r, upstream: "${up.url}${base}", auth: none, ${route} }\n`)
  const seen: string[] = []
  for (const path of paths) {
    const res = await gw.fetch(path)
    seen.push(res.status === 200 ? up.last().url : `${res.status}`)
  }
  return seen
}

t.test('a root route with a rewritePrefix puts it before every path, and a route rewritten to the root takes its prefix off', async (t) => {
  t.same(await upstreamPaths(t, 'prefix: /, rewritePrefix: /v1', ['/', '/x', '/x/y?q=1', '/v1', '/api/']), [
    '/v1/',
    '/v1/x',
    '/v1/x/y?q=1',
    '/v1/v1',
    '/v1/api/',
  ])
  t.same(await upstreamPaths(t, 'prefix: /, rewritePrefix: /v1/', ['/', '/x']), ['/v1/', '/v1/x'], 'with a trailing slash alike')
  t.same(await upstreamPaths(t, 'prefix: /', ['/', '/x'], '/base'), ['/base/', '/base/x'], 'a path on the upstream URL alike')
  t.same(await upstreamPaths(t, 'prefix: /, rewritePrefix: /v1', ['/x'], '/base'), ['/base/v1/x'])
  // The other way round, a route rewritten to the root, takes its prefix off (this already held).
  for (const rewritePrefix of ['/', '""']) {
    t.same(await upstreamPaths(t, `prefix: /api, rewritePrefix: ${rewritePrefix}`, ['/api', '/api/', '/api/x?q=1', '/apix']), [
      '/',
      '/',
      '/x?q=1',
      '404',
    ])
  }
})
