/**
 * The population benchmark's peers, from Debian: HAProxy 2.6 checking the same ES256 tokens
 * with `jwt_verify`, and nginx as a plain proxy (no authentication: the floor). Both run one
 * worker (the gateway is one process), keep connections to the upstream alive, and write an
 * access log line per request to nowhere, as the gateway's goes to /dev/null here.
 */
import { createPublicKey } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProcess } from './setup.js'

type Children = Array<{ kill(): void }>

/**
 * HAProxy refusing, as a fair peer would, what the gateway refuses: another `alg`, another
 * issuer or audience, an `exp` passed, then a bad signature. `prefix` runs it pinned (taskset).
 */
export function startHaproxy(dir: string, pem: string, upstream: string, prefix: string[], children: Children) {
  const publicKey = join(dir, 'es256.pub.pem')
  writeFileSync(publicKey, createPublicKey(pem).export({ type: 'spki', format: 'pem' }))
  const config = join(dir, 'haproxy.cfg')
  writeFileSync(
    config,
    `global
  nbthread 1
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 60s
frontend fe
  bind "127.0.0.1:\${PORT}"
  http-request return status 200 content-type text/plain string ready if { path /readyz }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 unless { var(txn.alg) -m str ES256 } { var(txn.iss) -m str portcullis } { var(txn.aud) -m str portcullis }
  http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${publicKey}") -m int 1 }
  default_backend up
backend up
  http-reuse always
  server up ${new URL(upstream).host}
`,
  )
  return startProcess(...command(prefix, ['/usr/sbin/haproxy', '-db', '-f', config]), children)
}

/** nginx, one worker, proxying everything to the upstream (its port comes from $PORT through sed). */
export function startNginx(dir: string, upstream: string, prefix: string[], children: Children) {
  const home = join(dir, 'nginx')
  mkdirSync(home, { recursive: true })
  const template = join(home, 'nginx.conf.in')
  writeFileSync(
    template,
    `worker_processes 1;\ndaemon off;\npid ${home}/nginx.pid;\nerror_log ${home}/error.log warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log /dev/null;\n  client_body_temp_path ${home}/body;\n  proxy_temp_path ${home}/proxy;\n` +
      `  fastcgi_temp_path ${home}/fastcgi;\n  uwsgi_temp_path ${home}/uwsgi;\n  scgi_temp_path ${home}/scgi;\n` +
      `  keepalive_requests 1000000;\n  upstream up { server ${new URL(upstream).host}; keepalive 64; }\n` +
      `  server { listen 127.0.0.1:@PORT@; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`,
  )
  // exec: the pid startProcess returns is nginx's master, whose worker is its child.
  const script = `sed "s/@PORT@/$PORT/" "$0" > "$0.conf" && exec ${[...prefix, '/usr/sbin/nginx', '-e', `${home}/error.log`, '-p', home, '-c'].join(' ')} "$0.conf"`
  return startProcess('sh', ['-c', script, template], children)
}

function command(prefix: string[], argv: string[]): [string, string[]] {
  const all = [...prefix, ...argv]
  return [all[0]!, all.slice(1)]
}
