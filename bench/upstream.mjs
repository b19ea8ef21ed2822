// The benchmark's upstream: answers every request with a small JSON body (…/big: 128 KiB), keep-alive.
import { createServer } from 'node:http'

const body = JSON.stringify({ ok: true, service: 'bench-upstream' })
// Above the gateway's 64 KiB buffering limit: the streamed path (src/proxy/forward.ts).
const big = Buffer.alloc(128 * 1024, 'x')
const server = createServer((req, res) => {
  req.resume()
  if (req.url === '/readyz') return res.end('ready')
  if (req.url.endsWith('/big')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length })
    return res.end(big)
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`)
})
