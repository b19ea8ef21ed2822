/**
 * Forward-auth end to end: a real nginx (`auth_request`) and a real Caddy (`forward_auth`,
 * written out and as the shorthand), configured with docs/forward-auth.md's blocks, ask a real
 * gateway about each request and proxy it to a real upstream.
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startCaddy, startNginx, type Edge } from '../helpers/edges.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { makeToken } from '../helpers/tokens.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

interface World {
  up: Upstream
  gw: TestGateway
  nginx: Edge
  caddy: Edge
  caddyShorthand: Edge
}

async function world(t: Test): Promise<World> {
  const up = await startUpstream(t)
  const gw = await startGateway(
    t,
    `
server: { trustProxy: true }
auth: { signInPage: true }
routes:
  - { name: app, prefix: /app, upstream: "${up.url}" }
  - { name: admin, prefix: /admin, upstream: "${up.url}", roles: [admin] }
  - { name: assets, prefix: /assets, upstream: "${up.url}", auth: none }
`,
  )
  const backends = { gateway: gw.url, app: up.url }
  const [nginx, [caddy, caddyShorthand]] = await Promise.all([startNginx(t, backends), startCaddy(t, backends)])
  return { up, gw, nginx: nginx!, caddy: caddy!, caddyShorthand: caddyShorthand! }
}

/** A client's attempt to speak for the gateway, in every spelling an upstream might read. */
const SPOOFED = { 'x-user-id': 'u-mallory', x_user_id: 'u-mallory', 'x-user-roles': 'admin', X_User_Roles: 'admin', 'x-session-id': 's-forged' }

async function send(edge: Edge, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await request(edge.url + path, { method, headers })
  const body = await r.body.text()
  return { status: r.statusCode, headers: r.headers, body }
}

/** Every header the upstream received for the latest request, lower-cased, as sent on the wire. */
function rawNames(up: Upstream): string[] {
  const raw = up.last().rawHeaders
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
}

t.test('behind each edge, the gateway decides and the upstream gets only its identity', async (t) => {
  const w = await world(t)
  const alice = await makeToken(w.gw.keyring, { sub: 'u-alice', roles: ['user'], sid: 'AAAAAAsession-alice' }, w.gw.clock.now)
  for (const [name, edge] of [
    ['nginx', w.nginx],
    ['caddy', w.caddy],
  ] as const) {
    await t.test(name, async (t) => {
      const seen = () => w.up.seen.length
      let before = seen()
      const ok = await send(edge, '/app/orders?id=1', { authorization: `Bearer ${alice}`, ...SPOOFED })
      t.equal(ok.status, 200, `a valid token passes (${edge.log()})`)
      t.equal(seen(), before + 1, 'the upstream was reached')
      const got = w.up.last()
      t.equal(got.url, '/app/orders?id=1', 'the request as the client sent it')
      t.equal(got.headers['x-user-id'], 'u-alice', "x-user-id is the gateway's answer")
      t.equal(got.headers['x-user-roles'], 'user')
      t.equal(got.headers['x-session-id'], 'AAAAAAsession-alice')
      t.notOk(
        rawNames(w.up).some((n) => n.includes('_')),
        'no underscore spelling reaches the upstream',
      )
      t.notMatch(JSON.stringify(got.rawHeaders), /mallory|forged|admin/, 'nothing the client claimed reaches the upstream')

      before = seen()
      const missing = await send(edge, '/app/orders', SPOOFED)
      t.equal(missing.status, 401, 'no token: refused')
      t.match(missing.headers['www-authenticate'], /^Bearer/, 'with the challenge')
      const expired = await makeToken(w.gw.keyring, { iat: -700, exp: -100 }, w.gw.clock.now)
      t.equal((await send(edge, '/app/orders', { authorization: `Bearer ${expired}` })).status, 401, 'an expired token: refused')
      t.equal((await send(edge, '/admin/users', { authorization: `Bearer ${alice}` })).status, 403, 'a missing role: 403')
      t.equal(seen(), before, 'no refused request reaches the upstream')

      // The client names another route in the headers the gateway reads: the edge overwrites
      // its own pair, and the other pair then disagrees with it.
      const chosen = await send(edge, '/admin/users', {
        authorization: `Bearer ${alice}`,
        'x-forwarded-uri': '/assets/x',
        'x-original-uri': '/assets/x',
        'x-forwarded-method': 'GET',
        'x-original-method': 'GET',
      })
      t.ok(chosen.status >= 400, `the client cannot choose the route judged (${chosen.status})`)
      t.equal(seen(), before, 'and the upstream never sees it')

      const open = await send(edge, '/assets/logo.svg', SPOOFED)
      t.equal(open.status, 200, 'a public route passes without a token')
      t.equal(w.up.last().url, '/assets/logo.svg')
      t.notMatch(JSON.stringify(w.up.last().rawHeaders), /mallory|forged|admin|reverse_proxy/, 'with no identity at all, spoofed or placeholder')
      t.notOk(
        rawNames(w.up).some((n) => /^x[-_](user|session)/.test(n)),
        'no identity header names either',
      )

      const navigation = await send(edge, '/app/orders?id=1', { accept: 'text/html', 'sec-fetch-mode': 'navigate' })
      t.equal(navigation.status, 302, 'a browser without a session is redirected')
      t.match(navigation.headers.location, /\/auth\/signin\?return=%2Fapp%2Forders%3Fid%3D1$/, 'to the sign-in page, and back afterwards')
      const page = await send(edge, '/auth/signin?return=%2Fapp%2Forders', { accept: 'text/html' })
      t.equal(page.status, 200, 'the sign-in page is served through the edge')
      t.match(page.body, '<form')

      // CSRF: the edge's origin is the gateway's own (trustProxy, X-Forwarded-Proto/Host).
      const cookie = { cookie: `__Host-portcullis_at=${alice}`, 'content-type': 'application/json' }
      before = seen()
      const forged = await send(edge, '/app/orders', { ...cookie, origin: 'https://evil.example' }, 'POST')
      t.equal(forged.status, 403, 'a cross-site POST with the cookie is refused')
      t.equal(seen(), before)
      const same = await send(edge, '/app/orders', { ...cookie, origin: edge.url }, 'POST')
      t.equal(same.status, 200, "a POST from the edge's own origin passes")
      t.equal(w.up.last().method, 'POST')
      t.equal(w.up.last().headers['x-user-id'], 'u-alice')
    })
  }
})

t.test("Caddy's forward_auth shorthand, on routes that all need a signed-in user", async (t) => {
  const w = await world(t)
  const edge = w.caddyShorthand
  const alice = await makeToken(w.gw.keyring, { sub: 'u-alice', roles: ['user'] }, w.gw.clock.now)
  const ok = await send(edge, '/app/x', { authorization: `Bearer ${alice}`, ...SPOOFED })
  t.equal(ok.status, 200, `a valid token passes (${edge.log()})`)
  t.equal(w.up.last().headers['x-user-id'], 'u-alice')
  t.notMatch(JSON.stringify(w.up.last().rawHeaders), /mallory|forged|admin/, 'nothing the client claimed reaches the upstream')
  const before = w.up.seen.length
  t.equal((await send(edge, '/app/x', SPOOFED)).status, 401, 'no token: refused')
  t.equal((await send(edge, '/admin/x', { authorization: `Bearer ${alice}` })).status, 403)
  t.equal(w.up.seen.length, before, 'nothing refused reaches the upstream')
})
