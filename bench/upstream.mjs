// The benchmark's upstream: answers every request with a small JSON body, keep-alive.
import { createServer } from 'node:http'

const body = JSON.stringify({ ok: true, service: 'bench-upstream' })
const server = createServer((req, res) => {
  req.resume()
  if (req.url === '/readyz') return res.end('ready')
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`)
})
