/**
 * Real `redis-server` processes for tests: a single server, a 3-master cluster, and a master
 * watched by one Sentinel. Each runs on free ports in a temporary directory, never touches
 * the machine's Redis on 6379, and is killed on teardown or when the test process exits.
 */
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { answersPing, freePort, kill, resp, spawnRedis, tempDir, waitFor, type Spawned, type TeardownHost } from './redis-process.js'

export { freePort, type TeardownHost } from './redis-process.js'

export interface RedisServer {
  port: number
  /** `redis://127.0.0.1:<port>` */
  url: string
  dir: string
  readonly running: boolean
  /**
   * Stops the server. Without `keepData` it is killed (SIGKILL, a crash: data is lost);
   * with it, it shuts down saving an RDB that the next start() loads.
   */
  stop(opts?: { keepData?: boolean }): Promise<void>
  /** Starts it again on the same port. */
  start(): Promise<void>
  restart(opts?: { keepData?: boolean }): Promise<void>
  /** SIGSTOP / SIGCONT: the server hangs with connections open (a network partition). */
  pause(): void
  resume(): void
}

const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']

/** Starts one server; `extraArgs` go on its command line. */
export async function startRedis(t: TeardownHost, extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort()
  const dir = tempDir(t, 'redis')
  let proc: Spawned | null = null
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running() {
      return proc !== null
    },
    async start() {
      if (proc) return
      const started = spawnRedis(['--port', String(port), '--dir', dir, ...BASE_ARGS, ...extraArgs], dir)
      proc = started
      try {
        await waitFor(`redis-server on ${port}`, answersPing(port))
      } catch (err) {
        await kill(started)
        proc = null
        throw new Error(`redis-server did not start: ${started.output()}`, { cause: err })
      }
    },
    async stop(opts = {}) {
      const current = proc
      if (!current) return
      proc = null
      if (opts.keepData) {
        current.child.kill('SIGCONT')
        await resp(port, ['SHUTDOWN', 'SAVE']).catch(() => '')
        await current.exited
      } else {
        await kill(current)
        rmSync(join(dir, 'dump.rdb'), { force: true })
      }
    },
    async restart(opts = {}) {
      await server.stop(opts)
      await server.start()
    },
    pause() {
      proc?.child.kill('SIGSTOP')
    },
    resume() {
      proc?.child.kill('SIGCONT')
    },
  }
  t.teardown(() => server.stop())
  await server.start()
  return server
}

export interface RedisCluster {
  /** `redis://127.0.0.1:<port>` of each master. */
  nodes: string[]
  /** Each master; stop() and start() one to take it down and bring it back with its slots. */
  servers: RedisServer[]
  stop(): Promise<void>
}

const run = promisify(execFile)

/**
 * Three masters, no replicas, a third of the slots each; resolves once cluster_state:ok.
 * Nodes keep serving their own slots while another is down (full coverage not required).
 */
export async function startRedisCluster(t: TeardownHost): Promise<RedisCluster> {
  const servers: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    // The bus port is chosen explicitly: port + 10000 may be taken.
    servers.push(
      await startRedis(t, [
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(await freePort()),
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
        '--cluster-require-full-coverage',
        'no',
      ]),
    )
  }
  const ports = servers.map((s) => s.port)
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
    timeout: 20_000,
  })
  for (const port of ports) {
    await waitFor(`cluster_state:ok on ${port}`, async () => (await resp(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'), 20_000)
  }
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  return { nodes: servers.map((s) => s.url), servers, stop }
}

export interface RedisSentinel {
  master: RedisServer
  /** `127.0.0.1:<port>` of the sentinel, as `store.sentinels` expects. */
  sentinels: string[]
  name: string
  stop(): Promise<void>
}

/** One master and one Sentinel monitoring it with quorum 1. */
export async function startRedisSentinel(t: TeardownHost, name = 'mymaster'): Promise<RedisSentinel> {
  const master = await startRedis(t)
  const dir = tempDir(t, 'sentinel')
  const port = await freePort()
  const conf = join(dir, 'sentinel.conf')
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'protected-mode no',
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 10000`,
    ].join('\n') + '\n',
  )
  // Sentinel rewrites its config file, so it gets its own copy in the temp dir.
  const proc = spawnRedis([conf, '--sentinel'], dir)
  const stop = async () => {
    await kill(proc)
    await master.stop()
  }
  t.teardown(stop)
  await waitFor(`sentinel on ${port}`, async () => (await resp(port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])).includes(String(master.port)))
  return { master, sentinels: [`127.0.0.1:${port}`], name, stop }
}
