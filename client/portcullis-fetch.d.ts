/**
 * portcullis-fetch: `fetch` for web apps behind a Portcullis gateway in cookie mode.
 * See docs/web.md.
 */

/** Why `onSessionEnded` was called. */
export interface SessionEnded {
  /** The refresh endpoint's error code (`refresh_token_reused`, `session_expired`, `invalid_refresh_token`), or null. */
  readonly code: string | null
  /** True when another tab of this origin found the session ended. */
  readonly otherTab: boolean
}

/** Why `onReauthenticationRequired` was called: a route's maxAuthAge wants a recent sign-in. */
export interface ReauthenticationRequired {
  /** The most the sign-in's age may be, in seconds (from WWW-Authenticate), or null. */
  readonly maxAge: number | null
  /** The gateway's sign-in page, asking for a fresh sign-in and coming back to this page. */
  readonly signInUrl: string
}

export interface AuthFetchOptions {
  /** Where the gateway's auth endpoints live: a path (`/auth`, the default) or an absolute URL prefix. */
  basePath?: string
  /** The fetch to wrap; `globalThis.fetch` by default. */
  fetch?: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>
  /** Runs when the refresh endpoint refuses the session (401): time to show the sign-in page. */
  onSessionEnded?: (ended: SessionEnded) => void
  /** Runs when a call is refused with 401 reauthentication_required (the response is still returned): e.g. `location.assign(signInUrl)`. */
  onReauthenticationRequired?: (required: ReauthenticationRequired) => void
  /** How many times one call may be refreshed and sent again (default 1, at most 10; 0 disables). */
  maxRetries?: number
  /** A refresh that takes longer is abandoned (ms, default 10000). */
  refreshTimeout?: number
  /** Share refreshes with other tabs through Web Locks and BroadcastChannel (default true). */
  crossTab?: boolean
}

/** Has the signature of `fetch`. Calls whose body is a stream are never retried. */
export type AuthFetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>

export function createAuthFetch(options?: AuthFetchOptions): AuthFetch
