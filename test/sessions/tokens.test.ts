import t from 'tap'
import {
  deriveSuccessor,
  formatRefreshToken,
  hashRefresh,
  newRefreshSecret,
  newSessionId,
  parseRefreshToken,
  sessionTag,
  subjectTag,
} from '../../src/sessions/tokens.js'

t.test('a session id carries the hash tag of its subject', async (t) => {
  const sid = newSessionId('alice')
  t.equal(sessionTag(sid), subjectTag('alice'))
  t.equal(sid.length, 28)
  t.not(newSessionId('alice'), sid, 'ids are random')
})

t.test('a refresh token round-trips through format and parse', async (t) => {
  const sid = newSessionId('bob')
  const secret = newRefreshSecret()
  t.same(parseRefreshToken(formatRefreshToken(sid, secret)), { sessionId: sid, secret })
})

t.test('malformed refresh tokens parse to null', async (t) => {
  const good = formatRefreshToken(newSessionId('bob'), newRefreshSecret())
  for (const bad of [undefined, null, 42, '', 'x', good + 'a', good.replace('.', '-'), good.slice(0, -1) + '=', { a: 1 }]) {
    t.equal(parseRefreshToken(bad), null, `rejects ${JSON.stringify(bad)}`)
  }
})

t.test('the successor depends on the secret and the nonce, and not on the stored hash', async (t) => {
  const secret = newRefreshSecret()
  const a = deriveSuccessor(secret, 'n1')
  t.equal(deriveSuccessor(secret, 'n1'), a, 'deterministic')
  t.not(deriveSuccessor(secret, 'n2'), a)
  t.not(deriveSuccessor(hashRefresh(secret), 'n1'), a, 'the hash is not the key')
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
})
