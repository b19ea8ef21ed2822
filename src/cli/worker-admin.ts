/**
 * `server.admin` with several workers: the primary holds the admin listener and answers for
 * all of them. Each worker keeps its own registry and readiness (they share nothing in
 * memory); the primary asks every serving worker over the cluster IPC channel and merges the
 * answers: counters and histograms summed, gauges by their own rule (src/ops/metrics.ts),
 * readiness only when every serving worker is ready. A scrape of the public port, by
 * contrast, would reach one worker at random and see only its share.
 */
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { AdminSources } from '../ops/admin-server.js'
import type { Readiness } from '../ops/health.js'

const ASK = 'portcullis:admin-ask'
const REPLY = 'portcullis:admin-reply'
/** A worker busy past this is left out of a scrape, and counts as not ready. */
const ANSWER_WITHIN_MS = 2_000

interface Ask {
  type: typeof ASK
  id: number
  what: 'metrics' | 'ready'
}
interface Reply {
  type: typeof REPLY
  id: number
  metrics?: Awaited<ReturnType<Registry['getMetricsAsJSON']>>
  reason?: string | null
}

/** In a worker: answer the primary's questions from this process's registry and readiness. */
export function answerPrimary(registry: Registry, readiness: Readiness): () => void {
  const onMessage = (message: unknown) => {
    const ask = message as Partial<Ask> | null
    if (ask?.type !== ASK || typeof ask.id !== 'number') return
    const id = ask.id
    const answer =
      ask.what === 'metrics'
        ? registry.getMetricsAsJSON().then((metrics) => ({ metrics }))
        : readiness.notReadyBecause().then((reason) => ({ reason }))
    void answer.then(
      (body) => process.send?.({ type: REPLY, id, ...body } satisfies Reply),
      () => process.send?.({ type: REPLY, id, reason: 'worker could not answer' } satisfies Reply),
    )
  }
  process.on('message', onMessage)
  return () => process.off('message', onMessage)
}

/** In the primary: what the admin listener serves, gathered from the workers. */
export function workersAdminSources(): AdminSources {
  // A worker is asked once it listens: before that it has nothing to say and would not answer.
  const serving = new Set<Worker>()
  cluster.on('listening', (worker) => serving.add(worker))
  cluster.on('exit', (worker) => serving.delete(worker))
  let nextId = 0
  const pending = new Map<number, (reply: Reply) => void>()
  cluster.on('message', (_worker, message: Partial<Reply> | null) => {
    if (message?.type === REPLY && typeof message.id === 'number') pending.get(message.id)?.(message as Reply)
  })

  const ask = (worker: Worker, what: Ask['what']) =>
    new Promise<Reply | null>((resolve) => {
      const id = nextId++
      const timer = setTimeout(() => settle(null), ANSWER_WITHIN_MS)
      const settle = (reply: Reply | null) => {
        clearTimeout(timer)
        pending.delete(id)
        resolve(reply)
      }
      pending.set(id, settle)
      if (!worker.isConnected()) return settle(null)
      worker.send({ type: ASK, id, what } satisfies Ask, (err: Error | null) => err && settle(null))
    })
  const askAll = (what: Ask['what']) => Promise.all([...serving].map(async (worker) => ({ worker, reply: await ask(worker, what) })))

  return {
    async metrics() {
      const replies = await askAll('metrics')
      const merged = AggregatorRegistry.aggregate(replies.flatMap(({ reply }) => (reply?.metrics ? [reply.metrics] : [])))
      return { contentType: merged.contentType, body: await merged.metrics() }
    },
    readiness: {
      async notReadyBecause() {
        const replies = await askAll('ready')
        if (replies.length === 0) return 'no worker is serving'
        for (const { worker, reply } of replies) {
          if (reply === null) return `worker ${worker.process.pid} did not answer`
          if (reply.reason) return `worker ${worker.process.pid}: ${reply.reason}`
        }
        return null
      },
    },
  }
}
