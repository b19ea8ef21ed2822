/**
 * A browser's cookie jar, in miniature, around Node's real fetch: what the fetch helper relies
 * on (the refresh response's Set-Cookie is sent with the retried call) without a browser.
 * Names and values only; attributes other than expiry are ignored.
 */
export interface CookieFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>
  readonly jar: Map<string, string>
  /** Every request sent through it, oldest first. */
  readonly sent: { method: string; url: string }[]
}

export function cookieFetch(): CookieFetch {
  const jar = new Map<string, string>()
  const sent: { method: string; url: string }[] = []
  const fn = async (input: string | URL | Request, init: RequestInit = {}) => {
    const request = new Request(input, init.body instanceof ReadableStream ? ({ ...init, duplex: 'half' } as RequestInit) : init)
    if (jar.size > 0) request.headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '))
    sent.push({ method: request.method, url: request.url })
    const response = await fetch(request)
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a))
      if (gone) jar.delete(name)
      else jar.set(name, pair.slice(eq + 1).trim())
    }
    return response
  }
  return Object.assign(fn, { jar, sent })
}
