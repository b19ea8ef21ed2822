import t from 'tap'
import { Agent, request } from 'node:http'
import { LISTEN, replaceByRename, startRunning } from '../helpers/running.js'
import { startUpstream } from '../helpers/upstream.js'

const CONNECTIONS = 20
const DURATION_MS = 5000
const RELOAD_EVERY_MS = 200

/** Two valid configs that differ only in a route the load never uses (one client address: no rate limit in the way). */
const config = (up: string, spare: string) => `${LISTEN}routes:
  - { name: api, prefix: /api, upstream: "${up}", auth: none, rateLimit: { max: 1000000, window: 1m } }
  - { name: ${spare}, prefix: /${spare}, upstream: "${up}", auth: none }
`

/** One GET on a kept-alive connection of `agent`: the status, or the connection error. */
function get(agent: Agent, url: URL, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path, agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', (err) => resolve(err.message))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    req.end()
  })
}

t.test('not a single request fails while the config is reloaded every 200 ms under load', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, config(up.url, 'spare-a'))
  const url = new URL(run.gw.url)
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS })
  t.teardown(() => agent.destroy())
  const sockets = new Set<unknown>()
  agent.on('free', (socket) => sockets.add(socket))

  const statuses = new Map<number | string, number>()
  let sent = 0
  const deadline = performance.now() + DURATION_MS
  const client = async (n: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const status = await get(agent, url, `/api/c${n}/${i}`)
      sent++
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  }

  const generations: number[] = [run.gw.server.current!.id]
  const reloads: Promise<void>[] = []
  let flip = false
  const timer = setInterval(() => {
    flip = !flip
    reloads.push(
      (async () => {
        // Atomically, as an operator's tools should: a half-written file is a different test.
        await replaceByRename(run.file, config(up.url, flip ? 'spare-b' : 'spare-a'))
        const result = await run.gw.reload()
        if (result.ok) generations.push(result.generation)
        else t.fail(`a reload was rejected: ${result.problems.join('; ')}`)
      })(),
    )
  }, RELOAD_EVERY_MS)
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, n) => client(n)))
  clearInterval(timer)
  await Promise.all(reloads)

  const failures = [...statuses].filter(([status]) => status !== 200)
  t.same(failures, [], `no failure in ${sent} requests`)
  t.ok(sent > 1000, `${sent} requests were sent in ${DURATION_MS} ms`)
  t.ok(generations.length >= 15, `${generations.length - 1} reloads happened during the load`)
  t.ok(sockets.size <= CONNECTIONS, `${sockets.size} kept-alive connections carried it`)
  t.equal(up.seen.length, sent, 'the upstream got every request')

  // Every retired generation reports how many requests it took: both configs really served.
  const closed = await Promise.all(
    generations.slice(0, -1).map((g) => run.logged((l) => l['msg'] === 'generation drained and closed' && l['generation'] === g, 5000)),
  )
  const served = (parity: number) => closed.filter((l) => Number(l['generation']) % 2 === parity).reduce((n, l) => n + Number(l['served']), 0)
  t.ok(served(0) > 0 && served(1) > 0, `config A served ${served(1)}, config B ${served(0)} (retired generations)`)
  t.ok(
    closed.every((l) => l['cut'] === 0),
    'no generation had to cut anything off',
  )
})
