/**
 * The gateway's two cookies: their names and attributes (SPEC.md "Transport").
 */
import type { AuthConfig } from '../config/schema.js'

export interface CookieNames {
  readonly access: string
  readonly refresh: string
  /** Every name the gateway may use, under any prefix: none of them reaches an upstream. */
  readonly all: ReadonlySet<string>
}

const ACCESS = 'portcullis_at'
const REFRESH = 'portcullis_rt'

/** Every name any configuration could give the gateway's cookies. */
export const GATEWAY_COOKIE_NAMES: ReadonlySet<string> = new Set(['', '__Host-', '__Secure-'].flatMap((p) => [p + ACCESS, p + REFRESH]))

export function cookieNames(auth: AuthConfig): CookieNames {
  const { secure, domain } = auth.cookies
  // `__Host-` (RFC 6265bis §4.1.3.2) pins the access cookie to this exact host, Path=/ and
  // Secure, so a sibling subdomain cannot plant or overwrite it. It forbids a Domain
  // attribute, so with `cookies.domain` set the weaker `__Secure-` prefix is the best left.
  const access = secure ? (domain ? `__Secure-${ACCESS}` : `__Host-${ACCESS}`) : ACCESS
  const refresh = secure ? `__Secure-${REFRESH}` : REFRESH
  return { access, refresh, all: GATEWAY_COOKIE_NAMES }
}

export interface CookieAttributes {
  path: string
  httpOnly: true
  secure: boolean
  sameSite: 'lax' | 'strict'
  domain?: string
  maxAge: number
}

/** Attributes for a cookie that lives `maxAgeMs`; maxAge 0 clears it. */
export function cookieAttributes(auth: AuthConfig, kind: 'access' | 'refresh', maxAgeMs: number): CookieAttributes {
  const { secure, sameSite, domain } = auth.cookies
  const attrs: CookieAttributes = {
    // The refresh cookie only travels to the auth endpoints, never to upstream routes.
    path: kind === 'refresh' ? auth.basePath : '/',
    httpOnly: true, // never readable from JavaScript: an XSS bug cannot steal a session
    secure,
    sameSite,
    maxAge: Math.max(0, Math.floor(maxAgeMs / 1000)),
  }
  if (domain) attrs.domain = domain
  return attrs
}

/**
 * The short-lived cookies of OpenID Connect sign-ins in progress (src/auth/oidc/flow.ts):
 * `portcullis_oidc_<12 characters>`, `__Host-` prefixed when secure. Path=/, so they would
 * otherwise reach upstreams.
 */
const FLOW_PREFIX = 'portcullis_oidc_'
export const isFlowCookieName = (name: string): boolean => name.startsWith(FLOW_PREFIX) || name.startsWith(`__Host-${FLOW_PREFIX}`)

/** Drops the gateway's cookies from a `Cookie` header; undefined when nothing is left. */
export function withoutGatewayCookies(header: string): string | undefined {
  let kept = ''
  for (const part of header.split(';')) {
    const pair = part.trim()
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq).trim()
    if (GATEWAY_COOKIE_NAMES.has(name) || isFlowCookieName(name)) continue
    kept = kept === '' ? pair : `${kept}; ${pair}`
  }
  return kept === '' ? undefined : kept
}

/**
 * The cookie name a `Set-Cookie` value sets, read as browsers read it (RFC 6265bis, "The
 * Set-Cookie Header Field"): from the pair before the first `;`; a pair without `=` sets a
 * nameless cookie, whose name is ''.
 */
export function setCookieName(value: string): string {
  const semi = value.indexOf(';')
  const pair = semi === -1 ? value : value.slice(0, semi)
  const eq = pair.indexOf('=')
  return eq === -1 ? '' : pair.slice(0, eq).trim()
}

const OWN_NAMES_ANY_CASE: ReadonlySet<string> = new Set([...GATEWAY_COOKIE_NAMES].map((n) => n.toLowerCase()))

/**
 * Whether an upstream's `Set-Cookie` naming `name` could plant or clear one of the gateway's
 * cookies. A nameless cookie is sent back as its bare value (RFC 6265bis, "The Cookie Header
 * Field"), so `=portcullis_at=x` returns as `portcullis_at=x`; and browsers match the
 * `__Host-`/`__Secure-` prefixes case-insensitively, so names are compared in any case.
 */
export function isReservedCookieName(name: string): boolean {
  const lower = name.toLowerCase()
  return name === '' || OWN_NAMES_ANY_CASE.has(lower) || isFlowCookieName(lower.replace(/^__host-/, '__Host-'))
}
