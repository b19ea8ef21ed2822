/**
 * A watchdog for one ioredis connection (issue 4: "everything recovers by itself").
 *
 * ioredis reconnects when a connection closes, but a connection can also go mute without
 * closing: the Redis host died, or a firewall or NAT forgot the flow, and no reset ever comes.
 * TCP would notice only after its retransmission timeout (~15 min) or keepalive (2 h by
 * default); a subscriber, which never sends, might not notice at all. Meanwhile every command
 * times out (503s, /readyz 503) and the revocation feed is silent. So each connection is
 * pinged, and one that has answered nothing for `deadline` is dropped: ioredis reconnects,
 * and the feed, once live again, makes every listener resync.
 */
import type { Redis } from 'ioredis'

export interface LivenessOptions {
  /** How often to ping (ms). */
  interval: number
  /** Silence after which the connection is dropped (ms); a few intervals. */
  deadline: number
  onDrop?: () => void
}

/** Ping interval and deadline for a store whose commands time out after `commandTimeout`. */
export const livenessFor = (commandTimeout: number): LivenessOptions => {
  const interval = Math.max(1000, commandTimeout * 2)
  return { interval, deadline: interval * 3 }
}

export function watchLiveness(conn: Redis, opts: LivenessOptions): void {
  let lastHeard = Date.now()
  /** The connection a PING is waiting on (null: none); a PING never outlives its connection. */
  let pinging: object | null = null
  let connection: object = {}
  const heard = () => {
    lastHeard = Date.now()
  }
  // A new connection's clock starts when its socket connects.
  conn.on('connect', heard)
  conn.on('ready', heard)
  // With autoResendUnfulfilledCommands off, ioredis neither resends nor rejects what was in
  // flight when a connection closed (it drops its queue on the next 'ready'): a PING sent into
  // a stall never settles. Waiting for it stopped the pings for good, and the quiet subscriber
  // (no command timeout) was then dropped every deadline, forever (issue 14, item 2).
  conn.on('close', () => {
    connection = {}
    pinging = null
  })
  const timer = setInterval(() => {
    // 'connect' is a socket that is open but not yet ready: its ready check can wait for ever
    // on a connection without a command timeout (the subscriber). Connecting and
    // reconnecting are bounded by ioredis itself (connectTimeout, the retry backoff).
    if (conn.status !== 'ready' && conn.status !== 'connect') return
    if (Date.now() - lastHeard > opts.deadline) {
      lastHeard = Date.now()
      opts.onDrop?.()
      conn.disconnect(true)
      return
    }
    if (conn.status !== 'ready' || pinging !== null) return
    const on = connection
    pinging = on
    // Any answer will do; one that never comes is forgotten when its connection closes.
    conn
      .ping()
      .then(heard, () => {})
      .finally(() => {
        if (pinging === on) pinging = null
      })
  }, opts.interval)
  timer.unref()
  // 'end': closed for good (quit, or disconnect without reconnect).
  conn.once('end', () => clearInterval(timer))
}
