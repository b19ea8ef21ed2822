/**
 * Request-target normalisation, before any route is chosen (SPEC.md "Proxying").
 *
 * A gateway and the service behind it must agree on what path a request names, or a path
 * like `/public/../admin` passes the gateway as "public" and reaches the service as "admin".
 * So dot-segments are resolved here (raw or percent-encoded), and anything upstreams are known
 * to read differently is refused outright: encoded `/` and `\` (CVE-2021-41773 style traversal),
 * `..;` (Tomcat/Jetty path parameters, CVE-2020-1938 class), NUL and control characters.
 */

/** Returns the normalised origin-form target, or null when the target must be refused (400). */
export function normalizeTarget(url: string): string | null {
  let target = url
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    // Absolute form (RFC 9112 §3.2.2): only its path counts; its authority never picks the upstream.
    const m = /^https?:\/\/[^/?#]*/i.exec(target)
    if (!m) return null // '*' or garbage
    target = target.slice(m[0].length)
    if (target === '' || target[0] === '?') target = '/' + target
    if (target[0] !== '/') return null
  }
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q)
  if (/[\x00-\x20\x7f\\#]/.test(target)) return null
  // Fast path: nothing to normalise in the overwhelming majority of requests.
  if (!/%|\/\.|\/\/|;/.test(path)) return target
  const normalised = normalizePath(path)
  return normalised === null ? null : normalised + query
}

function normalizePath(path: string): string | null {
  if (path.includes('%')) {
    if (/%(?![0-9a-fA-F]{2})/.test(path)) return null // malformed escape
    if (/%(2f|5c|00)/i.test(path)) return null // encoded '/', '\', NUL
    // Escapes that are not UTF-8 (`%ff`, overlong `%c0%ae`) mean different things to different
    // decoders; the router refuses them too, so refuse them here, as JSON, first.
    try {
      decodeURIComponent(path)
    } catch {
      return null
    }
    path = path.replace(/%2e/gi, '.')
  }
  const out: string[] = []
  const segments = path.split('/')
  const trailingSlash = segments.length > 1 && segments[segments.length - 1] === ''
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!
    const bare = seg.split(';', 1)[0]!
    if (seg !== bare && (bare === '.' || bare === '..')) return null // '..;/' means '..' to some servers
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (out.length === 0) return null // above the root
      out.pop()
      continue
    }
    out.push(seg)
  }
  const joined = '/' + out.join('/')
  return trailingSlash && out.length > 0 ? joined + '/' : joined
}
