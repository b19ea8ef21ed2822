// `node bench/verify-cost.mjs`: what one ES256 signature check costs, the way the gateway does
// it (jose's jwtVerify with an imported CryptoKey) against the WebCrypto call under it and
// against node:crypto's synchronous verify. CPU µs per token over 2,000 distinct tokens, one
// after another (best of three rounds): the floor of the gateway's never-seen-token path.
import { generateKeyPairSync, verify } from 'node:crypto'
import { importSPKI, jwtVerify, SignJWT } from 'jose'

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const key = await importSPKI(publicKey.export({ type: 'spki', format: 'pem' }), 'ES256')
const tokens = []
for (let i = 0; i < 2000; i++) {
  tokens.push(await new SignJWT({ sub: `u-${i}` }).setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('1h').sign(privateKey))
}
const parts = (token) => {
  const [header, payload, signature] = token.split('.')
  return { signed: Buffer.from(`${header}.${payload}`), signature: Buffer.from(signature, 'base64url') }
}

async function cost(name, check) {
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const start = process.cpuUsage()
    for (const token of tokens) await check(token)
    const used = process.cpuUsage(start)
    best = Math.min(best, (used.user + used.system) / tokens.length)
  }
  console.log(`${name}: ${best.toFixed(0)} µs of CPU per token`)
}

await cost('jose jwtVerify (CryptoKey)', (token) => jwtVerify(token, key, { algorithms: ['ES256'] }))
await cost('crypto.subtle.verify alone', (token) => {
  const { signed, signature } = parts(token)
  return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, signed)
})
await cost('node:crypto verify (synchronous)', (token) => {
  const { signed, signature } = parts(token)
  if (!verify('sha256', signed, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('bad signature')
})
