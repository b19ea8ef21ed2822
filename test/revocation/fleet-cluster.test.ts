/**
 * Propagation between two real instances on a 3-master Redis Cluster and behind Sentinel
 * (`store.type: redis-cluster | redis-sentinel`): the revocation feed crosses the cluster bus
 * and the sentinel-discovered master the same way it crosses one server.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { subjectTag } from '../../src/sessions/tokens.js'
import { send } from '../helpers/http.js'
import { startRedisCluster, startRedisSentinel } from '../helpers/redis.js'
import { startFleet } from '../helpers/fleet.js'
import { api, bearer, codeOf, login, loginAnswer, logout, timed, until } from '../helpers/fleet-client.js'

async function propagation(t: Test, store: string) {
  const fleet = await startFleet(t, { store })
  const a = await fleet.start('a')
  const b = await fleet.start('b')
  for (const gw of [a, b])
    t.ok(
      (await until(
        () => send(gw.url, '/readyz'),
        (r) => r.status === 200,
        15_000,
      )) !== null,
      `${gw.name} ready`,
    )
  // Users whose keys lie on different slots (and, on the cluster, different masters).
  const sessions = [await login(a.url), await login(a.url, 'bob')]
  for (const s of sessions) t.equal((await api(b.url, s.accessToken)).status, 200)
  t.equal((await logout(a.url, sessions[0]!.accessToken)).status, 204)
  t.equal((await send(a.url, '/auth/logout-all', { method: 'POST', headers: bearer(sessions[1]!.accessToken) })).status, 204)
  for (const s of sessions) {
    const ms = await until(
      () => api(b.url, s.accessToken),
      (r) => r.status === 401,
      1000,
    )
    t.ok(ms !== null, `refused on B after ${ms?.toFixed(1)} ms`)
    t.equal(codeOf(await api(b.url, s.accessToken)), 'token_revoked')
  }
  const late = await fleet.start('c')
  t.ok(
    (await until(
      () => send(late.url, '/readyz'),
      (r) => r.status === 200,
      15_000,
    )) !== null,
    'a late instance gets ready',
  )
  for (const s of sessions) t.equal(codeOf(await api(late.url, s.accessToken)), 'token_revoked', 'and loaded the set from the store')
}

t.test('revocations propagate across a 3-master Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(t)
  await propagation(t, `type: redis-cluster\nnodes: [${cluster.nodes.map((n) => `"${n}"`).join(', ')}]`)
})

t.test('revocations propagate behind Redis Sentinel', async (t) => {
  const sentinel = await startRedisSentinel(t)
  await propagation(t, `type: redis-sentinel\nsentinels: ["${sentinel.sentinels[0]}"]\nname: ${sentinel.name}`)
})

t.test('a cluster master going down fails only the sessions on its slots, fast; proxied traffic flows', async (t) => {
  const cluster = await startRedisCluster(t)
  const fleet = await startFleet(t, { store: `type: redis-cluster\nnodes: [${cluster.nodes.map((n) => `"${n}"`).join(', ')}]` })
  const a = await fleet.start('a')
  t.ok(
    (await until(
      () => send(a.url, '/readyz'),
      (r) => r.status === 200,
      15_000,
    )) !== null,
    'ready',
  )
  const probe = new Redis(cluster.servers[0]!.port, '127.0.0.1', { lazyConnect: true })
  t.teardown(() => probe.disconnect())
  const slots = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>
  const ownerOf = async (key: string) => {
    const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key))
    return slots.find(([from, to]) => slot >= from && slot <= to)![2][1]
  }
  const alicePort = await ownerOf(`{${subjectTag('u-alice')}}`)
  const bobPort = await ownerOf(`{${subjectTag('u-bob')}}`)
  const s = await login(a.url)
  const down = cluster.servers.find((server) => server.port === alicePort)!
  await down.stop()

  const refused = await timed(() => loginAnswer(a.url))
  t.equal(codeOf(refused.value), 'store_unavailable', "alice's slot is down: her sign-in is refused")
  t.ok(refused.ms < 1500, `in ${refused.ms.toFixed(0)} ms`)
  t.equal((await api(a.url, s.accessToken)).status, 200, 'her valid token still works (cached mode)')
  t.not(bobPort, alicePort, "bob's keys live on another master (their tags hash to slots 2093 and 12541)")
  t.equal((await loginAnswer(a.url, 'bob')).status, 200, 'so he signs in')
  await down.start()
  const back = await until(
    () => loginAnswer(a.url),
    (r) => r.status === 200,
    20_000,
  )
  t.ok(back !== null, `alice signs in again ${back?.toFixed(0)} ms after her node returned`)
})
