/**
 * Managed signing keys (auth.keys.managed, docs/keys.md): a Keyring whose signer, verifiers and
 * JWKS follow the keyset in the store, without a config reload.
 *
 * Every instance sharing the store reads the same keyset, and the signer at any moment is the
 * newest key whose `activatesAt` has come (./keyset-schedule.ts), computed from the clock on
 * each read, so instances with synced clocks switch together. Whoever first sees that the
 * schedule needs a change (the first key, the next key, dropping a retired one) writes it by
 * compare-and-set; the others' writes fail, and they adopt the winner's keyset.
 *
 * Changes reach an instance through the store's notification (Redis pub/sub: milliseconds)
 * and, should one be lost, through a poll of the keyset's version every `pollInterval` (5 s).
 */
import type { JWK } from 'jose'
import type { KeysConfig } from '../config/schema.js'
import type { KeysetStore, StoredKeyset } from '../sessions/keyset.js'
import { sealingKey } from './key-seal.js'
import { encodeKeyset, makeKey, openKey, parseKeyset, type ManagedAlgorithm, type OpenedKey, type StoredKey } from './keyset-codec.js'
import { byActivation, plan, signerIndex, type Schedule } from './keyset-schedule.js'
import type { Keyring } from './keys.js'

export type ManagedSettings = NonNullable<KeysConfig['managed']>

export interface ManagedLog {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface ManagedStartOptions {
  /** ms a retired key keeps verifying: accessTokenTtl + clockTolerance. */
  retainFor: number
  now?: () => number
  /** ms between looks at the store's version (default 5000). */
  pollInterval?: number
  log?: ManagedLog
}

/** A problem with the keys in the store that start-up cannot get past; `setting` is what to check. */
export class ManagedKeysError extends Error {
  constructor(
    readonly code: 'wrong_encryption_key' | 'algorithm_mismatch',
    readonly setting: string,
    message: string,
  ) {
    super(message)
    this.name = 'ManagedKeysError'
  }
}

interface State {
  version: number
  /** Oldest activation first. */
  keys: readonly OpenedKey[]
  verifiers: ReadonlyMap<string, CryptoKey>
  jwks: { readonly keys: readonly JWK[] }
}
type CryptoKey = OpenedKey['verifier']

const EMPTY: State = { version: 0, keys: [], verifiers: new Map(), jwks: Object.freeze({ keys: [] }) }
export const DEFAULT_POLL_INTERVAL = 5000

export class ManagedKeyring implements Keyring {
  readonly ephemeral = false
  /** One more each time a kid stops verifying: a verifier re-checks its cached tokens then. */
  epoch = 0
  #settings: ManagedSettings
  #sealKey: Buffer
  #state = EMPTY
  #opened = new Map<string, OpenedKey>()
  #signer: Keyring['signer'] | undefined
  #from = Number.POSITIVE_INFINITY
  #until = Number.NEGATIVE_INFINITY
  #now: () => number = Date.now
  #retainFor = 0
  #store: KeysetStore | null = null
  #log: ManagedLog | undefined
  #timer: NodeJS.Timeout | undefined
  #unwatch = () => {}
  #queue: Promise<unknown> = Promise.resolve()
  #failedVersion = -1

  constructor(
    readonly algorithm: ManagedAlgorithm,
    settings: ManagedSettings,
  ) {
    this.#settings = settings
    this.#sealKey = sealingKey(settings.encryptionKey)
  }

  /** Read on every mint: the key for this moment, picked again only when a switch time passes. */
  get signer(): Keyring['signer'] {
    const t = this.#now()
    if (t >= this.#until || t < this.#from) this.#pick(t)
    return this.#signer!
  }
  get verifiers(): ReadonlyMap<string, CryptoKey> {
    return this.#state.verifiers
  }
  get jwks(): { readonly keys: readonly JWK[] } {
    return this.#state.jwks
  }
  /** Half of publishAhead, at most 5 minutes: an upstream's cached JWKS has the next key before it signs. */
  get jwksMaxAge(): number {
    return Math.min(300, Math.floor(this.#settings.publishAhead / 2000))
  }

  /** Loads (or makes) the keys, then follows the store; throws a ManagedKeysError for keys it cannot use. */
  async start(store: KeysetStore, opts: ManagedStartOptions): Promise<this> {
    this.#store = store
    this.#now = opts.now ?? Date.now
    this.#retainFor = opts.retainFor
    this.#log = opts.log
    await this.sync()
    this.#unwatch = store.watch(() => void this.#inBackground(() => this.#update()))
    this.#timer = setInterval(() => void this.#inBackground(() => this.#poll()), opts.pollInterval ?? DEFAULT_POLL_INTERVAL).unref()
    return this
  }

  /** rotateEvery and publishAhead as a reload sets them (the key material stays as started). */
  configure(settings: ManagedSettings): void {
    this.#settings = { ...settings, encryptionKey: this.#settings.encryptionKey }
  }

  /** Reads the store and makes the change the schedule asks for now, if any; one call at a time. */
  sync(): Promise<void> {
    return this.#serially(() => this.#update())
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#unwatch()
  }

  #serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn)
    this.#queue = run.catch(() => {})
    return run
  }

  /** A failure here keeps the keys as they were: this instance signs and verifies on. */
  async #inBackground(fn: () => Promise<void>): Promise<void> {
    try {
      await this.#serially(fn)
    } catch (err) {
      const version = await this.#store!.version().catch(() => -2)
      // Once per keyset version: a poll every few seconds must not flood the log.
      if (version !== this.#failedVersion) this.#log?.error({ err }, 'managed keys: cannot follow the keyset in the store; keeping the keys in use')
      this.#failedVersion = version
    }
  }

  /** A poll: one small read, unless the version moved or the schedule is due. */
  async #poll(): Promise<void> {
    const version = await this.#store!.version()
    const todo = plan(this.#state.keys, this.#now(), this.#schedule())
    if (version !== this.#state.version || todo.add !== null || todo.drop.length > 0) await this.#update()
  }

  async #update(): Promise<void> {
    const store = this.#store!
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.#apply(await store.read())
      const todo = plan(this.#state.keys, this.#now(), this.#schedule())
      if (todo.add === null && todo.drop.length === 0) return
      const keys: StoredKey[] = this.#state.keys.filter((k) => !todo.drop.includes(k.kid)).map((k) => k.stored)
      const added = todo.add === null ? null : await makeKey(this.algorithm, todo.add, this.#sealKey)
      if (added) keys.push(added)
      const value = encodeKeyset({ alg: this.algorithm, keys })
      if (await store.replace(this.#state.version, value)) {
        await this.#apply({ version: this.#state.version + 1, value })
        this.#log?.info(
          { added: added && { kid: added.kid, activatesAt: new Date(added.activatesAt) }, dropped: todo.drop },
          'managed keys: keyset updated',
        )
        return
      }
      // Another instance wrote first: adopt its keyset and plan again.
    }
    throw new Error('managed keys: the keyset kept changing while this instance tried to update it')
  }

  #schedule(): Schedule {
    return { rotateEvery: this.#settings.rotateEvery, publishAhead: this.#settings.publishAhead, retainFor: this.#retainFor }
  }

  async #apply(stored: StoredKeyset | null): Promise<void> {
    const version = stored?.version ?? 0
    if (version === this.#state.version && version !== 0) return
    const record = stored ? parseKeyset(stored.value) : { alg: this.algorithm, keys: [] }
    if (record.alg !== this.algorithm) {
      throw new ManagedKeysError(
        'algorithm_mismatch',
        'auth.keys.algorithm',
        `the managed keys in the store are ${record.alg} keys, and auth.keys.algorithm is ${this.algorithm}: set it back to ${record.alg}, or replace them with \`portcullis keys rotate --now\` (every access token is then refused once and clients refresh)`,
      )
    }
    const keys = byActivation(await Promise.all(record.keys.map((k) => this.#open(k))))
    const verifiers = new Map(keys.map((k) => [k.kid, k.verifier]))
    const retired = [...this.#state.verifiers.keys()].filter((kid) => !verifiers.has(kid))
    this.#opened = new Map(keys.map((k) => [k.stored.sealed, k]))
    this.#state = { version, keys, verifiers, jwks: Object.freeze({ keys: Object.freeze(keys.map((k) => k.jwk)) }) }
    if (retired.length > 0) this.epoch++
    this.#until = Number.NEGATIVE_INFINITY // the signer is picked again at its next read
  }

  /** Opened once per sealed key: polls and notifications do not decrypt or import again. */
  async #open(stored: StoredKey): Promise<OpenedKey> {
    const known = this.#opened.get(stored.sealed)
    if (known?.kid === stored.kid) return known.activatesAt === stored.activatesAt ? known : { ...known, activatesAt: stored.activatesAt, stored }
    const opened = await openKey(stored, this.algorithm, this.#sealKey)
    if (opened) return opened
    throw new ManagedKeysError(
      'wrong_encryption_key',
      'auth.keys.managed.encryptionKey',
      `auth.keys.managed.encryptionKey cannot open the managed key ${stored.kid} in the store: it is not the encryptionKey that key was sealed with. Every instance sharing the store needs the same one (docs/keys.md says what to do if it is lost)`,
    )
  }

  #pick(t: number): void {
    const keys = this.#state.keys
    if (keys.length === 0) throw new Error('managed keys: none loaded yet (start() loads them)')
    const i = signerIndex(keys, t)
    const previous = this.#signer?.kid
    this.#signer = keys[i]!.signer
    this.#from = i === 0 ? Number.NEGATIVE_INFINITY : keys[i]!.activatesAt
    this.#until = keys[i + 1]?.activatesAt ?? Number.POSITIVE_INFINITY
    if (previous !== undefined && previous !== this.#signer.kid)
      this.#log?.info({ kid: this.#signer.kid, previous }, 'managed keys: signing with the next key')
  }
}

/** loadKeyring's answer for auth.keys.managed: a keyring that start() connects to the store. */
export function isManaged(keyring: Keyring): keyring is ManagedKeyring {
  return keyring instanceof ManagedKeyring
}

/** A started managed keyring over `store` (tests, benchmarks; main.ts starts loadKeyring's). */
export function startManagedKeyring(
  store: KeysetStore,
  opts: ManagedStartOptions & { algorithm: ManagedAlgorithm; managed: ManagedSettings },
): Promise<ManagedKeyring> {
  return new ManagedKeyring(opts.algorithm, opts.managed).start(store, opts)
}
