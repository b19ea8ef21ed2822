/**
 * A real user service for the `http` identity source: accepts any username with the password
 * `right`, and counts how often it was asked (to prove a refused attempt never reached it).
 */
import { startUpstream } from '../helpers/upstream.js'

export interface IdentityService {
  url: string
  /** Passwords checked so far. */
  readonly asked: number
}

export async function startIdentityService(t: { teardown(fn: () => unknown): void }): Promise<IdentityService> {
  const up = await startUpstream(t)
  up.handle((_req, res, body) => {
    const { username, password } = JSON.parse(body) as { username: string; password: string }
    if (password !== 'right') return void res.writeHead(401).end()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ subject: `u-${username.trim().toLowerCase()}`, roles: ['user'] }))
  })
  return {
    url: up.url,
    get asked() {
      return up.seen.length
    },
  }
}

/** The auth part of a test config using that service (plain-http cookies). */
export const identityConfig = (url: string) => `
auth:
  cookies: { secure: false }
  identity:
    - { type: http, url: "${url}/verify" }
`

export const TOKEN_MODE = { 'x-auth-transport': 'token', 'content-type': 'application/json' }
