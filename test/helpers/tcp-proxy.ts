/**
 * A TCP proxy on 127.0.0.1 between one gateway instance and Redis, to cut that instance off
 * while the others keep talking to Redis (a network partition), then heal the link.
 *
 * Two kinds of partition:
 * - `reset` (default): open connections are reset and new ones closed at once, like a peer
 *   that went away; clients notice and reconnect once the link is healed.
 * - `silent`: bytes stop flowing both ways but connections stay open and new ones hang, like
 *   packets dropped on the floor; nobody notices until a timeout. On heal, what was held back
 *   flows on (TCP retransmission outlived the partition), unless `heal({ zombies: true })`:
 *   then the held connections' far ends are gone while their near ends stay open and mute,
 *   like connections through a firewall that forgot them, or to a host that died; only a
 *   client that checks its connections notices.
 */
import { connect, createServer, type Socket } from 'node:net'
import type { TeardownHost } from './redis-process.js'

export interface TcpProxy {
  port: number
  /** `redis://127.0.0.1:<port>` */
  url: string
  /** Connections currently open through the proxy. */
  readonly open: number
  cut(opts?: { silent?: boolean }): void
  heal(opts?: { zombies?: boolean }): void
  close(): Promise<void>
}

interface Pipe {
  client: Socket
  upstream: Socket
}

export async function startTcpProxy(t: TeardownHost, targetPort: number): Promise<TcpProxy> {
  const pipes = new Set<Pipe>()
  const zombies = new Set<Socket>()
  let state: 'open' | 'reset' | 'silent' = 'open'

  const hold = (pipe: Pipe, held: boolean) => {
    for (const socket of [pipe.client, pipe.upstream]) {
      if (held) socket.pause()
      else socket.resume()
    }
  }
  const drop = (pipe: Pipe) => {
    pipes.delete(pipe)
    pipe.client.destroy()
    pipe.upstream.destroy()
  }

  const server = createServer((client) => {
    if (state === 'reset') {
      client.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    const pipe = { client, upstream }
    pipes.add(pipe)
    // Plain 'data' forwarding rather than pipe(): pipe() resumes a paused source on 'drain',
    // which would let bytes through a silent cut.
    client.on('data', (chunk) => upstream.write(chunk))
    upstream.on('data', (chunk) => client.write(chunk))
    for (const socket of [client, upstream]) {
      socket.on('error', () => drop(pipe))
      socket.on('close', () => drop(pipe))
    }
    if (state === 'silent') hold(pipe, true)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const proxy: TcpProxy = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get open() {
      return pipes.size
    },
    cut(opts = {}) {
      state = opts.silent ? 'silent' : 'reset'
      for (const pipe of [...pipes]) {
        if (opts.silent) hold(pipe, true)
        else {
          pipes.delete(pipe)
          pipe.client.resetAndDestroy()
          pipe.upstream.destroy()
        }
      }
    },
    heal(opts = {}) {
      state = 'open'
      for (const pipe of [...pipes]) {
        if (!opts.zombies) hold(pipe, false)
        else {
          // Forgotten by the proxy: the client's end stays open, nothing ever comes through.
          pipes.delete(pipe)
          pipe.upstream.removeAllListeners('close')
          pipe.upstream.destroy()
          zombies.add(pipe.client)
        }
      }
    },
    async close() {
      for (const pipe of [...pipes]) drop(pipe)
      for (const socket of zombies) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  t.teardown(() => proxy.close())
  return proxy
}
