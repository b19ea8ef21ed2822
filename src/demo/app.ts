/**
 * The demo web app of the shipped gateway.yaml, served by the demo echo upstream under /app/
 * so that it sits behind an ordinary `auth: required` route, like any app would. Its files
 * live in client/demo/ (plain HTML, CSS and an ES module; no build step).
 */
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'

const DEMO_DIR = new URL('../../client/demo/', import.meta.url)
const FILES: Record<string, [file: string, type: string]> = {
  '/app/': ['index.html', 'text/html; charset=utf-8'],
  '/app/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app/app.css': ['app.css', 'text/css; charset=utf-8'],
}

/** The demo shows the policy a page behind the gateway should have: no inline code, no framing. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export type DemoApp = (req: IncomingMessage, res: ServerResponse) => boolean

/** Loads the files once; returns a handler that answers /app requests (true) or leaves them (false). */
export async function loadDemoApp(): Promise<DemoApp> {
  const bodies = new Map<string, Buffer>()
  for (const [path, [file]] of Object.entries(FILES)) {
    // Without client/demo/ (an installation that left it out) /app answers 404; echo still works.
    const body = await readFile(new URL(file, DEMO_DIR)).catch(() => null)
    if (body) bodies.set(path, body)
  }
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (path !== '/app' && !path.startsWith('/app/')) return false
    req.resume()
    if (path === '/app') return send(res, 308, { location: '/app/' })
    const entry = FILES[path]
    const body = bodies.get(path)
    if (!entry || !body || (req.method !== 'GET' && req.method !== 'HEAD')) return send(res, 404, { 'content-type': 'text/plain' }, 'not found')
    return send(
      res,
      200,
      {
        'content-type': entry[1],
        'content-length': String(body.length),
        'cache-control': 'no-cache',
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
      },
      req.method === 'HEAD' ? undefined : body,
    )
  }
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: string | Buffer): true {
  res.writeHead(status, headers)
  res.end(body)
  return true
}
