/**
 * Ending sessions when the store's answer is lost.
 *
 * A store call that fails (a timeout, a dropped connection) has an unknown outcome: it may
 * still run in Redis and end the session, while the revocation that normally follows it (a
 * separate write) never happens. The session would then be gone and its access tokens valid
 * until they expire, on every instance, and a retried logout would find nothing to end.
 * So when the caller has proven it may end these sessions (a verified access token of that
 * very session, the user's own subject, or the admin role), their tokens are revoked anyway:
 * at once on this instance, and in the store as soon as it answers (the store keeps and
 * retries it). The caller still gets the error (503) and may retry.
 */
import type { EndpointContext } from '../routes.js'

export function revokeAnyway(ctx: EndpointContext, sessionIds: string[], now: number, subject?: string): void {
  const { auth } = ctx.config
  ctx.revokeLocally(sessionIds, now)
  if (subject !== undefined) {
    ctx.deps.revocations.apply({ type: 'user', subject, notBefore: now, forgetAfter: now + auth.accessTokenTtl + auth.clockTolerance })
  }
  // Not awaited: with the store away this would hold the answer for another timeout.
  ctx.deps.store.revoke?.(sessionIds, now, subject).catch(() => {})
}

/** Runs an ending call; if it fails, revokes what it was meant to end, then rethrows. */
export async function endOrRevoke<T>(
  ctx: EndpointContext,
  end: () => Promise<T>,
  what: { sessionIds: string[]; subject?: string; now: number },
): Promise<T> {
  try {
    return await end()
  } catch (err) {
    revokeAnyway(ctx, what.sessionIds, what.now, what.subject)
    throw err
  }
}
