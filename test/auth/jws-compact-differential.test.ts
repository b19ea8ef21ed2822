/**
 * The node:crypto verifier (src/auth/jws-compact.ts) against jose's jwtVerify on thousands of
 * mutated tokens: they must agree on accept, expired or refused. The only disagreements
 * allowed are the refusals we add on purpose, each recognised here by its cause: a second
 * base64url spelling of the same bytes, a `crit` header, a `b64` header other than true.
 */
import t from 'tap'
import { createHmac, KeyObject, sign, type webcrypto } from 'node:crypto'
import { errors, jwtVerify } from 'jose'
import { readClaims, readCompact, signatureHolds, signatureHoldsOffThread } from '../../src/auth/jws-compact.js'
import { type Algorithm, loadKeyring } from '../../src/auth/keys.js'
import { GatewayError } from '../../src/errors.js'

const NOW = 1_800_000_000
const TOLERANCE = 30
const RULES = { issuer: 'portcullis', audience: 'portcullis', toleranceSec: TOLERANCE, required: ['exp', 'iat', 'sub', 'sid'] }
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

type Outcome = 'accepted' | 'expired' | 'refused'

/** Seeded, so a failure names a case that can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function canonicalParts(token: string): boolean {
  return token.split('.').every((part) => Buffer.from(part, 'base64url').toString('base64url') === part)
}

for (const [alg, rounds] of [
  ['ES256', 3000],
  ['EdDSA', 1500],
  ['RS256', 600],
  ['HS256', 1500],
] as const) {
  t.test(`${alg}: jose and the node:crypto verifier agree on ${rounds} mutated tokens`, async (t) => {
    const keyring = await loadKeyring(undefined, alg)
    const kid = keyring.signer.kid
    const signingKey = KeyObject.from(keyring.signer.key as webcrypto.CryptoKey)
    const keyFor = (header: { kid?: unknown }) => {
      const key = typeof header.kid === 'string' ? keyring.verifiers.get(header.kid) : undefined
      if (!key) throw new GatewayError('invalid_token', 'unknown signing key')
      return key
    }
    const signPart = (input: string) => {
      const data = Buffer.from(input)
      const signature =
        alg === 'HS256'
          ? createHmac('sha256', signingKey).update(data).digest()
          : sign(alg === 'EdDSA' ? null : 'sha256', data, alg === 'ES256' ? { key: signingKey, dsaEncoding: 'ieee-p1363' } : signingKey)
      return `${input}.${signature.toString('base64url')}`
    }
    const enc = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url')

    // Both ways of checking the signature must give the same answer.
    const ours = async (token: string): Promise<Outcome> => {
      try {
        const jws = readCompact(token, alg as Algorithm)
        const key = keyFor(jws.header) as webcrypto.CryptoKey
        const holds = signatureHolds(jws, key)
        if (holds !== (await signatureHoldsOffThread(jws, key))) throw new Error(`the two signature checks disagree on ${token}`)
        if (!holds) return 'refused'
        readClaims(jws.payload, RULES, NOW)
        return 'accepted'
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err
        return err.code === 'token_expired' ? 'expired' : 'refused'
      }
    }
    const theirs = async (token: string): Promise<Outcome> => {
      try {
        await jwtVerify(token, (header) => keyFor(header), {
          algorithms: [alg],
          issuer: RULES.issuer,
          audience: RULES.audience,
          clockTolerance: TOLERANCE,
          requiredClaims: RULES.required,
          currentDate: new Date(NOW * 1000),
        })
        return 'accepted'
      } catch (err) {
        return err instanceof errors.JWTExpired ? 'expired' : 'refused'
      }
    }

    const random = prng(0x5eed + alg.length)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
    const header = () => ({ alg, typ: 'JWT', kid })
    const claims = () => ({
      iss: 'portcullis',
      aud: 'portcullis',
      sub: 'u-alice',
      sid: 'AAAAAAsession',
      roles: ['user'],
      iat: NOW - 5,
      exp: NOW + 300,
    })

    // Each mutation starts from a valid token and changes one thing.
    const mutations: Array<() => string> = [
      // A character of the encoded token replaced, dropped or added (the signature no longer covers it).
      () => {
        const token = signPart(`${enc(JSON.stringify(header()))}.${enc(JSON.stringify(claims()))}`)
        const at = Math.floor(random() * token.length)
        const char = random() < 0.9 ? pick([...ALPHABET]) : pick(['.', '+', '/', '=', ' ', '%', 'é'])
        return pick([
          () => token.slice(0, at) + char + token.slice(at + 1),
          () => token.slice(0, at) + token.slice(at + 1),
          () => token.slice(0, at) + char + token.slice(at),
          () => token.slice(0, at),
        ])()
      },
      // Signature bytes flipped, cut, lengthened.
      () => {
        const [input, signature] = [signPart(`${enc(JSON.stringify(header()))}.${enc(JSON.stringify(claims()))}`)].map((s) => [
          s.slice(0, s.lastIndexOf('.')),
          s.slice(s.lastIndexOf('.') + 1),
        ])[0]!
        const bytes = Buffer.from(signature!, 'base64url')
        const changed = pick([
          () => {
            bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8)
            return bytes
          },
          () => bytes.subarray(0, Math.floor(random() * bytes.length)),
          () => Buffer.concat([bytes, Buffer.alloc(1 + Math.floor(random() * 8), Math.floor(random() * 256))]),
          () => Buffer.concat([Buffer.from([0x30, bytes.length + 4, 0x02, 32]), bytes]), // DER-like framing
        ])()
        return `${input}.${enc(changed)}`
      },
      // The header's or the payload's bytes changed, and the result signed with the real key:
      // only the parsing and the checks can refuse it.
      () => {
        const parts = [Buffer.from(JSON.stringify(header())), Buffer.from(JSON.stringify(claims()))]
        const part = parts[random() < 0.5 ? 0 : 1]!
        const at = Math.floor(random() * part.length)
        part[at] = pick([Math.floor(random() * 256), 0x20, 0x22, 0x7b, 0x7d, 0x5b, 0x30, 0xff, 0xc3])
        return signPart(`${enc(parts[0]!)}.${enc(parts[1]!)}`)
      },
      // Claims set to values at and around each rule, signed with the real key.
      () => {
        const c: Record<string, unknown> = claims()
        const name = pick(['iss', 'aud', 'exp', 'nbf', 'iat', 'sub', 'sid'])
        const values: Record<string, unknown[]> = {
          iss: ['portcullis', 'Portcullis', 'other', ['portcullis'], null, 1, undefined],
          aud: ['portcullis', ['x', 'portcullis'], ['x'], [], 'x', null, 5, { portcullis: true }, 'portcullis ', undefined],
          exp: [NOW + 300, NOW - TOLERANCE - 1, NOW - TOLERANCE, NOW - TOLERANCE + 1, NOW, '1900000000', null, true, 1e308, -1, undefined],
          nbf: [NOW + TOLERANCE - 1, NOW + TOLERANCE, NOW + TOLERANCE + 1, NOW + 1000, NOW - 1000, 'soon', null, undefined],
          iat: [NOW, NOW + 1000, 'then', null, {}, undefined],
          sub: ['u-bob', '', 5, undefined],
          sid: ['s', null, undefined],
        }
        c[name] = pick(values[name]!)
        return signPart(`${enc(JSON.stringify(header()))}.${enc(JSON.stringify(c))}`)
      },
      // Header members set to what an attacker or a foreign issuer would send, signed with the real key.
      () => {
        const h: Record<string, unknown> = header()
        const name = pick(['alg', 'kid', 'typ', 'crit', 'b64', 'jwk', 'whole'])
        const values: Record<string, unknown[]> = {
          alg: [alg, alg.toLowerCase(), 'none', 'HS256', 'RS256', 'ES256', 'EdDSA', 'ES384', '', 1, null, undefined],
          kid: [kid, 'nope', '', 1, null, [kid], undefined],
          typ: ['JWT', 'at+jwt', 1, undefined],
          crit: [['b64'], ['exp'], [], 'b64', [1], undefined],
          b64: [true, false, 'false', undefined],
          jwk: [{ kty: 'oct', k: 'AAAA' }],
          whole: [[], 'x', null, 1],
        }
        if (name === 'whole') return signPart(`${enc(JSON.stringify(pick(values['whole']!)))}.${enc(JSON.stringify(claims()))}`)
        h[name] = pick(values[name]!)
        if (name === 'crit' && random() < 0.5) h['b64'] = pick([true, false])
        return signPart(`${enc(JSON.stringify(h))}.${enc(JSON.stringify(claims()))}`)
      },
      // The same bytes spelled another way: the unused low bits of a part's last character set.
      () => {
        const token = signPart(`${enc(JSON.stringify(header()))}.${enc(JSON.stringify(claims()))}`)
        const parts = token.split('.')
        const i = Math.floor(random() * 3)
        const part = parts[i]!
        if (part.length % 4 >= 2) parts[i] = part.slice(0, -1) + ALPHABET[ALPHABET.indexOf(part.at(-1)!) | (random() < 0.5 ? 1 : 2)]
        return parts.join('.')
      },
    ]

    const tally = { agreed: 0, accepted: 0, ourStricter: 0 }
    const control = signPart(`${enc(JSON.stringify(header()))}.${enc(JSON.stringify(claims()))}`)
    t.equal(await ours(control), 'accepted', 'the control is accepted by ours')
    t.equal(await theirs(control), 'accepted', 'the control is accepted by jose')
    for (let i = 0; i < rounds; i++) {
      const token = pick(mutations)()
      const [a, b] = [await ours(token), await theirs(token)]
      if (a === b) {
        tally.agreed++
        if (a === 'accepted') tally.accepted++
        continue
      }
      const decodedHeader = (() => {
        try {
          return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
        } catch {
          return {}
        }
      })()
      const intended =
        a === 'refused' &&
        (!canonicalParts(token) || decodedHeader?.crit !== undefined || (decodedHeader?.b64 !== undefined && decodedHeader?.b64 !== true))
      if (!intended) {
        t.fail(`disagreement on case ${i}: ours ${a}, jose ${b}`, { token })
        continue
      }
      tally.ourStricter++
    }
    t.comment(JSON.stringify(tally))
    t.ok(tally.accepted > 0 && tally.agreed > rounds * 0.8, 'the mutations reach both outcomes')
  })
}
