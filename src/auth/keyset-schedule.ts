/**
 * When managed keys sign, get published and go (docs/keys.md), as pure functions of the keys
 * in the store and a time. The schedule is data: each key carries the moment it starts signing
 * (`activatesAt`), so every instance reading the same keyset with a synced clock picks the same
 * signer at the same moment, without talking to the others.
 *
 *   key n   published ──publishAhead── signs ──────rotateEvery────── stops ──retainFor── dropped
 *   key n+1                              published ──publishAhead── signs ...
 */

export interface ScheduledKey {
  readonly kid: string
  /** Epoch ms: from then on it signs, until a later key activates. */
  readonly activatesAt: number
}

export interface Schedule {
  /** ms each key signs before the next takes over. */
  rotateEvery: number
  /** ms a new key is in the JWKS before it signs. */
  publishAhead: number
  /** ms a key keeps verifying after it stopped signing: accessTokenTtl + clockTolerance. */
  retainFor: number
}

/** What the keyset needs now: kids to drop, and the activatesAt of a key to add (or null). */
export interface Plan {
  drop: string[]
  add: number | null
}

/** Oldest first; equal times by kid, so every instance orders the same keys the same way. */
export function byActivation<K extends ScheduledKey>(keys: readonly K[]): K[] {
  return [...keys].sort((a, b) => a.activatesAt - b.activatesAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0))
}

/**
 * Index (in `sorted`, oldest first) of the key that signs at `now`: the newest one already
 * activated. When none has (this clock runs behind the one that wrote the keyset, as after
 * `keys rotate --now` run elsewhere), the earliest: there is always a signer.
 */
export function signerIndex(sorted: readonly ScheduledKey[], now: number): number {
  let i = sorted.length - 1
  while (i > 0 && sorted[i]!.activatesAt > now) i--
  return i
}

export function plan(keys: readonly ScheduledKey[], now: number, schedule: Schedule): Plan {
  if (keys.length === 0) return { drop: [], add: now }
  const sorted = byActivation(keys)
  const at = signerIndex(sorted, now)
  // A key stopped signing when the next one activated; its tokens (and the assertions made
  // with it, which never outlive their token) have all expired retainFor later.
  const drop: string[] = []
  for (let i = 0; i < at; i++) if (now >= sorted[i + 1]!.activatesAt + schedule.retainFor) drop.push(sorted[i]!.kid)
  const signer = sorted[at]!
  if (at < sorted.length - 1 || signer.activatesAt > now) return { drop, add: null }
  const due = signer.activatesAt + schedule.rotateEvery
  if (now < due - schedule.publishAhead) return { drop, add: null }
  // Late (no instance was running when it was due): the signer carries on until the new key
  // has been public for publishAhead, so no upstream's cached JWKS can miss it.
  return { drop, add: Math.max(due, now + schedule.publishAhead) }
}
