/**
 * SPEC "Sessions, connections and freshness": a back-channel logout from the OpenID Provider
 * closes the open WebSockets of the sessions it ends. A real gateway with an `oidc` source in
 * front of the scriptable provider (test/helpers/rogue-provider.ts), a browser's cookies on the
 * socket, and a real echo upstream.
 */
import t from 'tap'
import { cookieFetch } from '../helpers/cookie-fetch.js'
import { startGateway } from '../helpers/gateway.js'
import { closedWithin, openSocket, startEchoUpstream } from '../helpers/live-socket.js'
import { startRogueProvider } from '../helpers/rogue-provider.js'

t.test("the provider's back-channel logout closes the sockets of the session it ends", async (t) => {
  const rogue = await startRogueProvider(t)
  const up = await startEchoUpstream(t)
  const gw = await startGateway(
    t,
    `
auth:
  cookies: { secure: false }
  identity:
    - { type: oidc, name: corp, issuer: "${rogue.issuer}", clientId: ${rogue.clientId}, clientSecret: ${rogue.clientSecret}, defaultRoles: [user] }
routes:
  - { name: ws, prefix: /ws, upstream: "${up.url}", websocket: true }
`,
  )
  // A sign-in as a browser makes it: the rogue provider sends the code straight back.
  const browser = cookieFetch()
  const start = await browser(`${gw.url}/auth/oidc/corp/start?return=/ws`, { redirect: 'manual' })
  const back = await fetch(start.headers.get('location')!, { redirect: 'manual' })
  const callback = await browser(back.headers.get('location')!, { redirect: 'manual' })
  t.equal(callback.status, 302, 'signed in')
  const cookie = [...browser.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  const socket = await openSocket(gw.url, '/ws/feed', { cookie, origin: gw.url })
  t.equal(await socket.echo('hi'), 'echo:hi')

  const logout = await fetch(`${gw.url}/auth/oidc/corp/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: await rogue.logoutToken() }).toString(),
  })
  t.equal(logout.status, 200, 'the provider ends the session')
  const closed = await closedWithin(socket, 5000)
  t.same(closed && { code: closed.code, reason: closed.reason }, { code: 1008, reason: 'session ended' })
})
