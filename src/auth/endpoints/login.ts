/**
 * POST {basePath}/login: credentials → a new session and its tokens.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.js'
import { checkCsrf } from '../csrf.js'
import { MAX_PASSWORD_BYTES } from '../passwords.js'
import type { EndpointContext } from '../routes.js'
import { AUTH_BODY_LIMIT } from '../routes.js'
import { normalizeUsername } from '../username.js'
import { isTokenMode, sendTokens } from '../transport.js'
import { objectBody, stringField } from './body.js'
import { startSession } from './new-session.js'

export function loginEndpoint(app: FastifyInstance, ctx: EndpointContext): void {
  const { auth } = ctx.config
  app.post('/login', { bodyLimit: AUTH_BODY_LIMIT }, async (request, reply) => {
    try {
      const sent = await signIn(request, reply)
      ctx.metrics.login('ok')
      return sent
    } catch (err) {
      ctx.metrics.login(err instanceof GatewayError ? err.code : 'error')
      throw err
    }
  })

  async function signIn(request: FastifyRequest, reply: FastifyReply) {
    // Login CSRF: a cross-site page must not sign a victim's browser into another account.
    if (!isTokenMode(request)) checkCsrf(request, ctx.authenticator.allowedOrigins)
    const body = objectBody(request.body, true)
    const username = stringField(body, 'username', 256)
    const password = stringField(body, 'password', MAX_PASSWORD_BYTES)
    // Refused before any hashing: an enormous password is a cheap way to burn CPU.
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new GatewayError('invalid_request', '"password" is too long')

    // Both limits count before the password is checked, so a refused attempt costs no hashing.
    // perUser counts every attempt and a success resets it: what it holds is failures (plus
    // attempts in flight, so parallel guesses cannot slip past it). Known and unknown
    // usernames are limited alike, so a 429 reveals nothing about which exist.
    const clientCounted = await ctx.limiters.loginClient.consume(request.ip)
    const userKey = normalizeUsername(username)
    // A Cluster node that left the client's count unanswered costs one wait, not three (two
    // counts and the reset): the rest of this sign-in's counting stays in the instance.
    const userCounted = await ctx.limiters.loginUser.consume(userKey, { in: clientCounted, client: request.ip })

    const identity = await ctx.deps.identity.authenticate(username, password)
    // Same answer for an unknown user and a wrong password (no account enumeration).
    if (!identity) throw new GatewayError('invalid_credentials')
    // Whoever got the password right gains nothing by clearing its failures.
    await ctx.limiters.loginUser.reset(userKey, { in: userCounted })

    const now = ctx.now()
    const issued = await startSession(ctx, request, identity, now)
    return sendTokens(request, reply, auth, issued, now)
  }
}
