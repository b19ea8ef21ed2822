/**
 * The return path after sign-in, checked by the same code on both sides: the sign-in page's
 * script (./signin.js) before it navigates, and the gateway (src/auth/signin.ts) before it
 * renders the page. Plain ESM with no DOM and no dependencies, so Node and browsers load it as
 * it is; the gateway serves it at {basePath}/return-path.js.
 */

/** Longer return paths are dropped rather than carried through a sign-in. */
export const MAX_RETURN_PATH = 2048

/**
 * `value` when it is a same-origin path, else `/`. An open redirect after sign-in lets a
 * phishing link borrow our origin (CWE-601), so only a path is accepted, in its plainest form:
 * - a single leading `/`, not followed by `/` or `\` (`//host` and `/\host` are network-path
 *   references: browsers read them as another host);
 * - printable ASCII only, and no `\` anywhere: the URL parser drops tabs and newlines
 *   (`/\t/host` becomes `//host`) and treats `\` as `/` in http(s) URLs;
 * - as a last guard, resolving it against an origin must stay on that origin.
 * @param {unknown} value
 * @returns {string}
 */
export function safeReturnPath(value) {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_RETURN_PATH) return '/'
  if (!/^\/(?![/\\])[\x21-\x7e]*$/.test(value) || value.includes('\\')) return '/'
  try {
    const base = 'http://return.invalid'
    return new URL(value, base).origin === base ? value : '/'
  } catch {
    return '/'
  }
}
