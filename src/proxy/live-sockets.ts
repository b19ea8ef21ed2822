/**
 * Open proxied WebSockets, indexed by the session they were opened with, so that the end of
 * that session closes them (SPEC.md "Sessions, connections and freshness"). The revocation
 * that ends a session reaches every instance through its RevocationSet; the set passes each new
 * entry here, and this instance's sockets of that session are closed with 1008 (policy
 * violation, RFC 6455 §7.4.1). Nothing is done per frame: a socket costs an entry in two maps.
 *
 * Expiry, which the store publishes no event for, is read from the store: once when the socket
 * opens, and again at the session's idle expiry, when a refresh may have moved it; at the
 * absolute expiry, which nothing moves, the socket is closed without a read. A session the
 * store does not know at the opening binds the socket to its access token's `exp`, as cached
 * mode serves that token's requests. A socket on a route whose revocation is `off` is not tied
 * to its session (its tokens are not either): it is closed when its access token expires.
 */
import { createRequire } from 'node:module'
import type { FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { WebSocket as Socket } from 'ws'
import type { RevocationSet } from '../revocation/set.js'
import type { RevocationEvent, SessionStore } from '../sessions/types.js'

// The ws the proxy plugin loads itself (ws is only a dev dependency of ours): the server-side
// socket class handed to the plugin must extend that very class.
const fromPlugin = createRequire(createRequire(import.meta.url).resolve('@fastify/http-proxy'))
const { WebSocket } = fromPlugin('ws') as typeof import('ws')

/** The close code for every socket closed here: policy violation. */
export const POLICY_VIOLATION = 1008
/** A store read that failed (the store is away) is tried again this much later. */
const READ_RETRY = 30_000

type Mode = 'cached' | 'strict' | 'off'
type AcceptedSocket = new (...args: [null, undefined, object]) => Socket

interface Entry {
  source: Socket
  target: Socket | null
  sid: string
  sub: string
  iat: number
  /** Closed when its session ends (cached, strict), or only when its token expires (off). */
  bySession: boolean
  /** What dueAt is: the session's next expiry, or the access token's. */
  expiry: 'session' | 'token'
  /** When to look again (ms). */
  dueAt: number
  /** The session's absolute expiry once read; no refresh moves it. */
  absoluteAt: number
  reading: boolean
  /** Set once it is being closed: the reason sent. */
  ended: string | null
}

export interface LiveSocketsOptions {
  store: Pick<SessionStore, 'get'>
  revocations: Pick<RevocationSet, 'isRevoked'>
  /** revocation.mode: the mode of a route without its own `revocation`. */
  mode: Mode
  now: () => number
  log: Logger
  /** How often expiries are looked at (ms, default 1000). */
  sweepInterval?: number
  /** How long a peer has to answer a close frame before its connection is cut (ms, default 1000). */
  closeGrace?: number
}

/** What one route's proxy registration needs: see src/proxy/routes.ts. */
export interface RouteSockets {
  /** wsServerOptions: the socket class that makes each accepted socket known to accepted(). */
  serverOptions: { WebSocket: AcceptedSocket }
  /** wsHooks: learns the upstream socket, to close it too. */
  hooks: { onConnect(context: unknown, source: Socket, target: Socket): void }
  /** Called by the plugin's rewriteRequestHeaders, right after the client's socket is accepted. */
  accepted(request: FastifyRequest): void
}

export class LiveSockets {
  #opts: LiveSocketsOptions
  #bySource = new WeakMap<Socket, Entry>()
  #bySession = new Map<string, Set<Entry>>()
  #bySubject = new Map<string, Set<Entry>>()
  #all = new Set<Entry>()
  #timer: NodeJS.Timeout | null = null
  #readFailing = false
  /**
   * The client socket the ws server made last. The plugin accepts a socket and asks for the
   * upstream's headers with the request in one synchronous run (ws' completeUpgrade, then the
   * plugin's handleConnection), and no hook hands it both: the socket is taken from here then.
   */
  #arrived: Socket | null = null
  readonly #Accepted: AcceptedSocket

  constructor(opts: LiveSocketsOptions) {
    this.#opts = opts
    const registry = this
    this.#Accepted = class extends WebSocket {
      // ws' server calls `new WebSocket(null, undefined, serverOptions)`: all three go on.
      constructor(...args: [null, undefined, object]) {
        super(...(args as unknown as [null]))
        registry.#arrived = this
      }
    }
  }

  /** Sockets being watched. */
  get size(): number {
    return this.#all.size
  }

  route(revocation: Mode | undefined): RouteSockets {
    const bySession = (revocation ?? this.#opts.mode) !== 'off'
    return {
      serverOptions: { WebSocket: this.#Accepted },
      hooks: { onConnect: (_context, source, target) => this.#connected(source, target) },
      accepted: (request) => this.#accepted(request, bySession),
    }
  }

  /** A revocation this instance has learnt (RevocationSet.subscribe): never throws. */
  revoked(event: RevocationEvent): void {
    try {
      const entries = event.type === 'session' ? this.#bySession.get(event.sessionId) : this.#bySubject.get(event.subject)
      if (entries === undefined) return
      let closed = 0
      for (const entry of [...entries]) {
        // A logout-all mark ends the tokens issued before it, as RevocationSet.isRevoked has it.
        if (event.type === 'user' && (entry.iat + 1) * 1000 > event.notBefore) continue
        this.#end(entry, 'session ended')
        closed++
      }
      if (closed > 0) this.#opts.log.info({ ...revokedWhat(event), sockets: closed }, 'open WebSockets closed: their session ended')
    } catch (err) {
      this.#opts.log.error({ err }, 'closing the WebSockets of an ended session failed')
    }
  }

  /** Closes what is due: the sweep timer calls it; a test may too. */
  sweep(): void {
    const now = this.#opts.now()
    for (const entry of this.#all) {
      if (entry.reading || entry.dueAt > now) continue
      if (entry.expiry === 'token') this.#end(entry, 'access token expired')
      else if (now >= entry.absoluteAt) this.#end(entry, 'session expired')
      else this.#read(entry)
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
  }

  #accepted(request: FastifyRequest, bySession: boolean): void {
    const source = this.#arrived
    this.#arrived = null
    const auth = request.auth
    if (auth === null) return
    if (source === null) {
      // Only an upgrade of @fastify/http-proxy or ws could cause this; the tests would fail.
      request.log.error('a proxied WebSocket could not be matched with its request: it will not close when its session ends')
      return
    }
    const { sid, sub, iat, exp } = auth.claims
    const entry: Entry = {
      source,
      target: null,
      sid,
      sub,
      iat,
      bySession,
      expiry: bySession ? 'session' : 'token',
      dueAt: bySession ? Number.POSITIVE_INFINITY : exp * 1000,
      absoluteAt: Number.POSITIVE_INFINITY,
      reading: false,
      ended: null,
    }
    this.#bySource.set(source, entry)
    this.#all.add(entry)
    source.once('close', () => this.#forget(entry))
    this.#timer ??= setInterval(() => this.sweep(), this.#opts.sweepInterval ?? 1000).unref()
    if (!bySession) return
    add(this.#bySession, sid, entry)
    add(this.#bySubject, sub, entry)
    // Ended between the upgrade's authentication and now: no event will come again.
    if (this.#opts.revocations.isRevoked(sid, sub, iat)) return this.#end(entry, 'session ended')
    this.#read(entry, exp * 1000)
  }

  #connected(source: Socket, target: Socket): void {
    const entry = this.#bySource.get(source)
    if (entry === undefined) return
    entry.target = target
    // Ended while the upstream was still connecting.
    if (entry.ended !== null) target.close(POLICY_VIOLATION, entry.ended)
  }

  /**
   * Reads the session: alive, it sets the next look. Gone at the socket's opening (ended, and
   * its revocation still on its way; expired; or lost by a store that restarted empty), the
   * socket is served as a request is in cached mode: until its token (`tokenExp`) expires. Gone
   * later, it expired: the socket is closed.
   */
  #read(entry: Entry, tokenExp?: number): void {
    entry.reading = true
    this.#opts.store.get(entry.sid, this.#opts.now()).then(
      (session) => {
        entry.reading = false
        this.#readFailing = false
        if (entry.ended !== null) return
        if (session === null || session.subject !== entry.sub) {
          if (tokenExp === undefined) return this.#end(entry, 'session expired')
          entry.expiry = 'token'
          entry.dueAt = tokenExp
          return
        }
        entry.absoluteAt = session.absoluteExpiresAt
        entry.dueAt = Math.min(session.idleExpiresAt, session.absoluteExpiresAt)
      },
      (err: unknown) => {
        entry.reading = false
        entry.dueAt = this.#opts.now() + READ_RETRY
        // Like a request in cached mode, the socket is not refused for the store's absence.
        if (!this.#readFailing) this.#opts.log.warn({ err }, 'reading the session of an open WebSocket failed; trying again later')
        this.#readFailing = true
      },
    )
  }

  #end(entry: Entry, reason: string): void {
    if (entry.ended !== null) return
    entry.ended = reason
    this.#forget(entry)
    // Both sides at once: while the client takes its time to answer the close frame, nothing
    // more is relayed either way (ws sends nothing on a closing socket).
    entry.source.close(POLICY_VIOLATION, reason)
    entry.target?.close(POLICY_VIOLATION, reason)
    const cut = setTimeout(() => {
      entry.source.terminate()
      entry.target?.terminate()
    }, this.#opts.closeGrace ?? 1000)
    cut.unref()
  }

  #forget(entry: Entry): void {
    if (!this.#all.delete(entry)) return
    if (!entry.bySession) return
    remove(this.#bySession, entry.sid, entry)
    remove(this.#bySubject, entry.sub, entry)
  }
}

function add(index: Map<string, Set<Entry>>, key: string, entry: Entry): void {
  const entries = index.get(key)
  if (entries) entries.add(entry)
  else index.set(key, new Set([entry]))
}

function remove(index: Map<string, Set<Entry>>, key: string, entry: Entry): void {
  const entries = index.get(key)
  if (!entries?.delete(entry) || entries.size > 0) return
  index.delete(key)
}

function revokedWhat(event: RevocationEvent): Record<string, string> {
  return event.type === 'session' ? { sessionId: event.sessionId } : { subject: event.subject }
}
