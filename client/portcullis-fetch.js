/**
 * portcullis-fetch: `fetch` for web apps behind a Portcullis gateway in cookie mode.
 * Plain ESM, no dependencies; types in portcullis-fetch.d.ts; guide in docs/web.md.
 *
 * When a call fails because the access token is gone or stale, the helper refreshes the
 * session once (one refresh shared by every caller in this page and, where the platform has
 * the Web Locks API, by every tab) and sends the call again. Retries are bounded, so a broken
 * session cannot loop. When the refresh itself is refused, the session is over:
 * `onSessionEnded` runs (in every tab, via BroadcastChannel).
 */

/**
 * 401 codes meaning "this access token cannot be used": expired, revoked, unreadable, or
 * missing (browsers drop the access cookie when it expires). One refresh can fix each of
 * them; whether the session itself has ended is for the refresh endpoint to say.
 */
const STALE_ACCESS = new Set(['token_expired', 'missing_token', 'token_revoked', 'invalid_token'])
const LOCK_NAME = 'portcullis-refresh'
/** However it is configured, a call is never sent more than this many extra times. */
const RETRY_CEILING = 10

/** @param {import('./portcullis-fetch.js').AuthFetchOptions} [options] */
export function createAuthFetch(options = {}) {
  const {
    basePath = '/auth',
    fetch: send = (input, init) => globalThis.fetch(input, init),
    onSessionEnded = () => {},
    onReauthenticationRequired = () => {},
    maxRetries = 1,
    refreshTimeout = 10_000,
    crossTab = true,
  } = options
  const refreshUrl = `${String(basePath).replace(/\/+$/, '')}/refresh`
  const signInUrl = `${String(basePath).replace(/\/+$/, '')}/signin`
  const retries = Math.min(Math.max(0, Math.floor(Number(maxRetries)) || 0), RETRY_CEILING)
  /** Counts refreshes known to have succeeded (here or in another tab) since this page loaded. */
  let epoch = 0
  /** This page's refresh in progress, shared by every caller (single flight). */
  let inflight = null
  const locks = crossTab ? globalThis.navigator?.locks : undefined
  const channel = crossTab && typeof BroadcastChannel === 'function' ? new BroadcastChannel(LOCK_NAME) : null
  if (channel) {
    channel.unref?.() // Node.js: a fetch helper must not keep the process alive.
    channel.onmessage = ({ data }) => {
      if (data?.type === 'refreshed') epoch++
      else if (data?.type === 'ended') sessionEnded(data.code ?? null, true)
    }
  }

  function sessionEnded(code, otherTab) {
    try {
      onSessionEnded({ code, otherTab })
    } catch (err) {
      queueMicrotask(() => {
        throw err // the app's bug: report it like an event listener's, not as a failed fetch
      })
    }
  }

  /** One POST to the refresh endpoint. True when the session lives on. */
  async function refreshNow() {
    let response
    try {
      const signal = typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(refreshTimeout) : undefined
      response = await send(refreshUrl, { method: 'POST', credentials: 'include', headers: { accept: 'application/json' }, signal })
    } catch {
      return false // unreachable or too slow: not proof that the session ended
    }
    // The body carries a fresh access token; it stays unread: the cookie is what counts.
    const code = response.ok ? null : await codeOf(response)
    if (response.ok) {
      discard(response)
      epoch++
      channel?.postMessage({ type: 'refreshed' })
      return true
    }
    // 401 from the refresh endpoint (refresh_token_reused, session_expired,
    // invalid_refresh_token) means the session is gone; 429 or 5xx mean "not now".
    if (response.status === 401) {
      channel?.postMessage({ type: 'ended', code })
      sessionEnded(code, false)
    }
    return false
  }

  /** refreshNow under the cross-tab lock, unless another tab is already refreshing. */
  async function refreshAcrossTabs(seen) {
    if (!locks) return refreshNow()
    let outcome
    try {
      await locks.request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
        if (lock) outcome = seen !== epoch || (await refreshNow())
      })
      if (outcome !== undefined) return outcome
      // Another tab holds the lock: it is refreshing these very cookies. Wait until it is
      // done, then retry with what it left in the shared cookie jar.
      await locks.request(LOCK_NAME, () => {})
      return true
    } catch {
      // No lock manager here (sandboxed frame, opaque origin). Still safe: the gateway hands
      // concurrent refreshes of one token the same successor (refreshReuseGrace).
      return outcome ?? refreshNow()
    }
  }

  /** `seen`: the epoch when the failed call was sent. A newer refresh makes another one needless. */
  function refresh(seen) {
    if (seen !== epoch) return Promise.resolve(true)
    inflight ??= refreshAcrossTabs(seen).finally(() => {
      inflight = null
    })
    return inflight
  }

  return async function authFetch(input, init) {
    // A stream can be read once; sending it again would send nothing. Such calls get no retry.
    const replayable = !isStream(init?.body)
    const isRequest = typeof Request === 'function' && input instanceof Request
    const attempt = () => send(isRequest ? input.clone() : input, init)
    let seen = epoch
    let response = await attempt()
    for (let retry = 0; retry < retries && replayable; retry++) {
      if (!(await isStaleAccess(response))) break
      if (!(await refresh(seen))) break
      discard(response)
      seen = epoch
      response = await attempt()
    }
    // A route wants a more recent sign-in (maxAuthAge): no refresh can help, the user must
    // sign in again. Told to the app, with where to send the user.
    if (response.status === 401 && (await codeOf(response.clone())) === 'reauthentication_required') {
      const maxAge = Number(/max_age=(\d+)/.exec(response.headers.get('www-authenticate') ?? '')?.[1] ?? Number.NaN)
      const here = globalThis.location ? `${globalThis.location.pathname}${globalThis.location.search}` : '/'
      const query = new URLSearchParams({ return: here, ...(Number.isFinite(maxAge) ? { max_age: String(maxAge) } : {}) })
      try {
        onReauthenticationRequired({ maxAge: Number.isFinite(maxAge) ? maxAge : null, signInUrl: `${signInUrl}?${query}` })
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
    return response
  }
}

async function isStaleAccess(response) {
  if (response.status !== 401) return false
  if (!/json/i.test(response.headers.get('content-type') ?? '')) return false
  return STALE_ACCESS.has(await codeOf(response.clone()))
}

async function codeOf(response) {
  try {
    const body = await response.json()
    return typeof body?.code === 'string' ? body.code : null
  } catch {
    return null
  }
}

function isStream(body) {
  if (body === null || typeof body !== 'object') return false
  return typeof body.getReader === 'function' || typeof body.pipe === 'function' || typeof body[Symbol.asyncIterator] === 'function'
}

function discard(response) {
  response.body?.cancel().catch(() => {})
}
