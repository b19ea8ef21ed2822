/**
 * ioredis clients for `store.type` redis, redis-cluster and redis-sentinel.
 *
 * The request path must never wait on a Redis that is not there (issue 4): no offline queue,
 * a bounded connect and command timeout, and reconnection forever with a capped backoff, so
 * calls fail fast with store_unavailable while Redis is away and work again when it returns.
 * No keyPrefix on the client: the store adds it itself so its hash tags stay where they are.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { StoreConfig } from '../config/schema.js'
import { livenessFor, watchLiveness } from './redis-liveness.js'

export interface RedisClients {
  /** The command connection (or cluster client). */
  client: Redis | Cluster
  /** A new connection for pub/sub; the store calls it once, when the first listener subscribes. */
  subscriber: () => Redis | Cluster
}

/** 50 ms, 100 ms, 200 ms ... then every 2 s, forever. */
export const backoff = (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt, 6), 2000)

/** `host:port`, `redis://host:port` or `rediss://...` to { host, port }. */
export function parseHostPort(address: string, defaultPort: number): { host: string; port: number } {
  const url = new URL(/^[a-z]+:\/\//i.test(address) ? address : `redis://${address}`)
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : defaultPort }
}

export function createRedisClients(store: StoreConfig, onError: (err: unknown) => void = () => {}): RedisClients {
  const common: RedisOptions = {
    connectTimeout: Math.max(1000, store.commandTimeout * 4),
    commandTimeout: store.commandTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // A command whose reply was lost is not replayed: a write must not happen twice unseen.
    autoResendUnfulfilledCommands: false,
    retryStrategy: backoff,
    // A connection dropped for going mute gets no answer to its FIN either: do not wait 2 s.
    disconnectTimeout: Math.max(500, store.commandTimeout),
    ...(store.password === undefined ? {} : { password: store.password }),
  }
  let client: Redis | Cluster
  if (store.type === 'redis-cluster') {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      // Nodes that come back are reconnected to, rather than waiting for a slot refresh.
      clusterNodeRetryStrategy: backoff,
      maxRedirections: 4,
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      slotsRefreshTimeout: Math.max(1000, store.commandTimeout * 2),
      redisOptions: {
        connectTimeout: common.connectTimeout,
        commandTimeout: common.commandTimeout,
        maxRetriesPerRequest: 1,
        autoResendUnfulfilledCommands: false,
        ...(store.password === undefined ? {} : { password: store.password }),
      },
    }
    client = new Cluster(
      store.nodes.map((n) => parseHostPort(n, 6379)),
      clusterOptions,
    )
  } else if (store.type === 'redis-sentinel') {
    client = new Redis({
      ...common,
      sentinels: store.sentinels.map((s) => parseHostPort(s, 26379)),
      name: store.name,
      sentinelRetryStrategy: backoff,
      sentinelMaxConnections: 10,
    })
  } else {
    client = new Redis(store.url, common)
  }
  client.on('error', onError)
  // A mute connection is dropped and reconnected (./redis-liveness.ts). A Cluster client
  // watches its own nodes (slot refreshes, the cluster bus) and is left as it is.
  const liveness = livenessFor(store.commandTimeout)
  const onDrop = () => onError(new Error('redis connection went silent; reconnecting'))
  if (client instanceof Redis) watchLiveness(client, { ...liveness, onDrop })
  return {
    client,
    subscriber() {
      // The subscriber is off the request path: it may queue its SUBSCRIBE until connected.
      // No autoResubscribe on a single server: ioredis sends that SUBSCRIBE without handling its
      // failure (an ACL without the channel, say), an unhandled rejection that ends the
      // process. The feed subscribes itself on every 'ready' (./redis-feed.ts), and retries.
      const sub =
        client instanceof Cluster
          ? client.duplicate([], { enableOfflineQueue: true })
          : client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, autoResubscribe: false })
      sub.on('error', onError)
      if (sub instanceof Redis) watchLiveness(sub, { ...liveness, onDrop })
      return sub
    },
  }
}

/** Resolves once the client is ready, or rejects after `timeoutMs` (startup, tests). */
export function whenReady(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      reject(new Error(`Redis not ready after ${timeoutMs} ms`))
    }, timeoutMs)
    const onReady = () => {
      clearTimeout(timer)
      resolve()
    }
    client.once('ready', onReady)
  })
}
