import t from 'tap'
import { resp } from '../helpers/redis-process.js'
import { startRedis, startRedisCluster } from '../helpers/redis.js'
import { LISTEN, startRunning, type Running } from '../helpers/running.js'
import { value } from './prometheus.js'

const MAY_EVICT = 'redis maxmemory-policy is not noeviction'
const UNCHECKED = 'could not check redis maxmemory-policy'
const SAFE = 'redis maxmemory-policy is noeviction'

const startsWith = (prefix: string) => (l: Record<string, unknown>) => typeof l['msg'] === 'string' && l['msg'].startsWith(prefix)

async function scrape(run: Running): Promise<string> {
  return (await fetch(`${run.gw.url}/metrics`)).text()
}

t.test('a Redis that may evict is warned about at start and shown in portcullis_store_maxmemory_policy', async (t) => {
  const redis = await startRedis(t, ['--maxmemory-policy', 'allkeys-lru'])
  const run = await startRunning(t, `${LISTEN}store: { type: redis, url: "${redis.url}" }\n`)
  const warning = await run.logged(startsWith(MAY_EVICT))
  t.equal(warning['level'], 40)
  t.equal(warning['policy'], 'allkeys-lru')
  t.equal(warning['node'], `127.0.0.1:${redis.port}`)
  t.match(String(warning['msg']), /set maxmemory-policy noeviction/)
  const text = await scrape(run)
  t.equal(value(text, 'portcullis_store_maxmemory_policy', { policy: 'allkeys-lru' }), 1)
  t.equal(value(text, 'portcullis_store_maxmemory_policy', { policy: 'noeviction' }), undefined)
})

t.test('a Redis with noeviction gets no warning, and the metric says noeviction', async (t) => {
  const redis = await startRedis(t, ['--maxmemory-policy', 'noeviction'])
  const run = await startRunning(t, `${LISTEN}store: { type: redis, url: "${redis.url}" }\n`)
  t.same((await run.logged(startsWith(SAFE)))['masters'], 1)
  t.notOk(
    run.logs().some((l) => startsWith(MAY_EVICT)(l) || startsWith(UNCHECKED)(l)),
    'no warning',
  )
  t.equal(value(await scrape(run), 'portcullis_store_maxmemory_policy', { policy: 'noeviction' }), 1)
})

t.test('where CONFIG is renamed away (managed Redis), the policy is read from INFO memory', async (t) => {
  const redis = await startRedis(t, ['--maxmemory-policy', 'volatile-lru', '--rename-command', 'CONFIG', ''])
  t.match(await resp(redis.port, ['CONFIG', 'GET', 'maxmemory-policy']), /^-ERR unknown command/, 'CONFIG is gone')
  const run = await startRunning(t, `${LISTEN}store: { type: redis, url: "${redis.url}" }\n`)
  t.equal((await run.logged(startsWith(MAY_EVICT)))['policy'], 'volatile-lru')
  t.equal(value(await scrape(run), 'portcullis_store_maxmemory_policy', { policy: 'volatile-lru' }), 1)
})

t.test('when neither CONFIG nor INFO may be used, the log says the policy could not be checked', async (t) => {
  const redis = await startRedis(t, ['--maxmemory-policy', 'allkeys-random'])
  t.match(await resp(redis.port, ['ACL', 'SETUSER', 'default', '-config', '-info']), /^\+OK/)
  const run = await startRunning(t, `${LISTEN}store: { type: redis, url: "${redis.url}" }\n`)
  const warning = await run.logged(startsWith(UNCHECKED))
  t.equal(warning['level'], 40)
  t.equal(warning['node'], `127.0.0.1:${redis.port}`)
  t.match(String(warning['msg']), /make sure it is noeviction/)
  t.equal(value(await scrape(run), 'portcullis_store_maxmemory_policy', { policy: 'unknown' }), 1)
})

t.test('on a Cluster every master is checked, and only the one that may evict is warned about', async (t) => {
  const cluster = await startRedisCluster(t)
  const odd = cluster.servers[1]!
  t.match(await resp(odd.port, ['CONFIG', 'SET', 'maxmemory-policy', 'volatile-ttl']), /^\+OK/)
  const run = await startRunning(t, `${LISTEN}store: { type: redis-cluster, nodes: ["${cluster.nodes[0]}"] }\n`)
  const warning = await run.logged(startsWith(MAY_EVICT), 10_000)
  t.equal(warning['policy'], 'volatile-ttl')
  t.equal(warning['node'], `127.0.0.1:${odd.port}`)
  const text = await scrape(run)
  t.equal(value(text, 'portcullis_store_maxmemory_policy', { policy: 'noeviction' }), 2)
  t.equal(value(text, 'portcullis_store_maxmemory_policy', { policy: 'volatile-ttl' }), 1)
  t.equal(run.logs().filter(startsWith(MAY_EVICT)).length, 1, 'one warning, for that master')
})
