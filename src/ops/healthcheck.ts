/**
 * The Docker HEALTHCHECK: GET /healthz on the gateway in this container, with nothing but
 * node (the image has no shell tools). Exit 0 when it answers 200 within 2 s, else 1.
 *
 * The address follows the config the gateway runs: `--config FILE`, else $PORTCULLIS_CONFIG,
 * else ./gateway.yaml, read with `${VAR}` expanded as the gateway reads it, so a changed
 * `server.port` (or `${PORT}`) needs no second setting. Only the YAML is read, not validated:
 * this runs every few seconds and must stay cheap.
 */
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { parseArgs } from 'node:util'
import { expandEnv } from '../config/expand.js'
import { parseYaml, toData } from '../config/yaml.js'

function listenAddress(file: string): { host: string; port: number } {
  let server: { host?: unknown; port?: unknown } = {}
  try {
    const parsed = parseYaml(readFileSync(file, 'utf8'))
    expandEnv(parsed.doc, process.env)
    const data = toData(parsed)
    if ('data' in data) server = ((data.data as { server?: typeof server }).server ?? {}) as typeof server
  } catch {
    // Unreadable: try the defaults; a gateway that could not read it is not up anyway.
  }
  const port = typeof server.port === 'number' ? server.port : 8080
  const host = typeof server.host === 'string' ? server.host : '0.0.0.0'
  // A wildcard address is reached through loopback; a specific one only at itself.
  return { host: host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host, port }
}

const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: false })
const file = typeof values.config === 'string' ? values.config : (process.env['PORTCULLIS_CONFIG'] ?? 'gateway.yaml')
const { host, port } = listenAddress(file)
const req = request({ host, port, path: '/healthz', timeout: 2000 }, (res) => {
  res.resume()
  process.exitCode = res.statusCode === 200 ? 0 : 1
})
req.on('timeout', () => req.destroy(new Error('timeout')))
req.on('error', () => {
  process.exitCode = 1
})
req.end()
