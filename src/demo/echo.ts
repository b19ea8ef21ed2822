/**
 * A tiny upstream for the shipped demo config: it answers every request with what it
 * received (method, path, the identity headers the gateway set), so a newcomer can see the
 * gateway at work with nothing else running. Under /app/ it serves the demo web app (./app.ts).
 */
import { createServer, type Server } from 'node:http'
import { loadDemoApp } from './app.js'

export async function startEchoUpstream(port: number, host = '127.0.0.1'): Promise<Server> {
  const demoApp = await loadDemoApp()
  const server = createServer((req, res) => {
    if (demoApp(req, res)) return
    const body = JSON.stringify({
      service: 'echo',
      method: req.method,
      path: req.url,
      user: req.headers['x-user-id'] ?? null,
      roles: req.headers['x-user-roles']?.toString().split(',').filter(Boolean) ?? [],
      session: req.headers['x-session-id'] ?? null,
      requestId: req.headers['x-request-id'] ?? null,
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
    req.resume()
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve(server))
  })
}
