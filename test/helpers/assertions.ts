/**
 * Identity assertions made here exactly as SPEC.md ("Identity assertion") describes them, and a
 * JWK Set served over loopback, for testing what an upstream does with them: header `typ`
 * portcullis-assertion+jwt, `alg`, `kid`; claims iss, aud, sub, sid, roles, iat, exp and the
 * user's own.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

export const TYP = 'portcullis-assertion+jwt'

export interface AssertionKey {
  kid: string
  alg: string
  key: CryptoKey | Uint8Array
}

export interface AssertionSpec {
  iss?: string
  aud?: string
  sub?: string
  sid?: string
  roles?: string[]
  /** seconds relative to `now` */
  iat?: number
  /** seconds after iat; the gateway's default auth.assertion.ttl */
  ttl?: number
  /** the user's custom claims */
  claims?: JWTPayload
  /** merged over { alg, kid, typ } */
  header?: Record<string, unknown>
  /** claims left out */
  omit?: string[]
}

export const ORDERS = 'http://orders.internal:3000'

export function signAssertion(signer: AssertionKey, spec: AssertionSpec = {}, nowMs = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000) + (spec.iat ?? 0)
  // The user's claims first: the registered ones always win, as when the gateway signs.
  const payload: JWTPayload = {
    ...spec.claims,
    iss: spec.iss ?? 'portcullis',
    aud: spec.aud ?? ORDERS,
    sub: spec.sub ?? 'u-alice',
    sid: spec.sid ?? 'sid-1',
    roles: spec.roles ?? ['user'],
    iat,
    exp: iat + (spec.ttl ?? 60),
  }
  for (const name of spec.omit ?? []) delete payload[name]
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: TYP, ...spec.header }).sign(signer.key)
}

export interface JwksServer {
  url: string
  /** How many times the set was fetched. */
  hits(): number
  /** Serve these keys from now on. */
  publish(keys: JWK[]): void
  /** Answer 503 from now on (true) or serve again (false). */
  fail(down: boolean): void
}

/** A JWK Set on 127.0.0.1, answered with `Cache-Control: public, max-age=...` as the gateway does. */
export async function serveJwks(t: { teardown(fn: () => unknown): void }, keys: JWK[], maxAge = 300): Promise<JwksServer> {
  let current = keys
  let hits = 0
  let down = false
  const server = createServer((_req, res) => {
    hits++
    if (down) return res.writeHead(503).end()
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `public, max-age=${maxAge}` })
    res.end(JSON.stringify({ keys: current }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    hits: () => hits,
    publish: (keys) => {
      current = keys
    },
    fail: (value) => {
      down = value
    },
  }
}
