/**
 * Issue 14, item 2: after Redis stalls past the connection watchdog's deadline, every instance
 * reconnects once and then stays connected; it does not reconnect (and resync) every few
 * seconds for ever.
 */
import t from 'tap'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startFleet, type Instance } from '../helpers/fleet.js'
import { api, login, logout, until } from '../helpers/fleet-client.js'

const ready = (gw: Instance) =>
  until(
    () => send(gw.url, '/readyz'),
    (r) => r.status === 200,
    10_000,
  )
const silences = (gw: Instance) =>
  gw
    .logText()
    .split('\n')
    .filter((line) => line.includes('redis connection went silent')).length
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a fleet that lived through a 5 s Redis stall reconnects once, then stays quiet and in sync', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startFleet(t, { store: 'type: redis\nurl: ${REDIS_URL}' })
  const a = await fleet.start('a', redis.url)
  const b = await fleet.start('b', redis.url)
  for (const gw of [a, b]) t.ok((await ready(gw)) !== null, `${gw.name} ready`)

  // The watchdog pings every second and drops a connection silent for 3 s (default timeout):
  // 5 s of silence reach every connection's deadline whatever the phase of its pings.
  redis.pause()
  await sleep(5000)
  redis.resume()
  for (const gw of [a, b]) t.ok((await ready(gw)) !== null, `${gw.name} ready again`)
  // Log lines reach the destination within a second (src/ops/logger.ts).
  await sleep(2000)
  const afterStall = [silences(a), silences(b)]
  t.ok(afterStall[0]! > 0 && afterStall[1]! > 0, `the stall was noticed (${afterStall.join(', ')} connections dropped)`)

  // Long enough for two more rounds of the old churn (a drop every 4 s).
  await sleep(8500)
  t.same([silences(a), silences(b)], afterStall, 'no connection was dropped again once Redis answered')
  const session = await login(a.url)
  t.equal((await logout(a.url, session.accessToken)).status, 204)
  t.ok(
    (await until(
      () => api(b.url, session.accessToken),
      (r) => r.status === 401,
      1000,
    )) !== null,
    'revocations still reach the other instance',
  )
})
