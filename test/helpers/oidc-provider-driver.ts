/**
 * A user at the OpenID Provider's own pages, without a browser: plain HTTP with a cookie jar,
 * submitting oidc-provider's devInteractions login and consent forms and its logout form the
 * way a person would. Works against startOidcProvider's providers (oidc-provider v9 pages).
 */
import { randomUUID } from 'node:crypto'
import { CookieJar } from './cookie-jar.js'

/** One logout token the provider POSTed to a client's backchannel_logout_uri. */
export interface BackchannelDelivery {
  url: string
  /** HTTP status of the receiver's answer; null when the request failed (then `error`). */
  status: number | null
  error?: string
  sid: string | null
  sub: string
  aud: string
  jti: string
  /** The x-harness-marker header of the logout request that caused it (logoutAtProvider sets one). */
  marker: string | null
}

export type LineTest = (line: Record<string, unknown>) => boolean

/** The providers startOidcProvider runs in this process, by issuer: their printed lines, for the logout driver. */
export const runningProviders = new Map<
  string,
  { lines(): Record<string, unknown>[]; waitForLine(test: LineTest, timeoutMs?: number): Promise<Record<string, unknown>> }
>()

export interface SignInResult {
  /** The client's redirect_uri with code, state and iss (or error): not requested. */
  callbackUrl: string
  /** The provider's cookies after sign-in (its session): hand them to logoutAtProvider, or to a second sign-in. */
  providerCookies: CookieJar
}

/**
 * Follows `authorizeUrl` (the provider's authorization endpoint with the client's parameters,
 * e.g. the Location of the gateway's /start answer) through login as `login` (any password)
 * and consent, and stops at the redirect back to the client. With `jar` holding a provider
 * session, the pages the provider skips are skipped.
 */
export async function signInAtProvider(
  authorizeUrl: string,
  login: string,
  opts: { jar?: CookieJar; password?: string } = {},
): Promise<SignInResult> {
  const jar = opts.jar ?? new CookieJar()
  const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri')
  if (!redirectUri) throw new Error(`no redirect_uri in ${authorizeUrl}`)
  const back = new URL(redirectUri)
  let url = authorizeUrl
  let init: RequestInit = {}
  for (let step = 0; step < 12; step++) {
    const response = await jar.fetch(url, init)
    const location = response.headers.get('location')
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel()
      const next = new URL(location, url)
      if (next.origin === back.origin && next.pathname === back.pathname) return { callbackUrl: next.href, providerCookies: jar }
      url = next.href
      init = {}
      continue
    }
    const html = await response.text()
    const form = formsIn(html).find((f) => f.inputs['prompt'] === 'login' || f.inputs['prompt'] === 'consent')
    if (response.status !== 200 || !form) throw new Error(`the provider answered ${response.status} at ${url}: ${textOf(html)}`)
    const body = new URLSearchParams(form.inputs)
    if (form.inputs['prompt'] === 'login') {
      body.set('login', login)
      body.set('password', opts.password ?? 'any password')
    }
    url = new URL(form.action, url).href
    init = { method: 'POST', body }
  }
  throw new Error(`no redirect to ${redirectUri} after 12 steps from ${authorizeUrl}`)
}

export interface LogoutResult {
  /** Where the provider sent the browser: the post_logout_redirect_uri (with state) or its own success page. */
  redirectUrl: string
  /** The logout tokens the provider POSTed for this logout, with the receivers' statuses. */
  backchannel: BackchannelDelivery[]
}

/**
 * Ends the provider session held in `jar` at its end_session endpoint, confirming its
 * "sign me out" form. `url` opens that endpoint as given (e.g. the Location of the gateway's
 * logout answer) instead of one made of discovery and the other options. The provider POSTs a logout token to the backchannel_logout_uri of every
 * client of that session before it answers, so they have all been delivered when this resolves.
 */
export async function logoutAtProvider(
  issuer: string,
  jar: CookieJar,
  opts: { postLogoutRedirectUri?: string; clientId?: string; state?: string; url?: string } = {},
): Promise<LogoutResult> {
  const endpoint = new URL(opts.url ?? (await endSessionEndpoint(issuer)))
  if (opts.clientId) endpoint.searchParams.set('client_id', opts.clientId)
  if (opts.postLogoutRedirectUri) endpoint.searchParams.set('post_logout_redirect_uri', opts.postLogoutRedirectUri)
  if (opts.state) endpoint.searchParams.set('state', opts.state)
  // Ties the provider's back-channel lines to this logout among others running at once.
  const marker = randomUUID()
  const headers = { 'x-harness-marker': marker }
  const page = await jar.fetch(endpoint, { headers })
  const html = await page.text()
  const form = formsIn(html).find((f) => 'xsrf' in f.inputs)
  if (page.status !== 200 || !form) throw new Error(`the provider answered ${page.status} at ${endpoint}: ${textOf(html)}`)
  const action = new URL(form.action, endpoint)
  const done = await jar.fetch(action, { method: 'POST', body: new URLSearchParams({ ...form.inputs, logout: 'yes' }), headers })
  const location = done.headers.get('location')
  if (done.status !== 303 || !location)
    throw new Error(`the provider answered ${done.status} to the logout confirmation: ${textOf(await done.text())}`)
  await done.body?.cancel()
  const known = runningProviders.get(issuer)
  if (!known) return { redirectUrl: new URL(location, action).href, backchannel: [] }
  await known.waitForLine((l) => l['event'] === 'end_session' && l['marker'] === marker)
  const backchannel = known.lines().filter((l) => l['event'] === 'backchannel' && l['marker'] === marker) as unknown as BackchannelDelivery[]
  return { redirectUrl: new URL(location, action).href, backchannel }
}

async function endSessionEndpoint(issuer: string): Promise<string> {
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { end_session_endpoint?: string }
  if (!metadata.end_session_endpoint) throw new Error(`${issuer} has no end_session_endpoint`)
  return metadata.end_session_endpoint
}

interface Form {
  action: string
  inputs: Record<string, string>
}

/** The forms of one of oidc-provider's own pages (known markup: double-quoted attributes). */
function formsIn(html: string): Form[] {
  const forms: Form[] = []
  for (const [, attrs = '', inner = ''] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const inputs: Record<string, string> = {}
    for (const [tag] of inner.matchAll(/<input\b[^>]*>/g)) {
      const a = attributes(tag)
      if (a['name']) inputs[a['name']] = a['value'] ?? ''
    }
    forms.push({ action: attributes(`<form ${attrs}>`)['action'] ?? '', inputs })
  }
  return forms
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [, name = '', value = ''] of tag.matchAll(/([\w-]+)="([^"]*)"/g)) out[name] = decode(value)
  return out
}

function decode(text: string): string {
  return text.replace(/&(amp|quot|#39|lt|gt);/g, (_, e: string) => ({ amp: '&', quot: '"', '#39': "'", lt: '<', gt: '>' })[e] ?? '')
}

/** A page's text for an error message: oidc-provider's error page puts the error in <pre>. */
function textOf(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 500)
}
