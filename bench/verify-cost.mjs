// `node --import @tapjs/typescript/import bench/verify-cost.mjs`: what one signature check of a
// never-seen token costs, for ES256, EdDSA and RS256, the way the gateway does it
// (src/auth/jws-compact.ts: node:crypto's one-shot verify, header and claims checks included)
// against jose's jwtVerify with an imported CryptoKey (the way it did before), in the same
// run. For ES256 also the two calls underneath: crypto.subtle.verify and node:crypto verify.
// CPU µs per token over 2,000 distinct tokens, one after another (best of five rounds, taking
// turns, so the ratios hold on a busy machine better than the absolute figures).
import { KeyObject, verify } from 'node:crypto'
import { generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { readClaims, readCompact, signatureHolds } from '../src/auth/jws-compact.js'

const TOKENS = 2000
const rules = { issuer: 'portcullis', audience: 'portcullis', toleranceSec: 30, required: ['exp', 'iat', 'sub', 'sid'] }

/** CPU µs per token of each check, best of five rounds, the checks taking turns within a round. */
async function costs(checks, tokens) {
  const best = checks.map(() => Infinity)
  for (let round = 0; round < 5; round++) {
    for (const [i, check] of checks.entries()) {
      const start = process.cpuUsage()
      for (const token of tokens) await check(token)
      const used = process.cpuUsage(start)
      best[i] = Math.min(best[i], (used.user + used.system) / tokens.length)
    }
  }
  return best
}

const parts = (token) => {
  const [header, payload, signature] = token.split('.')
  return { signed: Buffer.from(`${header}.${payload}`), signature: Buffer.from(signature, 'base64url') }
}

for (const alg of ['ES256', 'EdDSA', 'RS256']) {
  const { privateKey, publicKey } = await generateKeyPair(alg)
  const tokens = []
  for (let i = 0; i < TOKENS; i++) {
    const claims = { sub: `u-${i}`, sid: `s-${i}`, roles: ['user'] }
    tokens.push(
      await new SignJWT(claims)
        .setProtectedHeader({ alg, typ: 'JWT', kid: 'k1' })
        .setIssuer('portcullis')
        .setAudience('portcullis')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    )
  }
  const joseOptions = { algorithms: [alg], issuer: 'portcullis', audience: 'portcullis', clockTolerance: 30, requiredClaims: rules.required }
  const keyObject = KeyObject.from(publicKey)
  const [jose, ours, subtle, oneShot] = await costs(
    [
      (token) => jwtVerify(token, publicKey, joseOptions),
      (token) => {
        const jws = readCompact(token, alg)
        if (!signatureHolds(jws, publicKey)) throw new Error('bad signature')
        return readClaims(jws.payload, rules, Math.floor(Date.now() / 1000))
      },
      ...(alg !== 'ES256'
        ? []
        : [
            (token) => {
              const { signed, signature } = parts(token)
              return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, signature, signed)
            },
            (token) => {
              const { signed, signature } = parts(token)
              if (!verify('sha256', signed, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('bad signature')
            },
          ]),
    ],
    tokens,
  )
  console.log(`${alg}: jose jwtVerify ${jose.toFixed(0)} µs, jws-compact ${ours.toFixed(0)} µs of CPU per token (${(ours / jose).toFixed(2)}× jose)`)
  if (subtle !== undefined)
    console.log(`  underneath: crypto.subtle.verify alone ${subtle.toFixed(0)} µs, node:crypto verify alone ${oneShot.toFixed(0)} µs`)
}
