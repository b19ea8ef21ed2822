// The baseline: a bare Fastify 5 + @fastify/http-proxy, same dependency versions as the
// gateway, no authentication, no logging.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const [upstream] = process.argv.slice(2)
const port = process.env.PORT
const app = Fastify({ logger: false })
app.get('/readyz', async () => 'ready')
await app.register(proxy, { upstream, prefix: '/api', rewritePrefix: '/api' })
await app.listen({ port: Number(port ?? 0), host: '127.0.0.1' })
process.stdout.write(`ready ${app.server.address().port}\n`)
