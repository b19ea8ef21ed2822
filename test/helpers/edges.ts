/**
 * Real edge proxies in front of a gateway, for forward-auth tests: Debian's nginx and Caddy as
 * processes on loopback, configured with the blocks docs/forward-auth.md publishes (so the
 * documented configurations are the tested ones), their addresses swapped for the test's.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { freePort, tempDir, waitFor, type TeardownHost } from './redis-process.js'

export interface Edge {
  /** http://127.0.0.1:port */
  url: string
  /** What the process wrote on stderr so far (for failure messages). */
  log(): string
}

/** The documentation's addresses: the gateway at 127.0.0.1:8080, the application at 127.0.0.1:3000. */
export interface Backends {
  gateway: string
  app: string
}

/** The fenced blocks of `lang` in docs/forward-auth.md, in order. */
export function documentedBlocks(lang: string): string[] {
  const page = readFileSync(new URL('../../docs/forward-auth.md', import.meta.url), 'utf8')
  return [...page.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!)
}

const hostPort = (url: string) => new URL(url).host

function addresses(block: string, backends: Backends): string {
  return block.replaceAll('127.0.0.1:8080', hostPort(backends.gateway)).replaceAll('127.0.0.1:3000', hostPort(backends.app))
}

/** nginx running the documented `server { }` block (inside a minimal main context of the test's own). */
export async function startNginx(t: TeardownHost, backends: Backends): Promise<Edge> {
  const dir = tempDir(t, 'nginx')
  const port = await freePort()
  const server = addresses(documentedBlocks('nginx')[0]!, backends).replace('listen 80;', `listen 127.0.0.1:${port};`)
  const conf = join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((p) => `  ${p}_temp_path ${dir}/${p};`).join('\n')}
${server}
}
`,
  )
  // Debian puts nginx in /usr/sbin, which a user's PATH often leaves out.
  return run(t, existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx', ['-p', dir, '-c', conf, '-e', 'stderr'], port, {})
}

/** Caddy serving each of the documented Caddyfile site blocks on a port of its own. */
export async function startCaddy(t: TeardownHost, backends: Backends): Promise<Edge[]> {
  const dir = tempDir(t, 'caddy')
  const blocks = documentedBlocks('caddyfile')
  const ports = await Promise.all(blocks.map(() => freePort()))
  const sites = blocks.map((b, i) => addresses(b, backends).replace('example.com {', `http://127.0.0.1:${ports[i]} {`))
  const file = join(dir, 'Caddyfile')
  writeFileSync(file, `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}/data\n}\n\n${sites.join('\n')}`)
  const env = { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir }
  const first = await run(t, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile'], ports[0]!, env)
  await Promise.all(ports.slice(1).map((p) => waitFor(`caddy on ${p}`, () => listening(p))))
  return ports.map((p) => ({ url: `http://127.0.0.1:${p}`, log: first.log }))
}

async function run(t: TeardownHost, cmd: string, args: string[], port: number, env: Record<string, string>): Promise<Edge> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  })
  await waitFor(`${cmd} on ${port}`, async () => child.exitCode !== null || listening(port)).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr}`)
  })
  if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}:\n${stderr}`)
  return { url: `http://127.0.0.1:${port}`, log: () => stderr }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
