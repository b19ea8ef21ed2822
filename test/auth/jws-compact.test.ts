import t from 'tap'
import { generateKeyPairSync, sign, webcrypto } from 'node:crypto'
import { readCompact, signatureHolds, signatureHoldsOffThread } from '../../src/auth/jws-compact.js'
import type { Algorithm } from '../../src/auth/keys.js'
import { GatewayError } from '../../src/errors.js'

// The published examples: RFC 7515 Appendix A.1 (HS256), A.2 (RS256), A.3 (ES256), and
// RFC 8037 Appendix A.4 (Ed25519), each with the key the RFC gives for it.
const RFC7515_PAYLOAD = 'eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ'
const vectors: Array<{ name: string; alg: Algorithm; token: string; key: () => Promise<webcrypto.CryptoKey>; payload: string }> = [
  {
    name: 'RFC 7515 A.1 (HS256)',
    alg: 'HS256',
    token: `eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.${RFC7515_PAYLOAD}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk`,
    key: () =>
      webcrypto.subtle.importKey(
        'raw',
        Buffer.from('AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow', 'base64url'),
        { name: 'HMAC', hash: 'SHA-256' },
        true, // as the gateway imports its keys (src/auth/keys.ts)
        ['verify'],
      ),
    payload: '{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}',
  },
  {
    name: 'RFC 7515 A.2 (RS256)',
    alg: 'RS256',
    token: [
      'eyJhbGciOiJSUzI1NiJ9',
      RFC7515_PAYLOAD,
      'cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw',
    ].join('.'),
    key: () =>
      webcrypto.subtle.importKey(
        'jwk',
        {
          kty: 'RSA',
          e: 'AQAB',
          n: 'ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ',
        },
        { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        true, // as the gateway imports its keys (src/auth/keys.ts)
        ['verify'],
      ),
    payload: '{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}',
  },
  {
    name: 'RFC 7515 A.3 (ES256)',
    alg: 'ES256',
    token: `eyJhbGciOiJFUzI1NiJ9.${RFC7515_PAYLOAD}.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q`,
    key: () =>
      webcrypto.subtle.importKey(
        'jwk',
        { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
        { name: 'ECDSA', namedCurve: 'P-256' },
        true, // as the gateway imports its keys (src/auth/keys.ts)
        ['verify'],
      ),
    payload: '{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}',
  },
  {
    name: 'RFC 8037 A.4 (Ed25519)',
    alg: 'EdDSA',
    token:
      'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg',
    key: () =>
      webcrypto.subtle.importKey(
        'jwk',
        { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' },
        { name: 'Ed25519' },
        true, // as the gateway imports its keys (src/auth/keys.ts)
        ['verify'],
      ),
    payload: 'Example of Ed25519 signing',
  },
]

function flipBit(part: string, bit: number): string {
  const bytes = Buffer.from(part, 'base64url')
  bytes[bit >> 3]! ^= 1 << (bit & 7)
  return bytes.toString('base64url')
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** The same bytes spelled with the lowest unused bit of the last character set (decoders that ignore it read the same bytes). */
function loosen(part: string): string {
  if (part.length % 4 < 2) throw new Error(`${part} has no unused bits`)
  const last = ALPHABET.indexOf(part.at(-1)!)
  const loose = `${part.slice(0, -1)}${ALPHABET[last | 1]}`
  if (!Buffer.from(loose, 'base64url').equals(Buffer.from(part, 'base64url'))) throw new Error('not the same bytes')
  return loose
}

function refusal(fn: () => unknown): string {
  try {
    fn()
    return 'accepted'
  } catch (err) {
    if (err instanceof GatewayError) return err.code
    throw err
  }
}

for (const v of vectors) {
  t.test(`the published example ${v.name} verifies with its published key, and not with one bit flipped`, async (t) => {
    const key = await v.key()
    const jws = readCompact(v.token, v.alg)
    t.equal(Buffer.from(jws.payload, 'base64url').toString(), v.payload)
    const [h, p, s] = v.token.split('.') as [string, string, string]
    const bits = Buffer.from(s, 'base64url').length * 8
    for (const [how, holds] of [
      ['on this thread', async (token: string) => signatureHolds(readCompact(token, v.alg), key)],
      ['off thread', (token: string) => signatureHoldsOffThread(readCompact(token, v.alg), key)],
    ] as const) {
      t.ok(await holds(v.token), `the example holds (${how})`)
      for (const bit of [0, 7, bits >> 1, bits - 1]) {
        t.notOk(await holds(`${h}.${p}.${flipBit(s, bit)}`), `signature bit ${bit} flipped (${how})`)
      }
      t.notOk(await holds(`${h}.${flipBit(p, 3)}.${s}`), `a payload bit flipped (${how})`)
    }
    t.equal(
      refusal(() => readCompact(v.token, v.alg === 'ES256' ? 'EdDSA' : 'ES256')),
      'invalid_token',
      'refused when another algorithm is pinned',
    )
  })
}

t.test('an ES256 signature in DER, though valid, is refused: only the 64-byte raw form is a JWS signature', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const key = await webcrypto.subtle.importKey('jwk', publicKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])
  const input = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}`
  const raw = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
  const der = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'der' })
  t.ok(signatureHolds(readCompact(`${input}.${raw.toString('base64url')}`, 'ES256'), key), 'the control: raw r‖s holds')
  t.notOk(signatureHolds(readCompact(`${input}.${der.toString('base64url')}`, 'ES256'), key), 'DER is refused')
  t.notOk(await signatureHoldsOffThread(readCompact(`${input}.${der.toString('base64url')}`, 'ES256'), key), 'DER is refused off thread')
  t.notOk(signatureHolds(readCompact(`${input}.${Buffer.concat([raw, Buffer.alloc(1)]).toString('base64url')}`, 'ES256'), key), 'one byte more')
})

t.test('a header or encoding jose would refuse, or that we do not understand, is refused before any cryptography', async (t) => {
  const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
  const sig = Buffer.alloc(64, 1).toString('base64url')
  const body = enc({ sub: 'x' })
  const cases: Array<[string, string]> = [
    ['alg none', `${enc({ alg: 'none' })}.${body}.${sig}`],
    ['alg missing', `${enc({ kid: 'k' })}.${body}.${sig}`],
    ['alg of another family', `${enc({ alg: 'HS256' })}.${body}.${sig}`],
    ['alg in another case', `${enc({ alg: 'es256' })}.${body}.${sig}`],
    ['any crit', `${enc({ alg: 'ES256', crit: ['exp'], exp: 1 })}.${body}.${sig}`],
    ['crit naming b64', `${enc({ alg: 'ES256', crit: ['b64'], b64: true })}.${body}.${sig}`],
    ['an unencoded payload (RFC 7797)', `${enc({ alg: 'ES256', b64: false })}.${body}.${sig}`],
    ['a header that is an array', `${enc([{ alg: 'ES256' }])}.${body}.${sig}`],
    ['a header that is a string', `${enc('"ES256"')}.${body}.${sig}`],
    ['a header that is null', `${enc('null')}.${body}.${sig}`],
    ['a header in ill-formed UTF-8', `${Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url')}.${body}.${sig}`],
    ['a part of impossible length (4n+1 characters)', `${enc({ alg: 'ES256' })}.${body}.${sig}AAA`],
    ['a signature with unused bits set', `${enc({ alg: 'ES256' })}.${body}.${loosen(sig)}`],
    ['a payload with unused bits set', `${enc({ alg: 'ES256' })}.${loosen(body)}.${sig}`],
    ['a header with unused bits set', `${loosen(enc({ alg: 'ES256', kid: 'k' }))}.${body}.${sig}`],
    ['padding', `${enc({ alg: 'ES256' })}.${body}=.${sig}`],
    ['the standard alphabet', `${enc({ alg: 'ES256' })}.${body}.${sig.replace(/-|_/g, '+')}+/`],
    ['an empty signature', `${enc({ alg: 'ES256' })}.${body}.`],
    ['four parts', `${enc({ alg: 'ES256' })}.${body}.${sig}.${sig}`],
  ]
  for (const [name, token] of cases)
    t.equal(
      refusal(() => readCompact(token, 'ES256')),
      'invalid_token',
      name,
    )
  t.equal(
    refusal(() => readCompact(`${enc({ alg: 'ES256', jku: 'https://x', b64: true })}.${body}.${sig}`, 'ES256')),
    'accepted',
    'the control: b64 true and an ignored jku',
  )
})
