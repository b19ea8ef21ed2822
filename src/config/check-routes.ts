/** Routes: unique names and prefixes, and no prefix over the gateway's own endpoints. */
import { reportDuplicates, type Check } from './check.js'

/** Paths the gateway answers itself, whatever the routes say (SPEC.md "HTTP endpoints"). */
export const RESERVED_PATHS = ['/healthz', '/readyz', '/metrics', '/.well-known/jwks.json'] as const

/** `/api/` and `/api` match the same requests (prefixes match on segment boundaries). */
export const normalizePrefix = (prefix: string) => prefix.replace(/\/+$/, '') || '/'

/** Whether `path` is `base` or lies under it, segment-wise (`/authx` is not under `/auth`). */
export function isUnder(path: string, base: string): boolean {
  const [p, b] = [normalizePrefix(path), normalizePrefix(base)]
  return p === b || b === '/' || p.startsWith(`${b}/`)
}

export const routeChecks: Check[] = [
  {
    needs: [['routes']],
    run({ routes }, report) {
      const valid = (i: number, key: string) => report.clean(['routes', i, key])
      reportDuplicates(
        routes,
        (r, i) => (valid(i, 'name') ? r.name : undefined),
        (i, first, name) => report.problem(['routes', i, 'name'], `"${name}" is already the name of routes[${first}]`),
      )
      reportDuplicates(
        routes,
        (r, i) => (valid(i, 'prefix') ? normalizePrefix(r.prefix) : undefined),
        (i, first) => report.problem(['routes', i, 'prefix'], `routes[${first}] already has this prefix`),
      )
      // Prefixes match case-sensitively, as paths compare (RFC 3986 §6.2.2.1): `/svc/ADMIN` is no
      // `/svc/admin` route's, so a second spelling is more likely a mistake than a second route.
      reportDuplicates(
        routes,
        (r, i) => (valid(i, 'prefix') ? normalizePrefix(r.prefix).toLowerCase() : undefined),
        (i, first) => {
          if (normalizePrefix(routes[i]!.prefix) === normalizePrefix(routes[first]!.prefix)) return // a problem already
          report.warning(
            ['routes', i, 'prefix'],
            `differs from routes[${first}].prefix (${routes[first]!.prefix}) only by case: prefixes match case-sensitively, so each route serves only its own spelling`,
          )
        },
      )
      routes.forEach((route, i) => {
        if (!valid(i, 'auth') || !valid(i, 'roles')) return
        // With auth: none nobody is identified, so a role requirement could never be met.
        if (route.auth === 'none' && route.roles !== undefined) {
          report.problem(['routes', i, 'roles'], 'cannot be checked with auth: none; remove it or set auth to required')
        }
      })
    },
  },
  {
    needs: [['routes'], ['auth', 'basePath']],
    run({ routes, auth }, report) {
      // The gateway's own endpoints must not be shadowed by, or leak to, an upstream. A prefix
      // above them (`/`, `/.well-known`) is allowed: the gateway's exact paths win there.
      routes.forEach((route, i) => {
        const at = ['routes', i, 'prefix']
        if (!report.clean(at)) return
        const reserved = RESERVED_PATHS.find((path) => isUnder(route.prefix, path))
        if (reserved) report.problem(at, `collides with the gateway's own endpoint ${reserved}`)
        else if (isUnder(route.prefix, auth.basePath)) {
          report.problem(at, `lies under auth.basePath (${auth.basePath}), where the gateway serves its auth endpoints`)
        }
      })
      const reserved = RESERVED_PATHS.find((path) => isUnder(auth.basePath, path))
      if (reserved) report.problem(['auth', 'basePath'], `collides with the gateway's own endpoint ${reserved}`)
    },
  },
]
