/**
 * Behind a TLS-terminating load balancer with `server.trustProxy` off, the gateway takes its
 * own origin to be `http://…`, so every browser's `https://…` Origin is refused as
 * `csrf_rejected`, and nothing said why. This says it, from the refusal path only: the
 * proxied hot path reads no extra header, and a refusal is rare where nothing is misconfigured.
 */
import type { FastifyRequest } from 'fastify'

const HOUR = 3_600_000

/**
 * When each generation last warned, keyed by its allowed-origins set: the one object that
 * every CSRF check of a generation shares (app.ts builds it once per config), so the warning
 * comes once an hour per generation, not once per refused request.
 */
const lastWarned = new WeakMap<object, number>()

/** Called as a CSRF check refuses `origin`; warns when X-Forwarded-Proto suggests why. */
export function hintTrustProxy(request: FastifyRequest, origin: string, generation: object): void {
  // trustProxy on: protocol already follows X-Forwarded-Proto, and the check did too.
  if (request.protocol !== 'http') return
  const forwarded = request.headers['x-forwarded-proto']
  if (typeof forwarded !== 'string' || !/^\s*https\s*(,|$)/i.test(forwarded)) return
  const now = Date.now()
  if (now - (lastWarned.get(generation) ?? -Infinity) < HOUR) return
  lastWarned.set(generation, now)
  request.log.warn(
    { origin, gatewayOrigin: `${request.protocol}://${request.host}`, forwardedProto: forwarded },
    'a request with X-Forwarded-Proto: https was refused csrf_rejected while server.trustProxy is off: the gateway takes its origin to be http://, so behind an HTTPS load balancer every browser sign-in fails. Set server.trustProxy: true if every connection comes through a proxy you control (logged at most once an hour)',
  )
}
