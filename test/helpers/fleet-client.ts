/**
 * What a client of the fleet does: sign in on one instance, call the API or end sessions on
 * any, and wait (bounded) until an instance answers the way a test expects.
 */
import { send, type Answer } from './http.js'

export interface Tokens {
  accessToken: string
  refreshToken: string
  sessionId: string
}

const TOKEN_MODE = { 'x-auth-transport': 'token', 'content-type': 'application/json' }
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export function loginAnswer(url: string, username = 'alice'): Promise<Answer> {
  return send(url, '/auth/login', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ username, password: `${username}-pw` }) })
}

export async function login(url: string, username = 'alice'): Promise<Tokens> {
  const res = await loginAnswer(url, username)
  if (res.status !== 200) throw new Error(`login on ${url} failed: ${res.status} ${res.body}`)
  return res.json<Tokens>()
}

export const refresh = (url: string, refreshToken: string) =>
  send(url, '/auth/refresh', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ refreshToken }) })

export const logout = (url: string, accessToken: string) => send(url, '/auth/logout', { method: 'POST', headers: bearer(accessToken) })

export const api = (url: string, accessToken: string) => send(url, '/api/x', { headers: bearer(accessToken) })

export const codeOf = (res: Answer): unknown => (res.body ? res.json()['code'] : undefined)

/**
 * Calls `probe` back to back until `done` holds or `boundMs` passes; returns the elapsed
 * milliseconds, or null if it never held. Each probe is a real request: the loop is bounded
 * by time, and by a count in case the clock misbehaves.
 */
export async function until(probe: () => Promise<Answer>, done: (res: Answer) => boolean, boundMs: number): Promise<number | null> {
  const start = performance.now()
  for (let i = 0; i < 100_000; i++) {
    if (done(await probe())) return performance.now() - start
    if (performance.now() - start > boundMs) return null
    // A short pause so a poll loop never starves the instances it is polling (2 shared CPUs).
    if (i > 20) await new Promise((r) => setTimeout(r, 5))
  }
  return null
}

/** Times one call. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - start }
}
