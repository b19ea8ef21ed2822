/**
 * Request-target normalisation, before any route is chosen (SPEC.md "Proxying").
 *
 * A gateway and the service behind it must agree on what path a request names, or a path
 * like `/public/../admin` passes the gateway as "public" and reaches the service as "admin".
 * So dot-segments are resolved here (raw or percent-encoded), and anything upstreams are known
 * to read differently is refused outright: encoded `/` and `\` (CVE-2021-41773 style traversal),
 * `..;` (Tomcat/Jetty path parameters, CVE-2020-1938 class), NUL and control characters.
 *
 * Path parameters (`/admin;jsessionid=1`) are cut off by Tomcat, Jetty and Spring before they
 * route, so `/svc/admin;x/users` is `/svc/admin/users` to them while it matches no `/svc/admin`
 * route here. A path whose parameters change the route it belongs to is therefore refused; one
 * whose parameters stay inside its route (`/api/orders;v=1` under `/api`) passes unchanged.
 */

/** Where a segment's parameters start. `%3B` too: some servers decode before they cut. */
const PARAMETERS = /;|%3b/i

/**
 * The prefixes requests are routed by (the configured routes' and the gateway's own paths),
 * matched like Fastify's router: longest first, on segment boundaries, case-sensitively, on the
 * decoded path.
 */
export class RouteTable {
  readonly #prefixes: string[]
  /** The same prefixes with their own parameters removed, for paths with theirs removed. */
  readonly #bare: string[]

  constructor(prefixes: readonly string[]) {
    this.#prefixes = prefixes.map((p) => p.replace(/\/+$/, ''))
    this.#bare = this.#prefixes.map((p) => withoutParameters(p.split('/')))
  }

  /** Whether the normalised path `segments` belong to the same route without their parameters. */
  sameWithoutParameters(segments: readonly string[]): boolean {
    const raw = decodeURIComponent('/' + segments.join('/'))
    const bare = decodeURIComponent(withoutParameters(segments) || '/')
    return longestMatch(this.#prefixes, raw) === longestMatch(this.#bare, bare)
  }
}

/** `/a;x/;y/b` → `/a/b` (an emptied segment collapses, as `//` does upstream); the root is ''. */
function withoutParameters(segments: readonly string[]): string {
  let out = ''
  for (const seg of segments) {
    const bare = seg.split(PARAMETERS, 1)[0]!
    if (bare !== '') out += '/' + bare
  }
  return out
}

/**
 * The index of the longest of `prefixes` (no trailing `/`; the root is '') that `path` lies under,
 * on a segment boundary, or -1. Forward-auth chooses a route with it too.
 */
export function longestMatch(prefixes: readonly string[], path: string): number {
  let best = -1
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!
    const under = p === '' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 0x2f) /* / */
    if (under && (best === -1 || p.length > prefixes[best]!.length)) best = i
  }
  return best
}

/** Returns the normalised origin-form target, or null when the target must be refused (400). */
export function normalizeTarget(url: string, routes: RouteTable): string | null {
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
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point (RFC 9112 §3.2: a request-target has no CTL)
  if (/[\x00-\x20\x7f\\#]/.test(target)) return null
  // Fast path: nothing to normalise in the overwhelming majority of requests.
  if (!/%|\/\.|\/\/|;/.test(path)) return target
  const normalised = normalizePath(path, routes)
  return normalised === null ? null : normalised + query
}

function normalizePath(path: string, routes: RouteTable): string | null {
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
    const bare = seg.split(PARAMETERS, 1)[0]!
    if (seg !== bare && (bare === '.' || bare === '..')) return null // '..;/' means '..' to some servers
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (out.length === 0) return null // above the root
      out.pop()
      continue
    }
    out.push(seg)
  }
  // A parameter must not take a request past the route its parameter-free path matches.
  if (PARAMETERS.test(path) && !routes.sameWithoutParameters(out)) return null
  const joined = '/' + out.join('/')
  return trailingSlash && out.length > 0 ? joined + '/' : joined
}
