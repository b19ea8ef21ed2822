/**
 * A real webhook receiver on 127.0.0.1:0 for the security events: it answers each POST as its
 * script says (a status, or `hang`: never answer), then 200, and checks every signature the way
 * docs/events.md tells receivers to (its own HMAC, not the gateway's code).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Answer = number | 'hang'

export interface Delivery {
  headers: IncomingHttpHeaders
  body: string
  answer: Answer
  /** The signature checked against the secret over `${timestamp}.${body}`. */
  signed: boolean
}

export interface ReceivedEvent {
  id: string
  type: string
  time: string
  instance?: string
  data: Record<string, unknown>
}

export interface Receiver {
  url: string
  /** Every POST, answered or not, in arrival order. */
  deliveries: Delivery[]
  /** Events of the deliveries answered 2xx, in order. */
  accepted(): ReceivedEvent[]
  /** Resolves once `count` events were accepted (fails the test after `ms`). */
  until(count: number, ms?: number): Promise<ReceivedEvent[]>
  /** Resolves once `count` POSTs arrived. */
  posts(count: number, ms?: number): Promise<Delivery[]>
  /** What later POSTs get (after the script): default 200. */
  answerWith(answer: Answer): void
  close(): Promise<void>
}

/** The check a receiver makes (docs/events.md): HMAC-SHA256 over `${timestamp}.${body}`, compared in constant time. */
export function verifySignature(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const timestamp = headers['x-portcullis-timestamp']
  const signature = headers['x-portcullis-signature']
  if (typeof timestamp !== 'string' || typeof signature !== 'string' || !signature.startsWith('v1=')) return false
  const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest()
  const given = Buffer.from(signature.slice(3), 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export async function startReceiver(t: { teardown(fn: () => unknown): void }, secret: string, script: Answer[] = []): Promise<Receiver> {
  const deliveries: Delivery[] = []
  const hanging = new Set<ServerResponse>()
  const waiters = new Set<() => void>()
  let later: Answer = 200
  const accepted = () =>
    deliveries
      .filter((d) => typeof d.answer === 'number' && d.answer >= 200 && d.answer < 300)
      .flatMap((d) => (JSON.parse(d.body) as { events: ReceivedEvent[] }).events)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const answer = script.shift() ?? later
      deliveries.push({ headers: req.headers, body, answer, signed: verifySignature(secret, req.headers, body) })
      if (answer === 'hang') hanging.add(res)
      else res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok')
      for (const wake of waiters) wake()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const wait = <T>(ready: () => T | null, ms: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = ready()
        if (value === null) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(value)
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`receiver: ${what} not reached in ${ms} ms (${deliveries.length} POSTs so far)`))
      }, ms)
      waiters.add(check)
      check()
    })
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/events`,
    deliveries,
    accepted,
    until: (count, ms = 5000) =>
      wait(
        () => {
          const events = accepted()
          return events.length >= count ? events : null
        },
        ms,
        `${count} events`,
      ),
    posts: (count, ms = 5000) => wait(() => (deliveries.length >= count ? deliveries : null), ms, `${count} POSTs`),
    answerWith: (answer) => {
      later = answer
    },
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  t.teardown(() => receiver.close())
  return receiver
}
