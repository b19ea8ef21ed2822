/**
 * A real gateway with an `oidc` source named corp in front of the rogue provider
 * (test/helpers/rogue-provider.ts), a real upstream, and optionally a password user, all on
 * loopback. The rogue hands a code straight back, so a whole sign-in is three plain requests.
 */
import type { Test } from 'tap'
import { hashPassword } from '../../../src/auth/passwords.js'
import { cookieFetch, type CookieFetch } from '../../helpers/cookie-fetch.js'
import { startGateway, type GatewayOptions, type TestGateway } from '../../helpers/gateway.js'
import { startRogueProvider, type RogueProvider, type AuthorizeRecord } from '../../helpers/rogue-provider.js'
import { startUpstream, type Upstream } from '../../helpers/upstream.js'

export interface RogueSetup {
  gw: TestGateway
  rogue: RogueProvider
  upstream: Upstream
  /** Every id_token and access token the rogue handed out, to look for in the gateway's log (rogue.tokenAnswer records them: leave it be). */
  issued: string[]
}

export interface RogueSetupOptions extends GatewayOptions {
  /** Inner text of the oidc source's flow mapping, merged in (e.g. `requireClaims: { hd: example.com }`). */
  source?: string
  /** YAML after the auth block's identity list (e.g. `rateLimits: ...`). */
  gateway?: string
  /** A password user (password 'pw') whose subject is this, beside the oidc source. */
  passwordSubject?: string
  /** An existing rogue provider (two gateways in front of one provider). */
  rogue?: RogueProvider
}

export async function rogueSetup(t: Test, opts: RogueSetupOptions = {}): Promise<RogueSetup> {
  const rogue = opts.rogue ?? (await startRogueProvider(t))
  const upstream = await startUpstream(t)
  const password = opts.passwordSubject
    ? `    - { type: static, users: [{ username: pat, subject: ${opts.passwordSubject}, passwordHash: "${await hashPassword('pw')}" }] }\n`
    : ''
  const yaml = `
auth:
  cookies: { secure: false }
  identity:
${password}    - { type: oidc, name: corp, issuer: "${rogue.issuer}", clientId: ${rogue.clientId}, clientSecret: ${rogue.clientSecret},
        rolesClaim: groups, defaultRoles: [user], claims: [email, name]${opts.source ? `, ${opts.source}` : ''} }
${opts.gateway ?? ''}
routes:
  - { name: api, prefix: /api, upstream: "${upstream.url}" }
`
  const gw = await startGateway(t, yaml, opts)
  let issued = issuedBy.get(rogue)
  if (issued === undefined) {
    const list: string[] = []
    issued = list
    issuedBy.set(rogue, list)
    rogue.tokenAnswer = (answer) => {
      for (const name of ['id_token', 'access_token']) {
        const token = answer.body[name]
        if (typeof token === 'string') list.push(token)
      }
    }
  }
  return { gw, rogue, upstream, issued }
}

/** One record of issued tokens per rogue, shared by the gateways in front of it. */
const issuedBy = new WeakMap<RogueProvider, string[]>()

export interface RogueSignIn {
  /** The gateway's answer to the callback. */
  callback: Response
  /** The authorization request as the rogue saw it. */
  authorize: AuthorizeRecord
  /** The callback URL the rogue sent the browser to. */
  callbackUrl: URL
}

/** A browser: its cookie jar, manual redirects. */
export const browser = (): CookieFetch => cookieFetch()

/**
 * Starts at the gateway, lets the rogue redirect straight back, and follows the callback in
 * the same browser. `url` is the gateway's address (another instance in front of the same rogue).
 */
export async function rogueSignIn(setup: RogueSetup, user: CookieFetch = browser(), url = setup.gw.url): Promise<RogueSignIn> {
  const start = await user(`${url}/auth/oidc/corp/start?return=/api/hello`, { redirect: 'manual' })
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`)
  const back = await fetch(start.headers.get('location')!, { redirect: 'manual' })
  if (back.status !== 302) throw new Error(`the rogue's authorize answered ${back.status}: ${await back.text()}`)
  const callbackUrl = new URL(back.headers.get('location')!)
  const callback = await user(callbackUrl, { redirect: 'manual' })
  return { callback, authorize: setup.rogue.authorizeRequests.at(-1)!, callbackUrl }
}

/** Whether `user`'s session is alive: its access token is accepted and its refresh token rotates. */
export async function sessionAlive(setup: { gw: TestGateway }, user: CookieFetch): Promise<{ me: number; refresh: number }> {
  const me = (await user(`${setup.gw.url}/auth/me`)).status
  const refresh = (await user(`${setup.gw.url}/auth/refresh`, { method: 'POST' })).status
  return { me, refresh }
}

/** Nothing the gateway must keep to itself was logged: the client secret, any code, any token the rogue issued. */
export function assertNothingSecretLogged(t: Test, setup: RogueSetup, extra: string[] = []): void {
  const logs = setup.gw.logText()
  const secrets = [
    setup.rogue.clientSecret,
    ...setup.rogue.authorizeRequests.map((r) => r.code),
    ...setup.issued.flatMap((token) => [
      token,
      ...token
        .split('.')
        .slice(1)
        .filter((part) => part.length >= 16),
    ]),
    ...extra,
  ]
  const leaked = secrets.filter((s) => logs.includes(s))
  t.same(leaked, [], `none of ${secrets.length} secrets (client secret, codes, tokens and their parts) is in the log`)
}

/**
 * openid-client's and jose's JWKS caches age by the wall clock (Date.now) and take no clock of
 * ours, so the wall clock is moved forward here (and put back at `t`'s teardown) rather than
 * slept through; the gateway's own clock moves with it.
 */
export function advanceClocks(t: Test, setup: { gw: TestGateway }, ms: number): void {
  setup.gw.clock.now += ms
  const real = wallClock.real
  wallClock.offset += ms
  Date.now = () => real() + wallClock.offset
  if (!wallClock.restoring) {
    wallClock.restoring = true
    t.teardown(() => {
      Date.now = real
      wallClock.offset = 0
      wallClock.restoring = false
    })
  }
}
const wallClock = { real: Date.now, offset: 0, restoring: false }
