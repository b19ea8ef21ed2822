/** The sign-in page's script; only its return-path check is meant for use elsewhere (tests). */

/** `value` when it is a same-origin path (`/x`, not `//x`, `/\x` or `https://x`), else `/`. */
export function safeReturnPath(value: unknown): string
