/**
 * `npm run bench:tls`: what serving HTTPS itself (server.tls) costs the gateway, and how it
 * compares with nginx terminating TLS in front of the same upstream.
 *
 * Real processes on loopback: the benchmark upstream, one gateway over plain HTTP, one over
 * HTTPS (HTTP/2 and HTTP/1.1 offered by ALPN), and nginx (one worker) serving the same
 * certificate over HTTPS and plain HTTP, proxying to the same upstream with keep-alive. Every
 * case is loaded by h2load (nghttp2-client: one tool for h2 and, with --h1, HTTP/1.1, with or
 * without TLS), CONNECTIONS connections with one request in flight each (and HTTP/2 once more
 * with the same number of requests in flight over a tenth of the connections), through the
 * gateway's `auth: none` route, so what differs between cases is the transport. Cases run in
 * turn, round after round, and each figure is the median over rounds. CPU time per request is
 * the serving process's (nginx: master and worker), read from /proc around the measured run.
 *
 * Then full handshakes: `openssl s_time -new` opens connection after connection for SECONDS,
 * and the server's CPU time per handshake is what a client that does not reuse connections
 * costs.
 *
 * Environment: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_WARMUP (1), BENCH_CONNECTIONS (50),
 * BENCH_NO_BUILD=1, BENCH_NO_WRITE=1 (else the table goes into docs/https.md).
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { machineFacts, writeSection } from './report.js'
import { cpuTimeMs, freePort, startProcess } from './setup.js'

const run = promisify(execFile)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 1)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const NGINX = '/usr/sbin/nginx'
const PATH = '/public/x'
/** Streams per connection in the multiplexed HTTP/2 cases, as a browser loading a page has. */
const MUX = 10

interface Server {
  name: string
  url: string
  pid: number
}

interface Case {
  name: string
  description: string
  server: Server
  /** h2load's own protocol flag: none for h2, --h1 for HTTP/1.1. */
  h1: boolean
  /** HTTP/2 only: requests in flight per connection, over CONNECTIONS / streams connections (default 1). */
  streams?: number
}

interface Sample {
  rps: number
  meanMs: number
  cpuUsPerRequest: number
  failed: number
}

function need(binary: string, pkg: string): void {
  try {
    execFileSync(binary, ['--version'], { stdio: 'ignore' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error(`bench:tls needs ${binary}: apt-get install -y ${pkg}`)
      process.exit(1)
    }
  }
}

async function main(): Promise<void> {
  need('h2load', 'nghttp2-client')
  need(NGINX, 'nginx')
  need('openssl', 'openssl')
  const root = new URL('..', import.meta.url).pathname
  if (!process.env['BENCH_NO_BUILD']) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-tls-'))
  const children: Array<{ kill(): void }> = []
  process.on('exit', () => {
    for (const c of children) c.kill()
  })
  const { certFile, keyFile } = await selfSigned(dir)
  const upstream = await startProcess('node', [join(root, 'bench/upstream.mjs')], children)

  const gatewayConfig = (tls: boolean) => {
    const file = join(dir, `gateway-${tls ? 'tls' : 'plain'}.yaml`)
    writeFileSync(
      file,
      `server:\n  host: 127.0.0.1\n  port: \${PORT}\n  logLevel: info\n${tls ? `  tls: { certFile: ${certFile}, keyFile: ${keyFile} }\n` : ''}` +
        `routes:\n  - { name: public, prefix: /public, upstream: "${upstream.url}", auth: none }\n`,
    )
    return file
  }
  const cli = join(root, 'dist/cli.js')
  const plain = await startProcess('node', [cli, 'start', '--config', gatewayConfig(false)], children)
  const secure = await startSecure('node', [cli, 'start', '--config', gatewayConfig(true)], children)
  const nginx = await startNginx(dir, upstream.url, certFile, keyFile, children)

  const gw = (name: string, s: { url: string; pid: number }): Server => ({ name, ...s })
  const cases: Case[] = [
    { name: 'gateway-http', description: 'gateway, plain HTTP/1.1 (baseline)', server: gw('gateway', plain), h1: true },
    { name: 'gateway-https-h1', description: 'gateway, HTTPS, HTTP/1.1', server: gw('gateway', secure), h1: true },
    { name: 'gateway-https-h2', description: 'gateway, HTTPS, HTTP/2', server: gw('gateway', secure), h1: false },
    {
      name: 'gateway-https-h2-mux',
      description: `gateway, HTTPS, HTTP/2, ${CONNECTIONS / MUX} connections × ${MUX} streams`,
      server: gw('gateway', secure),
      h1: false,
      streams: MUX,
    },
    { name: 'nginx-http', description: 'nginx, plain HTTP/1.1', server: { name: 'nginx', ...nginx.plain }, h1: true },
    { name: 'nginx-https-h1', description: 'nginx, HTTPS, HTTP/1.1', server: { name: 'nginx', ...nginx.secure }, h1: true },
    { name: 'nginx-https-h2', description: 'nginx, HTTPS, HTTP/2', server: { name: 'nginx', ...nginx.secure }, h1: false },
    {
      name: 'nginx-https-h2-mux',
      description: `nginx, HTTPS, HTTP/2, ${CONNECTIONS / MUX} connections × ${MUX} streams`,
      server: { name: 'nginx', ...nginx.secure },
      h1: false,
      streams: MUX,
    },
  ]
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const sample = await load(c)
      samples.get(c.name)!.push(sample)
      console.error(`round ${round} ${c.name}: ${Math.round(sample.rps)} req/s, ${sample.cpuUsPerRequest.toFixed(0)} µs CPU/request`)
    }
  }
  const handshakes = {
    gateway: await handshakeCost(secure),
    nginx: await handshakeCost(nginx.secure),
  }

  const med = (name: string) => {
    const list = samples.get(name)!
    const pick = (f: (s: Sample) => number) => median(list.map(f))
    return {
      rps: pick((s) => s.rps),
      meanMs: pick((s) => s.meanMs),
      cpu: pick((s) => s.cpuUsPerRequest),
      failed: list.reduce((a, s) => a + s.failed, 0),
    }
  }
  const base = med('gateway-http')
  const rows = cases.map((c) => {
    const m = med(c.name)
    const nginxTwin = c.name.startsWith('gateway-https') ? med(c.name.replace('gateway', 'nginx')) : null
    return (
      `| ${c.description} | ${Math.round(m.rps)} | ${m.meanMs.toFixed(2)} | ${m.cpu.toFixed(0)} | ` +
      `${c.server.name === 'gateway' ? `${(m.rps / base.rps).toFixed(2)}× / ${(m.cpu / base.cpu).toFixed(2)}×` : ''} | ` +
      `${nginxTwin ? `${(m.rps / nginxTwin.rps).toFixed(2)}×` : ''} | ${m.failed} |`
    )
  })
  const h1 = med('gateway-https-h1')
  const h2 = med('gateway-https-h2')
  const ng = med('nginx-http')
  const ngs = med('nginx-https-h1')
  const text = [
    `${machineFacts()} h2load, ${CONNECTIONS} requests in flight (${CONNECTIONS} connections × 1 stream unless said), ${SECONDS} s per run after ${WARMUP} s of warm-up, median of ${ROUNDS} rounds; GET ${PATH} (\`auth: none\`), a 40-byte JSON answer; an ECDSA P-256 certificate, TLS 1.3.`,
    '',
    '| case | req/s | mean latency (ms) | CPU µs / request | vs gateway over HTTP (req/s / CPU) | req/s vs nginx, same protocol | failed |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `TLS on kept-alive connections costs the gateway ${(h1.cpu - base.cpu).toFixed(0)} µs of CPU per request over HTTP/1.1 (${((h1.cpu / base.cpu - 1) * 100).toFixed(0)}%) and ` +
      `${(h2.cpu - base.cpu).toFixed(0)} µs over HTTP/2 (${((h2.cpu / base.cpu - 1) * 100).toFixed(0)}%); nginx pays ${(ngs.cpu - ng.cpu).toFixed(0)} µs for the same.`,
    `A full handshake (\`openssl s_time -new\`, one connection after another for ${SECONDS} s): ` +
      `${handshakes.gateway.perSecond.toFixed(0)}/s, ${handshakes.gateway.cpuMs.toFixed(2)} ms of the gateway's CPU each; ` +
      `nginx ${handshakes.nginx.perSecond.toFixed(0)}/s, ${handshakes.nginx.cpuMs.toFixed(2)} ms each.`,
  ].join('\n')
  console.log(text)
  if (!process.env['BENCH_NO_WRITE']) writeSection(join(root, 'docs/https.md'), 'bench-tls', text)
  process.exit(0)
}

/** One warm-up run, then one measured run with the server's CPU time read around it. */
async function load(c: Case): Promise<Sample> {
  const url = c.server.url + PATH
  const streams = c.streams ?? 1
  const args = (seconds: number) => [
    ...(c.h1 ? ['--h1'] : []),
    '-c',
    String(CONNECTIONS / streams),
    '-m',
    String(streams),
    '-t',
    '1',
    '-D',
    String(seconds),
    url,
  ]
  if (WARMUP > 0) await run('h2load', args(WARMUP), { maxBuffer: 1 << 20 })
  const before = cpuTimeMs(c.server.pid) ?? 0
  const { stdout } = await run('h2load', args(SECONDS), { maxBuffer: 1 << 20 })
  const cpu = (cpuTimeMs(c.server.pid) ?? 0) - before
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(stdout)?.[1] ?? 0)
  const succeeded = Number(/(\d+) succeeded/.exec(stdout)?.[1] ?? 0)
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0)
  // "time for request:  min  max  mean  sd  +/- sd", in us or ms.
  const timing = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(stdout)
  const meanMs = timing ? Number(timing[1]) * (timing[2] === 'us' ? 0.001 : timing[2] === 's' ? 1000 : 1) : Number.NaN
  if (done === 0) throw new Error(`h2load did nothing against ${url}:\n${stdout}`)
  return { rps, meanMs, cpuUsPerRequest: (cpu * 1000) / done, failed: done - succeeded }
}

/** Full TLS handshakes one after another, and the server's CPU time per handshake. */
async function handshakeCost(server: { url: string; pid: number }): Promise<{ perSecond: number; cpuMs: number }> {
  const { host } = new URL(server.url)
  const before = cpuTimeMs(server.pid) ?? 0
  const { stdout } = await run('openssl', ['s_time', '-connect', host, '-new', '-time', String(SECONDS)], { maxBuffer: 1 << 20 })
  const cpu = (cpuTimeMs(server.pid) ?? 0) - before
  const m = /(\d+) connections in ([\d.]+) real seconds/.exec(stdout)
  const connections = Number(m?.[1] ?? 0)
  return { perSecond: connections / Number(m?.[2] ?? 1), cpuMs: cpu / Math.max(1, connections) }
}

/** A self-signed ECDSA P-256 certificate for 127.0.0.1 (h2load and s_time do not verify it). */
async function selfSigned(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ])
  return { certFile, keyFile }
}

/** Like startProcess, for a server on https: waits until /readyz answers over TLS. */
async function startSecure(cmd: string, args: string[], children: Array<{ kill(): void }>): Promise<{ url: string; pid: number }> {
  const port = await freePort()
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PORT: String(port) } })
  children.push(child)
  const url = `https://127.0.0.1:${port}`
  await until(
    () => httpsStatus(`${url}/readyz`),
    `${args.join(' ')} did not start`,
    () => child.exitCode,
  )
  return { url, pid: child.pid! }
}

function httpsStatus(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    request(url, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume()
      resolve((res.statusCode ?? 500) < 500)
    })
      .on('error', () => resolve(false))
      .end()
  })
}

async function until(probe: () => Promise<boolean>, failure: string, exitCode: () => number | null): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (exitCode() !== null) throw new Error(failure)
    if (await probe()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(failure)
}

/**
 * nginx with one worker (the gateway is one process too), HTTP/2 on its TLS port, keep-alive
 * to the upstream, and its access log written as the gateway's is (the gateway logs each
 * request; both go nowhere).
 */
async function startNginx(dir: string, upstream: string, certFile: string, keyFile: string, children: Array<{ kill(): void }>) {
  const [tlsPort, plainPort] = [await freePort(), await freePort()]
  const conf = join(dir, 'nginx.conf')
  const location = `location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-Proto $scheme; }`
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log /dev/null;\n  client_body_temp_path ${dir}/nginx-body;\n  proxy_temp_path ${dir}/nginx-proxy;\n` +
      `  fastcgi_temp_path ${dir}/nginx-fastcgi;\n  uwsgi_temp_path ${dir}/nginx-uwsgi;\n  scgi_temp_path ${dir}/nginx-scgi;\n` +
      `  keepalive_requests 1000000;\n  upstream up { server ${new URL(upstream).host}; keepalive 64; }\n` +
      `  server { listen 127.0.0.1:${tlsPort} ssl http2; ssl_certificate ${certFile}; ssl_certificate_key ${keyFile}; ssl_protocols TLSv1.2 TLSv1.3; ${location} }\n` +
      `  server { listen 127.0.0.1:${plainPort}; ${location} }\n}\n`,
  )
  const child = spawn(NGINX, ['-e', `${dir}/nginx-error.log`, '-p', dir, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(child)
  const secure = `https://127.0.0.1:${tlsPort}`
  await until(
    () => httpsStatus(`${secure}/readyz`),
    'nginx did not start',
    () => child.exitCode,
  )
  return { secure: { url: secure, pid: child.pid! }, plain: { url: `http://127.0.0.1:${plainPort}`, pid: child.pid! } }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

await main()
