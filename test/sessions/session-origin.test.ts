/**
 * A session remembers the provider it came from and the provider's sign-in time, in every
 * store, and a password session's stored bytes stay what they were.
 */
import t from 'tap'
import { decodeSession, encodeSession } from '../../src/sessions/redis-layout.js'
import { hashRefresh, newRefreshSecret, newSessionId } from '../../src/sessions/tokens.js'
import type { SessionRecord } from '../../src/sessions/types.js'

const T = Date.UTC(2026, 11, 3, 12)
const record = (extra: Partial<SessionRecord> = {}): SessionRecord => ({
  id: newSessionId('u-alice'),
  subject: 'u-alice',
  roles: ['user'],
  claims: { email: 'a@example.com' },
  createdAt: T,
  lastUsedAt: T,
  idleExpiresAt: T + 1000,
  absoluteExpiresAt: T + 2000,
  userAgent: 'ua',
  ip: '127.0.0.1',
  ...extra,
})

t.test('the Redis layout keeps the provider and the provider’s auth time', async (t) => {
  const hash = hashRefresh(newRefreshSecret())
  for (const extra of [{}, { provider: 'corp' }, { provider: 'corp', authTime: T - 3_600_000 }, { authTime: T - 5 }] as Partial<SessionRecord>[]) {
    const r = record(extra)
    t.same(decodeSession(r.id, encodeSession(r, hash))?.record, r, JSON.stringify(extra))
  }
  const plain = encodeSession(record(), hash).toString('utf8')
  t.match(plain, '\n[["user"],{"email":"a@example.com"}]\n', 'a password session keeps the release-1 bytes')
})
