/**
 * The browser files the gateway serves under basePath (the fetch helper, the sign-in page's
 * script). They live in the package's `client/` folder, next to `dist/`, so web apps can also
 * import them from the package itself.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'

/** `client/` resolved from this module: src/auth/ in development, dist/auth/ when installed. */
export const CLIENT_DIR = new URL('../../client/', import.meta.url)

export interface Asset {
  readonly body: Buffer
  readonly etag: string
}

/** Reads one file of `client/`; the error names what is missing from the installation. */
export async function loadAsset(name: string): Promise<Asset> {
  const url = new URL(name, CLIENT_DIR)
  let body: Buffer
  try {
    body = await readFile(url)
  } catch (err) {
    throw new Error(`${url.pathname} is missing: the package's client/ folder must be installed next to dist/`, { cause: err })
  }
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }
}

/**
 * GET (and HEAD) `path` answering with a JavaScript module. The URL carries no version, so
 * browsers revalidate every time (`no-cache`) and get a 304 while the file is unchanged.
 */
export function serveScript(app: FastifyInstance, path: string, asset: Asset): void {
  app.get(path, async (request, reply) => {
    // The session routes' hook marks everything under basePath `no-store`; code is not secret.
    reply.removeHeader('pragma')
    reply.header('cache-control', 'no-cache')
    reply.header('etag', asset.etag)
    reply.header('x-content-type-options', 'nosniff')
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send()
    return reply.type('text/javascript; charset=utf-8').send(asset.body)
  })
}
