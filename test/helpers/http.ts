/**
 * Exact HTTP from tests: node:http when headers must be sent as written (case, underscores,
 * duplicates), and a raw socket when the request line itself is the point.
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { connect } from 'node:net'

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  json<T = Record<string, unknown>>(): T
}

export function send(
  base: string,
  path: string,
  opts: { method?: string; headers?: OutgoingHttpHeaders | [string, string][]; body?: string } = {},
): Promise<Answer> {
  const url = new URL(base)
  let headers = opts.headers
  if (Array.isArray(headers)) {
    // node:http sends header pairs exactly as given (case, duplicates), but then adds no Host.
    const flat = headers.flat()
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) flat.push('host', url.host)
    headers = flat as unknown as OutgoingHttpHeaders
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', headers: headers as OutgoingHttpHeaders, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) })
        })
      },
    )
    req.on('error', reject)
    if (opts.body !== undefined) req.write(opts.body)
    req.end()
  })
}

/** Writes `text` to the server as is and returns everything it answers until it closes (or 2 s). */
export function raw(base: string, text: string): Promise<string> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let out = ''
    const timer = setTimeout(() => socket.destroy(), 2000)
    socket.on('data', (c) => (out += c.toString('utf8')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    socket.on('error', reject)
    socket.write(text)
  })
}

export function statusOf(rawResponse: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(rawResponse)?.[1] ?? 0)
}
