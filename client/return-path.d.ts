/** The return-path check shared by the sign-in page's script and the gateway. */

/** Longer return paths are dropped rather than carried through a sign-in. */
export const MAX_RETURN_PATH: number

/** `value` when it is a same-origin path (`/x`, not `//x`, `/\x` or `https://x`), else `/`. */
export function safeReturnPath(value: unknown): string
