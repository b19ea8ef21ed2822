/**
 * Password hashing for `static` identity users and `portcullis hash-password`.
 *
 * Hashes are argon2id PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so the
 * parameters travel with each hash and can be raised later without breaking old ones.
 */
import { availableParallelism } from 'node:os'
import { randomBytes } from 'node:crypto'
import { hash, parseOptions, verify, type Algorithm, type Options } from '@node-rs/argon2'

/**
 * Longest password accepted, in UTF-8 bytes. Longer ones are refused before any hashing
 * work: argon2 pre-hashes its input, so a megabyte "password" costs real CPU per attempt
 * (the long-password DoS, cf. CVE-2013-1443 in Django). 1 KiB is far above any passphrase.
 */
export const MAX_PASSWORD_BYTES = 1024

// A `const enum` in the package's typings; isolatedModules cannot inline it, so spell the value.
const ARGON2ID = 2 as Algorithm

/**
 * Parameters for new hashes. OWASP's Password Storage Cheat Sheet (2023+) lists m=47104 KiB,
 * t=1 and m=19456 KiB, t=2 (p=1) as equivalent minimums; we take the larger memory *and*
 * two passes, so about twice the cheaper minimum. Measured ~20-27 ms (median) per hash or verify
 * on this project's 2-CPU dev machine. Memory is 46 MiB per verification in flight; they
 * run on libuv's pool (UV_THREADPOOL_SIZE, 4 by default), so the peak is ~184 MiB, and
 * the login rate limits bound how often an attacker can make us pay it.
 */
export const HASH_OPTIONS: Readonly<Options> = Object.freeze({
  algorithm: ARGON2ID,
  memoryCost: 47104,
  timeCost: 2,
  parallelism: 1,
})

/** True when the password is small enough to hash (see MAX_PASSWORD_BYTES). */
export function passwordFits(password: string): boolean {
  // Cheap pre-check: a UTF-16 code unit is at most 3 UTF-8 bytes, at least 1.
  if (password.length > MAX_PASSWORD_BYTES) return false
  return Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES
}

/** Hashes a new password; refuses empty and over-long ones with a RangeError. */
export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new RangeError('the password is empty')
  if (!passwordFits(password)) throw new RangeError(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`)
  return hash(password, HASH_OPTIONS)
}

/**
 * Checks a password against a PHC hash. Never throws: a malformed or unsupported hash,
 * or an over-long password, is simply `false` (the over-long one without hashing).
 */
export async function verifyPassword(hashed: string, password: string): Promise<boolean> {
  if (!passwordFits(password)) return false
  await hashing.acquire()
  try {
    return await verify(hashed, password)
  } catch {
    return false
  } finally {
    hashing.release()
  }
}

/**
 * How many password hashes may run at once. Hashing runs on libuv's thread pool, not the event
 * loop, but four memory-hard hashes at once take every core of a small machine and starve the
 * loop that proxies everyone else's requests (measured on 2 cores: proxied p99 ×4.3 during a
 * login storm, ×1.4 with one hash at a time). So leave one core to the event loop.
 */
export const MAX_CONCURRENT_HASHES = Math.max(1, availableParallelism() - 1)

class Semaphore {
  #free: number
  #waiting: Array<() => void> = []
  constructor(size: number) {
    this.#free = size
  }
  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return Promise.resolve()
    }
    return new Promise((resolve) => this.#waiting.push(resolve))
  }
  release(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#free++
  }
}
const hashing = new Semaphore(MAX_CONCURRENT_HASHES)

/** True when `hashed` is a PHC argon2 string this module can verify. */
export function isPasswordHash(hashed: string): boolean {
  try {
    parseOptions(hashed)
    return true
  } catch {
    return false
  }
}

/** The cost parameters of a hash, as a stable key; null when it does not parse. */
export function hashParamsKey(hashed: string): string | null {
  try {
    const o = parseOptions(hashed)
    return `${o.algorithm}:${o.version}:${o.memoryCost}:${o.timeCost}:${o.parallelism}:${o.outputLen}`
  } catch {
    return null
  }
}

const dummies = new Map<string, Promise<string>>()

/**
 * A hash of a random password, to verify against when the username is unknown so that
 * path costs what a wrong password costs. With `like`, it has the same cost parameters
 * as that hash (a verify's time depends only on them), so it matches users whose hashes
 * were made with other settings. Computed once per parameter set; the promise is cached.
 */
export function dummyHash(like?: string): Promise<string> {
  const key = (like === undefined ? null : hashParamsKey(like)) ?? 'default'
  let pending = dummies.get(key)
  if (pending === undefined) {
    const secret = randomBytes(32)
    let options: Options = HASH_OPTIONS
    if (key !== 'default' && like !== undefined) {
      const o = parseOptions(like)
      options = {
        algorithm: o.algorithm,
        version: o.version,
        memoryCost: o.memoryCost,
        timeCost: o.timeCost,
        parallelism: o.parallelism,
        outputLen: o.outputLen,
      }
    }
    pending = hash(secret, options)
    // A failed computation must not be cached for ever.
    pending.catch(() => dummies.delete(key))
    dummies.set(key, pending)
  }
  return pending
}
