// The sockets benchmark's upstream: bench/upstream.mjs's small JSON answer, plus a WebSocket echo.
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const body = JSON.stringify({ ok: true, service: 'bench-upstream' })
const server = createServer((req, res) => {
  req.resume()
  if (req.url === '/readyz') return res.end('ready')
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 60_000
new WebSocketServer({ server }).on('connection', (socket) => socket.on('message', (data) => socket.send(data)))
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`)
})
