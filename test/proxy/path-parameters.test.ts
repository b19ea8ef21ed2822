import t from 'tap'
import { normalizeTarget, RouteTable } from '../../src/proxy/normalize.js'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('a path parameter that would change the route its path belongs to is refused', async (t) => {
  const routes = new RouteTable(['/svc', '/svc/admin', '/api/', '/auth', '/metrics'])
  const table: Array<[string, string | null]> = [
    ['/svc/admin;x/users', null],
    ['/svc/admin;x', null],
    ['/svc/admin%3bx/users', null],
    ['/svc/admin%3Bx/users', null],
    ['/svc/;x/admin/users', null],
    ['/svc;x/admin/users', null],
    ['/svc;x/users', null],
    ['/api;jsessionid=1/y', null],
    ['/auth;x/logout', null],
    ['/metrics;x', null],
    ['/svc/x;y/../admin/users', '/svc/admin/users'],
    ['/svc/..%3b/admin', null],
    // Parameters inside the route they already belong to pass as sent.
    ['/svc/users;v=1', '/svc/users;v=1'],
    ['/svc/admin/users;jsessionid=1?q=a;b', '/svc/admin/users;jsessionid=1?q=a;b'],
    ['/svc/admin/;x/users', '/svc/admin/;x/users'],
    ['/api/orders;v=1', '/api/orders;v=1'],
    ['/api/a%3bb/c', '/api/a%3bb/c'],
    ['/elsewhere;x/y', '/elsewhere;x/y'],
    // Prefixes match case-sensitively: /SVC is no route's, with or without its parameter.
    ['/SVC;x/admin', '/SVC;x/admin'],
  ]
  for (const [input, expected] of table) t.equal(normalizeTarget(input, routes), expected, input)

  const rooted = new RouteTable(['/', '/admin'])
  t.equal(normalizeTarget('/admin;x/users', rooted), null, 'under a root route too')
  t.equal(normalizeTarget('/public;x/y', rooted), '/public;x/y', 'a root route keeps its own parameters')
  const withParameter = new RouteTable(['/', '/legacy;v=1'])
  t.equal(normalizeTarget('/legacy;v=1/x', withParameter), '/legacy;v=1/x', 'a prefix with a parameter of its own is still reachable')
  t.equal(normalizeTarget('/legacy;v=2/x', withParameter), null, 'but not with another parameter in its place')
})

t.test('a user token cannot reach a parent route through a path parameter on an admin path', async (t) => {
  const svc = await startUpstream(t)
  const admin = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
routes:
  - { name: svc, prefix: /svc, upstream: "${svc.url}" }
  - { name: svc-admin, prefix: /svc/admin, upstream: "${admin.url}", roles: [admin] }
`,
  )
  const user = { authorization: `Bearer ${await makeToken(gw.keyring, { roles: ['user'] })}` }
  const root = { authorization: `Bearer ${await makeToken(gw.keyring, { roles: ['admin'] })}` }
  for (const path of ['/svc/admin;x/users', '/svc/admin;jsessionid=1/users', '/svc/admin%3bx/users', '/svc/admin;x', '/svc/;x/admin/users']) {
    const answer = await send(gw.url, path, { headers: user })
    t.equal(answer.status, 400, path)
    t.equal(answer.json()['code'], 'invalid_request', `${path} is a JSON problem`)
  }
  t.equal(svc.seen.length, 0, 'the parent route forwarded none of them')
  t.equal((await send(gw.url, '/svc/admin/users', { headers: user })).status, 403, 'the parameter-free path needs the admin role')

  t.equal((await send(gw.url, '/svc/orders;v=1', { headers: user })).status, 200)
  t.equal(svc.last().url, '/svc/orders;v=1', 'a parameter within its own route reaches the upstream as sent')
  t.equal((await send(gw.url, '/svc/admin/users;jsessionid=1', { headers: root })).status, 200)
  t.equal(admin.last().url, '/svc/admin/users;jsessionid=1')
})
