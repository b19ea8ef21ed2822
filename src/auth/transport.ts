/**
 * How tokens reach the client: cookie mode (browsers, default) or token mode
 * (`x-auth-transport: token`, for API clients). SPEC.md "Transport".
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthConfig } from '../config/schema.js'
import type { SessionRecord } from '../sessions/types.js'
import { cookieAttributes, cookieNames } from './cookies.js'
import type { Minted } from './mint.js'

export function isTokenMode(request: FastifyRequest): boolean {
  const v = request.headers['x-auth-transport']
  return typeof v === 'string' && v.toLowerCase() === 'token'
}

export interface Issued {
  session: SessionRecord
  access: Minted
  refreshToken: string
}

/** 200 with the tokens; cookies in cookie mode, the refresh token in the body in token mode. */
export function sendTokens(request: FastifyRequest, reply: FastifyReply, auth: AuthConfig, issued: Issued, now: number) {
  const { session, access, refreshToken } = issued
  const body: Record<string, unknown> = {
    accessToken: access.token,
    tokenType: 'Bearer',
    expiresIn: access.expiresIn,
    sessionId: session.id,
  }
  const refreshLife = Math.min(session.idleExpiresAt, session.absoluteExpiresAt) - now
  if (isTokenMode(request)) {
    body['refreshToken'] = refreshToken
    body['refreshExpiresIn'] = Math.floor(refreshLife / 1000)
  } else setTokenCookies(reply, auth, issued, now)
  noStore(reply)
  return reply.code(200).send(body)
}

/** Cookie mode: the access and refresh tokens as the gateway's two HttpOnly cookies. */
export function setTokenCookies(reply: FastifyReply, auth: AuthConfig, issued: Issued, now: number): void {
  const { session, access, refreshToken } = issued
  const names = cookieNames(auth)
  reply.setCookie(names.access, access.token, cookieAttributes(auth, 'access', access.expiresIn * 1000))
  reply.setCookie(names.refresh, refreshToken, cookieAttributes(auth, 'refresh', Math.min(session.idleExpiresAt, session.absoluteExpiresAt) - now))
}

/** Expires both cookies (harmless when none were set). */
export function clearCookies(reply: FastifyReply, auth: AuthConfig): void {
  const names = cookieNames(auth)
  reply.clearCookie(names.access, cookieAttributes(auth, 'access', 0))
  reply.clearCookie(names.refresh, cookieAttributes(auth, 'refresh', 0))
}

/** RFC 6749 §5.1: responses carrying tokens must not be cached. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store')
  reply.header('pragma', 'no-cache')
}
