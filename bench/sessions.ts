/**
 * `npm run bench:sessions`: the session endpoints of one gateway process on a Redis store.
 *
 * (a) refreshes/s: REFRESH_CLIENTS clients, each signed in once, then refreshing its own
 *     session in a loop with the refresh token it was last given (token mode, keep-alive);
 * (b) logins/s: LOGIN_CONCURRENCY sign-ins in flight at all times, argon2id as configured
 *     (src/auth/passwords.ts), spread over USERS static users;
 * (c) the proxied protected route (wrk/autocannon, one valid token) alone vs during a login
 *     storm like (b), interleaved over ROUNDS; hashing runs on libuv's thread pool, so the
 *     event loop, and with it the proxied p99, should not stall. The gateway's own event-loop
 *     delay is read from its /metrics (prom-client resets it at every scrape).
 * MONITOR counts the round trips each refresh and login costs (./redis-stats.ts).
 * The sign-in and refresh limits are raised so they never answer 429 here.
 * Environment: BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_NO_BUILD=1, BENCH_NO_WRITE=1.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { hashPassword } from '../src/auth/passwords.js'
import { generatePem } from '../src/cli/keys-generate.js'
import { withSettings } from './gateway-yaml.js'
import { BROWSER_UA, keepAliveAgent, postJson } from './http-client.js'
import { loadGenerator, runLoad, type LoadResult } from './load.js'
import { machineFacts, writeSection } from './report.js'
import { commandsSent, perOperation } from './redis-stats.js'
import { gatewayConfig, startProcess, startRedisServer } from './setup.js'
import { fixed, median, quantile, whole } from './stats.js'

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const REFRESH_CLIENTS = 32
const LOGIN_CONCURRENCY = 8
const USERS = 100
const WRK_CONNECTIONS = 20
const PASSWORD = 'correct horse battery staple'
const HUGE = 1_000_000_000

interface Tokens {
  accessToken: string
  refreshToken: string
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sessions-'))
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })

  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)
  const redisUrl = await startRedisServer(children)
  if (!redisUrl) throw new Error('bench:sessions needs redis-server')
  const hash = await hashPassword(PASSWORD)
  const users = Array.from({ length: USERS }, (_, i) => `{ username: bench-${i}, passwordHash: "${hash}", roles: [user] }`)
  const config = withSettings(gatewayConfig('ES256', generatePem('ES256'), dir, upstream.url, { redisUrl }), {
    auth: ['maxSessionsPerUser: 10000', `identity: [{ type: static, users: [${users.join(', ')}] }]`],
    top: [
      'rateLimits:',
      `  login: { perUser: { max: ${HUGE}, window: 15m }, perClient: { max: ${HUGE}, window: 1m } }`,
      `  refresh: { perSession: { max: ${HUGE}, window: 1m } }`,
    ].join('\n'),
  })
  const file = join(dir, 'gw.yaml')
  writeFileSync(file, config)
  // The same gateway twice: with Node's default thread pool (4 threads, where argon2 and
  // WebCrypto's signing run) and with one thread, which caps concurrent hashing at one core.
  const pools = [4, 1]
  const gateways: string[] = []
  for (const size of pools) {
    gateways.push(
      (await startProcess('node', [join(root, 'dist/cli.js'), 'start', '--config', file], children, { UV_THREADPOOL_SIZE: String(size) })).url,
    )
  }
  const redis = new Redis(redisUrl)

  const agent = keepAliveAgent(REFRESH_CLIENTS + LOGIN_CONCURRENCY)
  const headers = { 'x-auth-transport': 'token', 'user-agent': BROWSER_UA }
  let signedIn = 0
  const login = async (gw: string): Promise<{ ms: number; tokens: Tokens }> => {
    const r = await postJson(agent, new URL('/auth/login', gw), { username: `bench-${signedIn++ % USERS}`, password: PASSWORD }, headers)
    if (r.status !== 200) throw new Error(`login answered ${r.status}: ${r.body}`)
    return { ms: r.ms, tokens: JSON.parse(r.body) as Tokens }
  }
  const refresh = async (gw: string, session: Tokens): Promise<{ ms: number; tokens: Tokens }> => {
    const r = await postJson(agent, new URL('/auth/refresh', gw), { refreshToken: session.refreshToken }, headers)
    if (r.status !== 200) throw new Error(`refresh answered ${r.status}: ${r.body}`)
    return { ms: r.ms, tokens: JSON.parse(r.body) as Tokens }
  }
  /** `n` loops running `step` until `seconds` have passed; the latencies of the steps. */
  const loops = async (n: number, seconds: number, step: (i: number) => Promise<number>) => {
    const end = performance.now() + seconds * 1000
    const started = performance.now()
    const ms: number[] = []
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        while (performance.now() < end) ms.push(await step(i))
      }),
    )
    return { ms, seconds: (performance.now() - started) / 1000 }
  }
  const loginStorm = (gw: string, seconds: number) => loops(LOGIN_CONCURRENCY, seconds, async () => (await login(gw)).ms)

  // (a) Refreshes, each client on its own session, against the default gateway.
  const gw = gateways[0]!
  const sessions: Tokens[] = []
  for (let i = 0; i < REFRESH_CLIENTS; i++) sessions.push((await login(gw)).tokens)
  const accessToken = sessions[0]!.accessToken
  const refreshes = await loops(REFRESH_CLIENTS, SECONDS, async (i) => {
    const r = await refresh(gw, sessions[i]!)
    sessions[i] = r.tokens
    return r.ms
  })

  // (b) Logins, on each gateway.
  const logins: Array<{ ms: number[]; seconds: number }> = []
  for (const url of gateways) logins.push(await loginStorm(url, SECONDS))

  // Round trips to Redis per operation, from a small sequential sample.
  const SAMPLE = 20
  const refreshTrips = await commandsSent(redis, async () => {
    for (let i = 0; i < SAMPLE; i++) sessions[0] = (await refresh(gw, sessions[0]!)).tokens
  })
  const loginTrips = await commandsSent(redis, async () => {
    for (let i = 0; i < SAMPLE; i++) await login(gw)
  })

  // (c) Proxied traffic alone vs during a login storm, interleaved, on each gateway.
  const lag = async (url: string) => {
    const text = await (await fetch(new URL('/metrics', url))).text()
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000
    return { p99: read('nodejs_eventloop_lag_p99_seconds'), max: read('nodejs_eventloop_lag_max_seconds') }
  }
  type Run = LoadResult & { lag: { p99: number; max: number }; logins: number }
  const proxied = (url: string) =>
    runLoad({ url: `${url}/api/x`, connections: WRK_CONNECTIONS, seconds: SECONDS, headers: { authorization: `Bearer ${accessToken}` } })
  const runs = gateways.map(() => ({ alone: [] as Run[], during: [] as Run[] }))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [g, url] of gateways.entries()) {
      await lag(url)
      const alone: Run = { ...(await proxied(url)), lag: await lag(url), logins: 0 }
      const [load, storm] = await Promise.all([proxied(url), loginStorm(url, SECONDS)])
      const during: Run = { ...load, lag: await lag(url), logins: storm.ms.length / storm.seconds }
      runs[g]!.alone.push(alone)
      runs[g]!.during.push(during)
      console.log(
        `round ${round} pool ${pools[g]}: alone ${whole(alone.rps)}/s p99 ${fixed(alone.p99ms)} ms lag max ${fixed(alone.lag.max)} ms | during storm ${whole(during.rps)}/s p99 ${fixed(during.p99ms)} ms lag max ${fixed(during.lag.max)} ms, ${whole(during.logins)} logins/s`,
      )
    }
  }
  redis.disconnect()
  agent.destroy()

  const rate = (r: { ms: number[]; seconds: number }) => whole(r.ms.length / r.seconds)
  const sessionTable = [
    '| operation | thread pool | concurrency | per second | p50 ms | p99 ms | Redis round trips each |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    `| refresh (rotate + new access token) | 4 | ${REFRESH_CLIENTS} clients, one session each | ${rate(refreshes)} | ${fixed(quantile(refreshes.ms, 0.5))} | ${fixed(quantile(refreshes.ms, 0.99))} | ${perOperation(refreshTrips, SAMPLE)} |`,
    ...logins.map(
      (l, g) =>
        `| login (argon2id verify + new session) | ${pools[g]} | ${LOGIN_CONCURRENCY} in flight | ${rate(l)} | ${fixed(quantile(l.ms, 0.5))} | ${fixed(quantile(l.ms, 0.99))} | ${g === 0 ? perOperation(loginTrips, SAMPLE) : 'same'} |`,
    ),
  ].join('\n')
  const m = <T>(rs: T[], f: (r: T) => number) => median(rs.map(f))
  const row = (label: string, rs: Run[], base: Run[]) =>
    `| ${label} | ${whole(m(rs, (r) => r.rps))} | ${fixed(m(rs, (r) => r.p50ms))} | ${fixed(m(rs, (r) => r.p99ms))} | ${fixed(median(rs.map((r, i) => r.p99ms / base[i]!.p99ms)))}× | ${fixed(m(rs, (r) => r.lag.p99))} / ${fixed(m(rs, (r) => r.lag.max))} | ${whole(m(rs, (r) => r.logins))} | ${rs.reduce((n, r) => n + r.non2xx + r.errors, 0)} |`
  const stormTable = [
    '| proxied protected route | req/s | p50 ms | p99 ms | p99 vs alone | gateway event-loop delay p99 / max ms | logins/s meanwhile | non-2xx + errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.flatMap((r, g) => [
      row(`thread pool ${pools[g]}: alone`, r.alone, r.alone),
      row(`thread pool ${pools[g]}: during a login storm (${LOGIN_CONCURRENCY} in flight)`, r.during, r.alone),
    ]),
  ].join('\n')
  const body = [
    '## Session endpoints',
    '',
    `${machineFacts()} 1-minute load average at the end: ${loadavg()[0]!.toFixed(1)} (the machine is shared with other work: figures are noisy).`,
    'Command: `npm run bench:sessions` (bench/sessions.ts).',
    `Setup: two ES256 gateway processes (1 worker each, access log on, same config) with one Redis store (redis-server on loopback, also holding the sign-in counters; the refresh count lives in each session), ${USERS} static users with argon2id hashes (m=47104 KiB, t=2, p=1), sign-in and refresh limits raised out of the way. Clients run in the benchmark's own Node process (node:http, keep-alive, token mode, a 110-byte browser user agent), on the same two cores as the gateway, Redis and the upstream. ${SECONDS} s per measurement; latencies are per request as the client saw them.`,
    '',
    sessionTable,
    '',
    `Redis round trips each: the commands the gateway sent to Redis, read through MONITOR over ${SAMPLE} sequential operations of each kind after the timed runs (commands run inside scripts not counted). A refresh is the rotation script alone, which also counts refresh.perSession in the session it rotates (until layout version 2 that count was a script call of its own, so a refresh took 2 EVALSHA); a login, the two sign-in counters, the session's create script and the DEL that resets the per-user counter.`,
    '',
    "Thread pool: argon2 (@node-rs/argon2) and WebCrypto (jose signs and verifies through it) run on libuv's thread pool, never on the event loop's thread. With Node's default of 4 threads on 2 cores, four hashes in flight can take both cores away from the event loop's thread; the second gateway, the same config started with UV_THREADPOOL_SIZE=1, shows what capping concurrent hashing at one core does to logins/s and to the proxied traffic. The gateway itself now also caps password hashes in flight at cores − 1 (src/auth/passwords.ts); before that cap, the default pool took proxied p99 to 4.27× during a storm (35.80 ms against 8.32 ms alone).",
    '',
    `Proxied traffic (${loadGenerator()}, ${WRK_CONNECTIONS} connections, one cached valid token) alone and during a login storm, ${ROUNDS} interleaved rounds of ${SECONDS} s, medians; the event-loop delay is prom-client's (monitorEventLoopDelay, 10 ms resolution, so an idle loop reads about 10 ms) scraped from the gateway's /metrics around each run:`,
    '',
    stormTable,
  ].join('\n')
  console.log('\n' + body)
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/benchmarks.md'), 'sessions', body)
  for (const c of children) c.kill()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
