/**
 * A browser's cookie jar for plain `fetch`, close enough to RFC 6265 for an OpenID Provider's
 * pages: cookies are kept per host (not per port, as browsers do), per name and per path,
 * sent only to URLs whose path matches, and dropped when they expire or are deleted.
 * Domain cookies and the Secure flag are not modelled (tests run on http://127.0.0.1).
 */
export interface StoredCookie {
  name: string
  value: string
  host: string
  path: string
  /** Epoch milliseconds; undefined for a session cookie. */
  expires?: number
}

export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>()

  /** Keeps the Set-Cookie lines of a response to a request for `url`. */
  store(url: string | URL, response: Response): void {
    const at = new URL(url)
    for (const line of response.headers.getSetCookie()) this.#keep(at, line)
  }

  /** The Cookie header a browser would send to `url`, or '' when none matches. */
  header(url: string | URL): string {
    const at = new URL(url)
    const now = Date.now()
    return this.list()
      .filter((c) => c.host === at.hostname && pathMatches(at.pathname, c.path) && (c.expires === undefined || c.expires > now))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  /** The first live cookie named `name` (any host and path). */
  get(name: string): string | undefined {
    return this.list().find((c) => c.name === name)?.value
  }

  /** Every live cookie. */
  list(): StoredCookie[] {
    const now = Date.now()
    return [...this.#cookies.values()].filter((c) => c.expires === undefined || c.expires > now)
  }

  /** fetch with this jar: sends the matching cookies, keeps the answer's, never follows redirects. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    const cookie = this.header(url)
    if (cookie) headers.set('cookie', cookie)
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    this.store(url, response)
    return response
  }

  #keep(at: URL, line: string): void {
    const [pair = '', ...attrs] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq <= 0) return
    const cookie: StoredCookie = {
      name: pair.slice(0, eq).trim(),
      value: pair.slice(eq + 1).trim(),
      host: at.hostname,
      path: defaultPath(at.pathname),
    }
    for (const attr of attrs) {
      const [key = '', ...rest] = attr.split('=')
      const value = rest.join('=').trim()
      switch (key.trim().toLowerCase()) {
        case 'path':
          if (value.startsWith('/')) cookie.path = value
          break
        case 'max-age':
          cookie.expires = Date.now() + Number(value) * 1000
          break
        case 'expires':
          // Max-Age wins over Expires (RFC 6265 section 5.3 step 3).
          if (!attrs.some((a) => /^\s*max-age=/i.test(a))) cookie.expires = Date.parse(value)
          break
      }
    }
    const key = `${cookie.host};${cookie.path};${cookie.name}`
    if (cookie.expires !== undefined && cookie.expires <= Date.now()) this.#cookies.delete(key)
    else this.#cookies.set(key, cookie)
  }
}

/** RFC 6265 section 5.1.4. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

/** RFC 6265 section 5.1.4: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const slash = requestPath.lastIndexOf('/')
  return slash <= 0 ? '/' : requestPath.slice(0, slash)
}
