/**
 * Rate limits (SPEC.md `rateLimits`, `routes[].rateLimit`): fixed windows counted in a
 * RateLimitStore (memory in one process, Redis across instances), 429 `rate_limited` with
 * `Retry-After` beyond the limit. The one exception is `rateLimits.refresh.perSession`: the
 * session store counts it inside the rotation (the count lives in the session), so a refresh
 * is one store round trip; only its refusal (the 429 and its metric) is made here.
 *
 * Why not @fastify/rate-limit: its per-route hook suits `routes[].rateLimit`, but the login
 * limits need what it does not do (count by a username from the body, reset on success, a
 * username's counter in the slot of its sessions on Redis Cluster, refusing or counting in the
 * instance while the store is away). One small limiter for every case keeps one key layout,
 * one 429 and one set of metrics.
 */
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import type { GatewayConfig, RouteConfig } from '../config/schema.js'
import { GatewayError } from '../errors.js'
import type { SecurityEvents } from './events.js'
import type { GatewayMetrics, LimiterName } from './metrics.js'
import { createMemoryRateLimitStore } from './rate-limit-memory.js'

/** Where hits are counted. `scope` names the limiter, `id` is already hashed (fixed charset and length). */
export interface RateLimitStore {
  /** Counts one hit in a window of `windowMs` that starts at the first hit. */
  hit(scope: string, id: string, windowMs: number): Promise<{ count: number; resetInMs: number }>
  /** Forgets the count (a successful sign-in). */
  reset(scope: string, id: string): Promise<void>
  /** Resolves when the store answers (readiness); absent for one that lives in the process. */
  ping?(): Promise<void>
  close(): Promise<void>
}

export interface Limit {
  max: number
  /** Milliseconds. */
  window: number
}

/** Where a hit was counted: the shared store, or this instance while the store was unreachable. */
export type CountedIn = 'store' | 'instance'

export interface RateLimiter {
  /**
   * Counts one hit for `id`; throws `rate_limited` beyond the limit. With `in: 'instance'` it
   * does not try the shared store (a caller that just waited on it in vain). `client`: the
   * address, for the security event of a limit keyed by something else (a username).
   */
  consume(id: string, opts?: { in?: CountedIn; client?: string }): Promise<CountedIn>
  /** Forgets `id`'s count; with `in: 'instance'` only this instance's. */
  reset(id: string, opts?: { in?: CountedIn }): Promise<void>
}

/**
 * A limit counted by someone else in a call that is made anyway: the session store counts
 * refreshes per session in the rotation itself, so a refresh stays one round trip.
 */
export interface CountedElsewhere {
  readonly limit: Limit
  /** Records a refusal (metrics) and returns the 429 to throw. */
  refuse(resetInMs: number): GatewayError
}

/** RFC 9110 §10.2.3: Retry-After in whole seconds, never 0 (an instant retry). */
const retryAfter = (resetInMs: number): number => Math.max(1, Math.ceil(resetInMs / 1000))

/** 429 `rate_limited` with Retry-After. */
const rateLimited = (resetInMs: number): GatewayError =>
  new GatewayError('rate_limited', undefined, { headers: { 'retry-after': String(retryAfter(resetInMs)) } })

/**
 * Ids (usernames, client addresses, which with `trustProxy` come from a client's
 * X-Forwarded-For) are hashed: any input becomes 22 base64url characters, so no one can grow
 * the key space with long values or move Redis Cluster hash tags with braces. This bounds
 * keys; it is not meant to hide the ids (a short-lived counter is all that is stored).
 * The first 6 characters are subjectTag(id) (src/sessions/tokens.ts, the same SHA-256): the
 * Redis store makes them the hash tag, so a username's counter shares its sessions' slot.
 */
export const hashId = (id: string): string =>
  // String(): `request.ip` is undefined once the client has gone; that must not become a 500.
  createHash('sha256').update(String(id)).digest('base64url').slice(0, 22)

export interface LimiterOptions {
  /** `login_user`, ..., or `route` for routes[].rateLimit. */
  name: LimiterName
  /** The route's name for `route` limiters; the label and part of the key. */
  route: string
  /**
   * While `store` cannot be reached: `refuse` answers 503, `count-here` counts in `fallback()`,
   * this instance's memory.
   */
  whenUnreachable: 'refuse' | 'count-here'
  fallback(): RateLimitStore
  metrics: GatewayMetrics
  log: Logger
  /** Told of the first refusal of an id in a window (the sign-in limits' security event). */
  refused?: (id: string, client: string | undefined, resetInMs: number) => void
}

export function createLimiter(store: RateLimitStore, limit: Limit, opts: LimiterOptions): RateLimiter {
  const scope = opts.name === 'route' ? `route:${opts.route}` : opts.name
  const counted = opts.metrics.limiter(opts.name, opts.route)
  let failing = false
  let local: RateLimitStore | null = null
  const unreachable = (err: unknown): void => {
    counted.unreachable()
    // One warning per outage, not one per request.
    if (!failing) opts.log.warn({ err, limiter: scope, whenUnreachable: opts.whenUnreachable }, 'rate-limit store unreachable')
    failing = true
  }
  return {
    async consume(id, { in: where = 'store', client } = {}) {
      const key = hashId(id)
      let hit: { count: number; resetInMs: number } | null = null
      if (where === 'store') {
        try {
          hit = await store.hit(scope, key, limit.window)
          failing = false
        } catch (err) {
          unreachable(err)
          if (opts.whenUnreachable === 'refuse') throw new GatewayError('store_unavailable', 'rate-limit store call failed', { cause: err })
          where = 'instance'
        }
      }
      if (hit === null) {
        // Neither open nor closed: letting every request through (Envoy's and Kong's default)
        // would lift the bound, and 503 would turn a Redis outage into an API outage, or on a
        // Cluster, lock out everyone whose counter a dead master held (a whole office behind
        // one address). Counted here the limit holds per instance: at most N × max across N.
        local ??= opts.fallback()
        hit = await local.hit(scope, key, limit.window)
      }
      if (hit.count > limit.max) {
        counted.limited()
        // Once per id and window (a count passes max + 1 once, on Redis too): a flood of
        // refused guesses must not flood the bounded event queue and push older events out.
        if (hit.count === limit.max + 1) opts.refused?.(id, client, hit.resetInMs)
        throw rateLimited(hit.resetInMs)
      }
      return where
    },
    async reset(id, { in: where = 'store' } = {}) {
      const key = hashId(id)
      await local?.reset(scope, key)
      // A reset that fails leaves the count to expire with its window; the request has succeeded.
      if (where === 'store') await store.reset(scope, key).catch(unreachable)
    },
  }
}

function countedElsewhere(name: LimiterName, limit: Limit, metrics: GatewayMetrics): CountedElsewhere {
  const counted = metrics.limiter(name, 'auth')
  return {
    limit,
    refuse(resetInMs) {
      counted.limited()
      return rateLimited(resetInMs)
    },
  }
}

export interface Limiters {
  loginUser: RateLimiter
  loginClient: RateLimiter
  /** Counted by the session store's rotate(); see CountedElsewhere. */
  refreshSession: CountedElsewhere
  /** The route's limiter, or null when it has no `rateLimit`. */
  route(route: RouteConfig): RateLimiter | null
}

/** The limiters of one config generation, over the process's store. */
export function createLimiters(
  config: Pick<GatewayConfig, 'rateLimits' | 'store'>,
  store: RateLimitStore,
  ctx: { metrics: GatewayMetrics; log: Logger; now?: () => number; events?: SecurityEvents },
): Limiters {
  const { login, refresh } = config.rateLimits
  // Made at the first failure only: most generations never need it.
  let local: RateLimitStore | null = null
  const opts = { metrics: ctx.metrics, log: ctx.log, fallback: () => (local ??= createMemoryRateLimitStore(ctx.now)) }
  // On one server (redis, redis-sentinel) the session write that follows a sign-in's counts
  // fails too: refusing at once spares a password check and a second wait. On a Cluster the
  // counter's master is seldom the session's, so a dead one must not refuse sign-ins it
  // cannot affect otherwise.
  const whenUnreachable = config.store.type === 'redis-cluster' ? 'count-here' : 'refuse'
  const auth = (name: 'login_user' | 'login_client', limit: Limit) =>
    createLimiter(store, limit, { name, route: 'auth', whenUnreachable, ...opts, ...announce(ctx.events, name) })
  return {
    loginUser: auth('login_user', login.perUser),
    loginClient: auth('login_client', login.perClient),
    refreshSession: countedElsewhere('refresh_session', refresh.perSession, ctx.metrics),
    route: (route) =>
      route.rateLimit ? createLimiter(store, route.rateLimit, { name: 'route', route: route.name, whenUnreachable: 'count-here', ...opts }) : null,
  }
}

/** login.rate_limited: the address, and for the per-user limit a keyed hash of the username (never the name itself). */
function announce(events: SecurityEvents | undefined, limiter: 'login_user' | 'login_client'): Pick<LimiterOptions, 'refused'> {
  if (!events) return {}
  return {
    refused: (id, client, resetInMs) =>
      events.emit(
        'login.rate_limited',
        limiter === 'login_user'
          ? { limiter, ip: client || null, usernameHash: events.hashUsername(id), retryAfter: retryAfter(resetInMs) }
          : { limiter, ip: id || null, retryAfter: retryAfter(resetInMs) },
      ),
  }
}
