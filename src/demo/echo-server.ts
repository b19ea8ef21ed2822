/**
 * The demo echo upstream as a process of its own, for the docker-compose example (a second
 * container from the same image): `node dist/demo/echo-server.js`. Listens on $HOST:$PORT,
 * 0.0.0.0:8081 by default; exits 0 on SIGTERM/SIGINT once its connections are closed.
 */
import type { AddressInfo } from 'node:net'
import { startEchoUpstream } from './echo.js'

const port = Number(process.env['PORT'] ?? 8081)
const host = process.env['HOST'] ?? '0.0.0.0'
const server = await startEchoUpstream(port, host)
process.stdout.write(JSON.stringify({ msg: 'echo upstream listening', host, port: (server.address() as AddressInfo).port }) + '\n')

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close(() => process.exit(0))
    server.closeIdleConnections()
    // Nothing it serves takes long: do not outwait a client that keeps a connection open.
    setTimeout(() => process.exit(0), 2000).unref()
  })
}
