/**
 * A sign-in in progress: what the callback must find again (PKCE verifier, nonce, where to
 * go back to), kept in the session store for FLOW_TTL so any instance can finish it, and
 * taken on first use so that a state works once.
 *
 * The browser that started the flow is bound to it by a cookie named after the state and
 * holding it (RFC 9700 §4.7.1: state tied to the user agent). The callback requires both the
 * `state` parameter and that cookie: a victim sent to a callback URL carrying an attacker's
 * code and state has no such cookie, so the attacker's account is never signed in there
 * (login CSRF). One cookie per flow lets several tabs sign in at once.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthConfig } from '../../config/schema.js'
import { GatewayError } from '../../errors.js'
import type { ShortLivedValues } from '../../sessions/types.js'

/** How long a started sign-in can be finished: time to type a password and pass a second factor. */
export const FLOW_TTL = 10 * 60_000

export interface Flow {
  /** The oidc source's name: a flow started for one provider cannot finish at another. */
  provider: string
  verifier: string
  nonce: string
  returnTo: string
  /** The redirect_uri of the authorization request; the code exchange must send the same. */
  redirectUri: string
  /** max_age sent (seconds), when a route asked for a recent sign-in: the id_token's auth_time is checked against it. */
  maxAge?: number
}

/** openid-client's randomState(): 32 random bytes, base64url. Anything else is not ours. */
const STATE = /^[A-Za-z0-9_-]{43}$/

/** The name isFlowCookieName (../cookies.ts) recognises, so no upstream ever sees it. */
export function flowCookieName(auth: AuthConfig, state: string): string {
  // __Host- (RFC 6265bis §4.1.3.2): no sibling subdomain can plant a flow cookie, which would
  // undo the binding above. It needs Secure, Path=/ and no Domain.
  return `${auth.cookies.secure ? '__Host-' : ''}portcullis_oidc_${state.slice(0, 12)}`
}

const flowKey = (state: string) => `oidc:flow:${createHash('sha256').update(state).digest('base64url')}`

export async function keepFlow(store: ShortLivedValues, reply: FastifyReply, auth: AuthConfig, state: string, flow: Flow, now: number) {
  if (!(await store.putNew(flowKey(state), JSON.stringify(flow), FLOW_TTL, now))) throw new GatewayError('internal_error', 'state collision')
  reply.setCookie(flowCookieName(auth, state), state, {
    path: '/',
    httpOnly: true,
    secure: auth.cookies.secure,
    // Lax, whatever cookies.sameSite says: the provider sends the browser back with a top-level
    // cross-site GET, on which a Strict cookie would not be sent.
    sameSite: 'lax',
    maxAge: FLOW_TTL / 1000,
  })
}

/**
 * The flow this callback finishes, removed from the store and its cookie cleared. Throws 400
 * invalid_request for a state that is missing, foreign to this browser, used, expired, or
 * started for another provider.
 */
export async function takeFlow(
  store: ShortLivedValues,
  request: FastifyRequest,
  reply: FastifyReply,
  auth: AuthConfig,
  provider: string,
  now: number,
) {
  const state = (request.query as Record<string, unknown>)['state']
  if (typeof state !== 'string' || !STATE.test(state)) throw new GatewayError('invalid_request', 'the sign-in response has no valid state')
  const name = flowCookieName(auth, state)
  const cookie = request.cookies[name]
  reply.clearCookie(name, { path: '/', httpOnly: true, secure: auth.cookies.secure, sameSite: 'lax' })
  if (cookie === undefined || cookie.length !== state.length || !timingSafeEqual(Buffer.from(cookie), Buffer.from(state))) {
    throw new GatewayError('invalid_request', 'this sign-in was not started in this browser; start again')
  }
  const kept = await store.take(flowKey(state), now)
  if (kept === null) throw new GatewayError('invalid_request', 'this sign-in has expired or was already used; start again')
  const flow = JSON.parse(kept) as Flow
  if (flow.provider !== provider) throw new GatewayError('invalid_request', 'this sign-in was started for another provider')
  return { state, flow }
}
