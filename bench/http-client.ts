/**
 * A lean keep-alive HTTP client for benchmarks that drive the session endpoints from Node:
 * node:http with a pooled Agent costs the measuring process less CPU than fetch, and on these
 * two shared cores every cycle the client spends is one the gateway does not get.
 */
import { Agent, request } from 'node:http'

export interface Reply {
  status: number
  body: string
  /** ms from sending the request to the last byte of the answer */
  ms: number
}

export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
}

export function postJson(agent: Agent, url: URL, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = JSON.stringify(body)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, ms: performance.now() - started }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

export async function getText(url: URL): Promise<string> {
  const res = await fetch(url)
  return res.text()
}

/** A browser's user agent, 110 bytes: sessions record it, so it weighs on their size. */
export const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.0.0 Safari/537.36'
