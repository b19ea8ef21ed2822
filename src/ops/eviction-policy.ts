/**
 * Redis must run with `maxmemory-policy noeviction` (docs/fleet.md): under memory pressure
 * any other policy may evict a revocation entry, and the access tokens of a session that was
 * logged out would be accepted again. The gateway cannot refuse such a Redis (managed services
 * may not let the policy be changed), so it reads the policy of every master once, when it
 * first reaches Redis, warns about each one that may evict, and shows all of them in
 * `portcullis_store_maxmemory_policy`.
 */
import { Cluster, type Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { StoreConfig } from '../config/schema.js'
import { createRedisClients } from '../sessions/redis-client.js'

export interface NodePolicy {
  /** host:port of the master. */
  node: string
  /** Null when neither CONFIG GET nor INFO answered. */
  policy: string | null
}

/** CONFIG GET first; managed Redis often renames or forbids CONFIG, and INFO memory has it too. */
export async function readPolicy(node: Redis): Promise<string | null> {
  try {
    const [, policy] = (await node.config('GET', 'maxmemory-policy')) as string[]
    if (policy) return policy
  } catch {
    // renamed, forbidden by an ACL, or a proxy that does not pass it: try INFO
  }
  try {
    return /^maxmemory_policy:(\S+)/m.exec(await node.info('memory'))?.[1] ?? null
  } catch {
    return null
  }
}

/** The policy of every master: one for a single server or Sentinel, each master of a Cluster. */
export async function readPolicies(client: Redis | Cluster): Promise<NodePolicy[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  return Promise.all(nodes.map(async (node) => ({ node: addressOf(node), policy: await readPolicy(node) })))
}

function addressOf(node: Redis): string {
  // Behind Sentinel the options hold no address: the socket knows where it went.
  const stream = (node as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream
  if (stream?.remoteAddress) return `${stream.remoteAddress}:${stream.remotePort}`
  return `${node.options.host}:${node.options.port}`
}

/** Logs what `readPolicies` found: a warning per master that may evict or could not be read. */
export function reportPolicies(found: readonly NodePolicy[], log: Logger): void {
  let safe = 0
  for (const { node, policy } of found) {
    if (policy === 'noeviction') safe++
    else if (policy === null) {
      log.warn(
        { node },
        'could not check redis maxmemory-policy (CONFIG GET and INFO memory were both refused): make sure it is noeviction, or Redis may evict revocations',
      )
    } else {
      log.warn(
        { node, policy },
        'redis maxmemory-policy is not noeviction: under memory pressure Redis may evict revocations, and the access tokens of ended sessions would be accepted again; set maxmemory-policy noeviction',
      )
    }
  }
  if (safe === found.length) log.info({ masters: found.length }, 'redis maxmemory-policy is noeviction')
}

/**
 * Checks once, on a connection of its own, as soon as Redis answers (now, or after an outage at
 * start); never holds up the start. `stop()` gives up a check still waiting.
 */
export function checkEvictionPolicy(store: StoreConfig, log: Logger, show: (policies: string[]) => void): { stop(): Promise<void> } {
  // Connection errors are the session store's to report; this client only waits for Redis.
  const { client } = createRedisClients(store, () => {})
  let giveUp = () => {}
  const ready = new Promise<boolean>((resolve) => {
    if (client.status === 'ready') return resolve(true)
    client.once('ready', () => resolve(true))
    giveUp = () => resolve(false)
  })
  const checked = ready
    .then(async (up) => {
      if (!up) return
      const found = await readPolicies(client)
      show(found.map((f) => f.policy ?? 'unknown'))
      reportPolicies(found, log)
    })
    .catch((err: unknown) => log.warn({ err }, 'could not check redis maxmemory-policy'))
    .finally(() => client.quit().catch(() => client.disconnect()))
  return {
    async stop() {
      giveUp()
      await checked
    },
  }
}
