// Forward-auth's baseline: a plain Fastify 5 (the gateway's version) answering the verify path
// itself, any method, with an empty 200: what an edge's question costs at the least.
import Fastify from 'fastify'

const port = process.env.PORT
const app = Fastify({ logger: false })
app.get('/readyz', async () => 'ready')
app.all('/auth/verify', (_request, reply) => {
  reply.send()
})
await app.listen({ port: Number(port ?? 0), host: '127.0.0.1' })
process.stdout.write(`ready ${app.server.address().port}\n`)
// An orderly exit on SIGINT, so that `node --cpu-prof` writes its profile.
process.once('SIGINT', () => app.close().then(() => process.exit(0)))
