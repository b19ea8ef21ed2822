/**
 * `node --import @tapjs/typescript/import bench/keys-hot-path.ts [file|managed]`: what the
 * per-request steps that read the keyring cost: a verified-token cache hit (`cached` and the
 * awaited `verify`) and minting an access token, with keys from files or managed keys. CPU
 * time per call, median of seven rounds over 1,000 distinct ES256 tokens; one keyring kind per
 * process, as in the gateway. Run it before and after a change to those steps, alternating.
 *
 * Measured when managed keys came (2 cores, load average 12-15 from other suites): 8 runs
 * each, alternating, of the code before (the cache entry without its kid and epoch, the header
 * built once) and after: cache hit 382 → 395 ns (managed keys 371), awaited hit 621 → 646 ns
 * (590), mint 147 → 130 µs (116). Within the runs' own spread (±5 %): the hit adds one
 * property read and one comparison; minting builds its small header object per token.
 */
import { createMinter } from '../src/auth/mint.js'
import { loadKeyring, type Keyring } from '../src/auth/keys.js'
import { createVerifier } from '../src/auth/verify.js'
import type { SessionRecord } from '../src/sessions/types.js'

const kind = process.argv[2] ?? 'file'
const keyring: Keyring = kind === 'managed' ? await managedKeyring() : await loadKeyring(undefined, 'ES256')
const mint = createMinter({ keyring, issuer: 'portcullis', audience: 'portcullis', ttl: 600_000 })
const verify = createVerifier({ keyring, issuer: 'portcullis', audience: 'portcullis', clockTolerance: 30_000, maxLifetime: 600_000 })
const session = (i: number): SessionRecord => ({
  id: `AAAAAAsession${String(i).padStart(15, '0')}`,
  subject: `u-${i}`,
  roles: ['user'],
  claims: {},
  createdAt: Date.now(),
  lastUsedAt: Date.now(),
  idleExpiresAt: Date.now() + 86_400_000,
  absoluteExpiresAt: Date.now() + 86_400_000,
  userAgent: null,
  ip: null,
})
const tokens: string[] = []
for (let i = 0; i < 1000; i++) tokens.push((await mint(session(i), Date.now())).token)
for (const token of tokens) await verify(token)

const cpuMicros = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

async function median(name: string, unit: 'ns' | 'µs', rounds: number, calls: number, run: () => Promise<void> | void): Promise<void> {
  const figures: number[] = []
  for (let r = 0; r < rounds; r++) {
    const start = cpuMicros()
    await run()
    figures.push(((cpuMicros() - start) / calls) * (unit === 'ns' ? 1000 : 1))
  }
  figures.sort((a, b) => a - b)
  console.log(`${kind} ${name}: ${figures[Math.floor(rounds / 2)]!.toFixed(unit === 'ns' ? 0 : 1)} ${unit} of CPU per call`)
}

const REPEAT = 1000
await median('verify.cached (hit)', 'ns', 7, REPEAT * tokens.length, () => {
  for (let r = 0; r < REPEAT; r++) for (const token of tokens) if (verify.cached(token) === undefined) throw new Error('miss')
})
await median('await verify (hit)', 'ns', 7, 100 * tokens.length, async () => {
  for (let r = 0; r < 100; r++) for (const token of tokens) await verify(token)
})
await median('mint', 'µs', 7, 2000, async () => {
  for (let i = 0; i < 2000; i++) await mint(session(i), Date.now())
})

async function managedKeyring(): Promise<Keyring> {
  const { startManagedKeyring } = await import('../src/auth/managed-keys.js')
  const { memoryKeyset } = await import('../src/sessions/keyset.js')
  const ring = await startManagedKeyring(memoryKeyset(), {
    algorithm: 'ES256',
    managed: { rotateEvery: 30 * 86_400_000, publishAhead: 86_400_000, encryptionKey: 'x'.repeat(32) },
    retainFor: 630_000,
  })
  ring.stop()
  return ring
}
