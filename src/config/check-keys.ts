/** Signing keys: the right kind for the algorithm, a first key that can sign, unique kids. */
import { reportDuplicates, type Check } from './check.js'

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output, 256 bits. */
const MIN_SECRET_BYTES = 32

export const keyChecks: Check[] = [
  {
    needs: [
      ['auth', 'keys', 'algorithm'],
      ['auth', 'keys', 'signing'],
    ],
    run({ auth }, report) {
      if (!auth.keys) return
      const { algorithm, signing, managed } = auth.keys
      // One source of keys: files an operator rotates, or keys the gateway rotates itself.
      if (signing && managed) report.problem(['auth', 'keys', 'managed'], 'cannot be used together with auth.keys.signing: choose one')
      if (!signing && !managed) report.problem(['auth', 'keys'], 'needs signing (key files or secrets) or managed (keys the gateway rotates itself)')
      if (managed && algorithm === 'HS256') report.problem(['auth', 'keys', 'algorithm'], 'managed keys are asymmetric: ES256, EdDSA or RS256')
      if (managed && report.clean(['auth', 'keys', 'managed']) && managed.publishAhead >= managed.rotateEvery) {
        report.problem(['auth', 'keys', 'managed', 'publishAhead'], 'must be shorter than rotateEvery')
      }
      if (!signing) return
      const at = (i: number, key: string) => ['auth', 'keys', 'signing', i, key]
      const valid = (i: number) => report.clean(['auth', 'keys', 'signing', i])
      signing.forEach((entry, i) => {
        if (!valid(i)) return
        // The algorithm is pinned, so a key of the wrong kind could never be used; and an
        // HMAC secret next to asymmetric keys would invite algorithm confusion.
        if (algorithm === 'HS256') {
          const file = 'privateKeyFile' in entry ? 'privateKeyFile' : 'publicKeyFile' in entry ? 'publicKeyFile' : null
          if (file) report.problem(at(i, file), 'cannot be used with algorithm HS256, which needs a secret')
        } else if ('secret' in entry) {
          report.problem(at(i, 'secret'), `is only for HS256; algorithm ${algorithm} needs privateKeyFile or publicKeyFile`)
        }
        if ('secret' in entry && algorithm === 'HS256') {
          const bytes = Buffer.byteLength(entry.secret, 'utf8')
          if (bytes < MIN_SECRET_BYTES) report.problem(at(i, 'secret'), `must be at least ${MIN_SECRET_BYTES} bytes long (it is ${bytes})`)
        }
      })
      const first = signing[0]
      if (first && valid(0) && 'publicKeyFile' in first && algorithm !== 'HS256') {
        report.problem(at(0, 'publicKeyFile'), 'cannot sign, and the first key signs: put a key with privateKeyFile first')
      }
      reportDuplicates(
        signing,
        (entry, i) => (valid(i) ? entry.kid : undefined),
        (i, firstIndex, kid) => report.problem(at(i, 'kid'), `"${kid}" is already the kid of auth.keys.signing[${firstIndex}]`),
      )
    },
  },
]
