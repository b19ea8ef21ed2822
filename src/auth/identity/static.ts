/** The `static` identity source: users and their password hashes listed in gateway.yaml. */
import { dummyHash, hashParamsKey, isPasswordHash, verifyPassword } from '../passwords.js'
import { dropReservedClaims, isValidRole, isValidSubject, type Identity, type IdentitySource } from './types.js'
import type { IdentityConfig } from '../../config/schema.js'

export type StaticUserConfig = Extract<IdentityConfig, { type: 'static' }>['users'][number]

export interface StaticSourceOptions {
  /** Password check; replaceable so tests can count the work done. */
  verify?: (hashed: string, password: string) => Promise<boolean>
}

interface Entry {
  hash: string
  identity: Identity
}

/**
 * Problems that make a users list unusable, each with its index-relative path
 * (`[2].passwordHash`) so the config loader can point at the line.
 */
export function staticUserProblems(users: readonly StaticUserConfig[]): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const seen = new Set<string>()
  users.forEach((user, i) => {
    if (seen.has(user.username)) problems.push({ path: `[${i}].username`, message: `duplicate username "${user.username}"` })
    seen.add(user.username)
    if (!isPasswordHash(user.passwordHash)) {
      problems.push({ path: `[${i}].passwordHash`, message: 'not a hash made by `portcullis hash-password`' })
    }
    if (!isValidSubject(user.subject ?? user.username)) {
      problems.push({ path: `[${i}].subject`, message: 'must be 1-256 characters without control characters' })
    }
    ;(user.roles ?? []).forEach((role, j) => {
      if (!isValidRole(role)) problems.push({ path: `[${i}].roles[${j}]`, message: 'must not contain "," control characters or surrounding spaces' })
    })
  })
  return problems
}

/** The most common cost parameters among the users, so the dummy verify costs what theirs do. */
function typicalHash(users: readonly StaticUserConfig[]): string | undefined {
  const counts = new Map<string, { hash: string; n: number }>()
  for (const { passwordHash } of users) {
    const key = hashParamsKey(passwordHash)
    if (key === null) continue
    const c = counts.get(key) ?? { hash: passwordHash, n: 0 }
    c.n++
    counts.set(key, c)
  }
  let best: { hash: string; n: number } | undefined
  for (const c of counts.values()) if (best === undefined || c.n > best.n) best = c
  return best?.hash
}

export function createStaticSource(users: readonly StaticUserConfig[], options: StaticSourceOptions = {}): IdentitySource {
  const problems = staticUserProblems(users)
  if (problems.length > 0) {
    throw new Error(`invalid static users: ${problems.map((p) => `users${p.path}: ${p.message}`).join('; ')}`)
  }
  const verify = options.verify ?? verifyPassword
  const byName = new Map<string, Entry>()
  for (const user of users) {
    byName.set(user.username, {
      hash: user.passwordHash,
      identity: {
        subject: user.subject ?? user.username,
        roles: [...(user.roles ?? [])],
        claims: dropReservedClaims(user.claims ?? {}),
      },
    })
  }
  const like = typicalHash(users)
  // Start the dummy hash now so the first unknown username does not pay for making it.
  dummyHash(like).catch(() => {})

  return {
    async authenticate(username, password) {
      const entry = byName.get(username)
      if (entry === undefined) {
        // Unknown user: spend one verification anyway so the answer takes as long as a
        // wrong password does (no username enumeration by timing), then refuse.
        await verify(await dummyHash(like), password)
        return null
      }
      if (!(await verify(entry.hash, password))) return null
      // A copy, so a caller adding to it cannot change what the next sign-in gets.
      return { subject: entry.identity.subject, roles: [...entry.identity.roles], claims: { ...entry.identity.claims } }
    },
  }
}
