// `node --expose-gc --import @tapjs/typescript/import bench/token-cache-memory.ts [count] [extra claim bytes]`:
// what one entry of the verified-token cache costs in heap, token string, claims object, entry
// and lru-cache's bookkeeping together: the heap used after `count` distinct ES256 tokens of
// ours went through a real createVerifier (and nothing else holds them), less the heap before,
// divided by `count`. Also what the cache's own sizeCalculation reckoned for them.
import { generateKeyPairSync, randomBytes, sign, webcrypto } from 'node:crypto'
import type { Keyring } from '../src/auth/keys.js'
import { createVerifier } from '../src/auth/verify.js'

const count = Number(process.argv[2] ?? 100_000)
const extra = Number(process.argv[3] ?? 0)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run node with --expose-gc')

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const verifyKey = await webcrypto.subtle.importKey('jwk', publicKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, [
  'verify',
])
const keyring = { algorithm: 'ES256', verifiers: new Map([['k1', verifyKey]]), epoch: 0 } as unknown as Keyring
const now = Date.now()
const nowSec = Math.floor(now / 1000)
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const header = b64({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
// Shaped like src/auth/mint.ts's: a session's claims (none by default), roles, sid, auth_time,
// then iss, aud, sub, iat, exp, jti.
function token(i: number): string {
  const claims = {
    ...(extra > 0 ? { name: 'x'.repeat(extra) } : {}),
    roles: ['user'],
    sid: `u${String(i).padStart(5, '0')}${randomBytes(16).toString('base64url')}`,
    auth_time: nowSec - 60,
    iss: 'portcullis',
    aud: 'portcullis',
    sub: `user-${i}`,
    iat: nowSec,
    exp: nowSec + 600,
    jti: randomBytes(12).toString('base64url'),
  }
  const input = `${header}.${b64(claims)}`
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

const verify = createVerifier({
  keyring,
  issuer: 'portcullis',
  audience: 'portcullis',
  clockTolerance: 30_000,
  maxLifetime: 600_000,
  cacheSize: 2 ** 40,
  now: () => now,
})
let sample = ''
gc()
const before = process.memoryUsage().heapUsed
for (let start = 0; start < count; start += 1000) {
  // Made in batches and dropped: only the cache keeps them.
  const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => token(start + i))
  for (const t of batch) await verify(t)
  sample = batch[0]!
}
gc()
const after = process.memoryUsage().heapUsed
const reckoned = verify.cacheStats.held().bytes
console.log(
  `${count} entries, tokens of ${sample.length} characters: ${((after - before) / count).toFixed(0)} bytes of heap per entry; ` +
    `the cache reckoned ${(reckoned / count).toFixed(0)} (${(reckoned / (after - before)).toFixed(2)}× the heap)`,
)
