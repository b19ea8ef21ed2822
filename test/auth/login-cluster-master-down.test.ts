/**
 * Sign-in on a 3-master Redis Cluster when one master is SIGKILLed (docs/fleet.md, "a Cluster
 * master down"): only the users whose own slot the dead master holds lose sign-in and refresh.
 * Where each counter lives is read from the real keys (every master's KEYS), not recomputed.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { hashId } from '../../src/ops/rate-limit.js'
import { normalizeUsername } from '../../src/auth/username.js'
import { subjectTag } from '../../src/sessions/tokens.js'
import { send } from '../helpers/http.js'
import { codeOf, refresh, type Tokens } from '../helpers/fleet-client.js'
import { startRedisCluster, type RedisCluster } from '../helpers/redis.js'
import { LISTEN, startRunning } from '../helpers/running.js'
import { startUpstream } from '../helpers/upstream.js'
import { TOKEN_MODE } from '../ops/identity-service.js'
import { value } from '../ops/prometheus.js'

/** A cluster, a gateway on it, and an identity service whose subjects the test chooses. */
async function setup(t: Test, perClientMax: number) {
  const cluster = await startRedisCluster(t)
  // Username → subject; by default the subject is the username, as for a static user.
  const subjects = new Map<string, string>()
  const id = await startUpstream(t)
  id.handle((_req, res, body) => {
    const { username, password } = JSON.parse(body) as { username: string; password: string }
    if (password !== 'right') return void res.writeHead(401).end()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ subject: subjects.get(username) ?? username, roles: ['user'] }))
  })
  const running = await startRunning(
    t,
    `${LISTEN}store: { type: redis-cluster, nodes: [${cluster.nodes.map((n) => `"${n}"`).join(', ')}] }
auth:
  cookies: { secure: false }
  identity: [{ type: http, url: "${id.url}/verify" }]
rateLimits: { login: { perClient: { max: ${perClientMax}, window: 1m }, perUser: { max: 10, window: 15m } } }
`,
  )
  const url = running.gw.url
  const probes = cluster.servers.map((s) => new Redis(s.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 }))
  // A probe of the master the test kills keeps reconnecting; its errors are expected.
  for (const probe of probes) probe.on('error', () => {})
  t.teardown(() => {
    for (const p of probes) p.disconnect()
  })
  const slots = (await probes[0]!.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>
  const slotOf = async (key: string) => Number(await probes[0]!.call('CLUSTER', 'KEYSLOT', key))
  const portOfSlot = (slot: number) => slots.find(([from, to]) => slot >= from && slot <= to)![2][1]
  return {
    cluster,
    running,
    url,
    subjects,
    slotOf,
    /** The master that holds the sessions of `subject`. */
    sessionMaster: async (subject: string) => portOfSlot(await slotOf(`{${subjectTag(subject)}}`)),
    /** The key and master of the counter the gateway wrote for `id` (whatever its layout). */
    async counter(scope: string, id: string): Promise<{ key: string; port: number }> {
      for (const [i, probe] of probes.entries()) {
        const keys = (await probe.keys(`*rl:${scope}:*`)) as string[]
        const key = keys.find((k) => k.replace(/[{}]/g, '').endsWith(hashId(id)))
        if (key) return { key, port: cluster.servers[i]!.port }
      }
      throw new Error(`no ${scope} counter for ${id}`)
    },
    login: (username: string, password = 'right') =>
      send(url, '/auth/login', { method: 'POST', headers: TOKEN_MODE, body: JSON.stringify({ username, password }) }),
  }
}

type Setup = Awaited<ReturnType<typeof setup>>

/** The first of `user0`, `user1`, ... whose sessions live on a master `ok` accepts. */
async function userOn(s: Setup, prefix: string, ok: (port: number) => boolean): Promise<string> {
  for (let i = 0; i < 200; i++) if (ok(await s.sessionMaster(`${prefix}${i}`))) return `${prefix}${i}`
  throw new Error('no such user')
}

const kill = async (cluster: RedisCluster, port: number) => cluster.servers.find((server) => server.port === port)!.stop()

t.test("a dead master fails the sign-in and refresh of the users whose slot it holds, and no one else's", async (t) => {
  const s = await setup(t, 1000)
  // A failed attempt writes the client address's counter; its master is left alive here.
  t.equal((await s.login('nobody', 'wrong')).status, 401)
  const clientMaster = (await s.counter('login_client', '127.0.0.1')).port
  const alice = await userOn(s, 'alice', (p) => p !== clientMaster)
  const aliceMaster = await s.sessionMaster(alice)
  const bob = await userOn(s, 'bob', (p) => p !== clientMaster && p !== aliceMaster)
  const bobMaster = await s.sessionMaster(bob)

  t.equal((await s.login(alice, 'wrong')).status, 401)
  const aliceCounter = await s.counter('login_user', normalizeUsername(alice))
  t.equal(await s.slotOf(aliceCounter.key), await s.slotOf(`{${subjectTag(alice)}}`), "alice's sign-in counter shares the slot of her sessions")
  // Carol's username counter lands on bob's master, her sessions (subject u-carol…) on alice's.
  let carol = ''
  for (let i = 0; i < 50 && !carol; i++) {
    t.equal((await s.login(`carol${i}`, 'wrong')).status, 401)
    if ((await s.counter('login_user', `carol${i}`)).port === bobMaster) carol = `carol${i}`
  }
  t.ok(carol, `${carol}'s counter is on bob's master`)
  for (let k = 0; !s.subjects.has(carol); k++) {
    if ((await s.sessionMaster(`u-${carol}-${k}`)) === aliceMaster) s.subjects.set(carol, `u-${carol}-${k}`)
  }

  const aliceTokens = (await s.login(alice)).json<Tokens>()
  const bobTokens = (await s.login(bob)).json<Tokens>()
  t.ok(aliceTokens.refreshToken && bobTokens.refreshToken, 'both signed in while every master was up')
  await kill(s.cluster, bobMaster)

  const bobIn = await s.login(bob)
  t.equal(bobIn.status, 503, "bob's slot is down: his sign-in fails")
  t.equal(codeOf(bobIn), 'store_unavailable')
  const bobRefresh = await refresh(s.url, bobTokens.refreshToken)
  t.equal(bobRefresh.status, 503, 'and so does his refresh')
  t.equal(codeOf(bobRefresh), 'store_unavailable')
  t.equal((await s.login(alice)).status, 200, 'alice signs in')
  t.equal((await refresh(s.url, aliceTokens.refreshToken)).status, 200, 'and refreshes')
  t.equal((await s.login(carol)).status, 200, 'carol signs in: her counter is counted in the instance while its master is down')
  const metrics = (await send(s.url, '/metrics')).body
  t.ok(value(metrics, 'portcullis_rate_limit_errors_total', { limiter: 'login_user' })! >= 1, 'the missed counts are in the metrics')
  t.ok(
    s.running.logs().some((l) => l['limiter'] === 'login_user' && l['whenUnreachable'] === 'count-here'),
    'and in the log',
  )
})

t.test('a dead master holding only the client address counter stops no sign-in, and the limit still holds in the instance', async (t) => {
  const s = await setup(t, 5)
  t.equal((await s.login('nobody', 'wrong')).status, 401)
  const clientMaster = (await s.counter('login_client', '127.0.0.1')).port
  const alice = await userOn(s, 'alice', (p) => p !== clientMaster)
  const bob = await userOn(s, 'bob', (p) => p !== clientMaster)
  const aliceTokens = (await s.login(alice)).json<Tokens>()
  await kill(s.cluster, clientMaster)

  t.equal((await s.login(alice)).status, 200, 'alice signs in')
  t.equal((await s.login(bob)).status, 200, 'bob signs in')
  t.equal((await refresh(s.url, aliceTokens.refreshToken)).status, 200, 'alice refreshes')
  let allowed = 2
  let refused = await s.login(alice)
  for (; refused.status === 200 && allowed < 20; refused = await s.login(alice)) allowed++
  t.equal(refused.status, 429, 'the per-client limit still refuses')
  t.equal(codeOf(refused), 'rate_limited')
  t.equal(allowed, 5, 'after exactly perClient.max attempts counted in this instance')
  const warnings = s.running.logs().filter((l) => l['limiter'] === 'login_client' && String(l['msg']).includes('rate-limit store unreachable'))
  t.equal(warnings.length, 1, 'one warning for the outage, not one per attempt')
})

t.test('a hung master holding the client address counter costs a sign-in one command timeout, not one per count', async (t) => {
  const s = await setup(t, 1000)
  t.equal((await s.login('nobody', 'wrong')).status, 401)
  const clientMaster = (await s.counter('login_client', '127.0.0.1')).port
  // Dave's username counter shares that master; his sessions live on another.
  let dave = ''
  for (let i = 0; i < 50 && !dave; i++) {
    t.equal((await s.login(`dave${i}`, 'wrong')).status, 401)
    if ((await s.counter('login_user', `dave${i}`)).port === clientMaster) dave = `dave${i}`
  }
  t.ok(dave, `${dave}'s counter is on the client address counter's master`)
  for (let k = 0; !s.subjects.has(dave); k++) {
    if ((await s.sessionMaster(`u-${dave}-${k}`)) !== clientMaster) s.subjects.set(dave, `u-${dave}-${k}`)
  }
  const hung = s.cluster.servers.find((server) => server.port === clientMaster)!
  hung.pause()
  t.teardown(() => hung.resume())
  const start = performance.now()
  const answer = await s.login(dave)
  const ms = performance.now() - start
  t.equal(answer.status, 200, 'dave signs in')
  // store.commandTimeout is 500 ms: one wait, not three (his count and its reset wait no more).
  t.ok(ms < 900, `in ${ms.toFixed(0)} ms`)
})
