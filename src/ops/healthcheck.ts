/**
 * The Docker HEALTHCHECK: GET /healthz on this container's port with nothing but node.
 * Exit 0 when it answers 200 within the timeout, else 1.
 */
import { request } from 'node:http'

const port = Number(process.env['PORT'] ?? process.env['PORTCULLIS_PORT'] ?? 8080)
const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
  res.resume()
  process.exitCode = res.statusCode === 200 ? 0 : 1
})
req.on('timeout', () => req.destroy(new Error('timeout')))
req.on('error', () => {
  process.exitCode = 1
})
req.end()
