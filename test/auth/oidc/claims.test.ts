import t from 'tap'
import { claimAt, mapClaims, unmetRequirement, wantedClaims } from '../../../src/auth/oidc/claims.js'

const source = { subjectClaim: 'sub', rolesClaim: null, defaultRoles: [], claims: [] as string[] }

t.test('a claim is found by its whole name first, then by a dot path', async (t) => {
  const claims = { 'https://example.com/roles': ['a'], realm_access: { roles: ['b'] }, 'a.b': 1, a: { b: 2 } }
  t.same(claimAt(claims, 'https://example.com/roles'), ['a'], 'a URL-shaped name is one claim')
  t.same(claimAt(claims, 'realm_access.roles'), ['b'], 'a dot path walks nested objects')
  t.equal(claimAt(claims, 'a.b'), 1, 'an exact name wins over the path it also reads as')
  t.equal(claimAt(claims, 'realm_access.roles.x'), undefined, 'a path through an array finds nothing')
  t.equal(claimAt(claims, 'toString'), undefined, 'inherited properties are not claims')
  t.equal(claimAt({ a: null }, 'a.b'), undefined, 'a path through null finds nothing')
})

t.test('the subject must be a header-safe string (or a whole number)', async (t) => {
  t.equal(mapClaims(source, { sub: 'u-1' })?.identity.subject, 'u-1')
  t.equal(mapClaims(source, { sub: 1234 })?.identity.subject, '1234', 'a numeric id becomes its digits')
  t.equal(mapClaims(source, {}), null, 'missing')
  t.equal(mapClaims(source, { sub: '' }), null, 'empty')
  t.equal(mapClaims(source, { sub: 'a\nb' }), null, 'a control character')
  t.equal(mapClaims(source, { sub: 'é' }), null, 'not ASCII')
  t.equal(mapClaims(source, { sub: 'x'.repeat(257) }), null, 'too long')
  t.equal(mapClaims(source, { sub: ['a'] }), null, 'not a string')
  t.equal(
    mapClaims({ ...source, subjectClaim: 'email' }, { sub: 'x', email: 'a@b.c' })?.identity.subject,
    'a@b.c',
    'another claim can be the subject',
  )
})

t.test('roles come from the roles claim and the defaults, without unsafe or repeated names', async (t) => {
  const roles = { ...source, rolesClaim: 'realm_access.roles', defaultRoles: ['user'] }
  const mapped = mapClaims(roles, { sub: 'u', realm_access: { roles: ['admin', 'a,b', ' pad', 'user', 7] } })
  t.same(mapped?.identity.roles, ['user', 'admin'])
  t.equal(mapped?.droppedRoles, 3, 'a comma, padding and a non-string are dropped and counted')
  t.same(mapClaims({ ...source, rolesClaim: 'group' }, { sub: 'u', group: 'ops' })?.identity.roles, ['ops'], 'one string is one role')
  t.same(mapClaims({ ...source, rolesClaim: 'groups', defaultRoles: ['user'] }, { sub: 'u' })?.identity.roles, ['user'], 'no claim: the defaults')
})

t.test('only the listed claims are copied, never registered ones', async (t) => {
  const copy = { ...source, claims: ['email', 'name', 'exp', 'sub', 'missing', 'address.country'] }
  const mapped = mapClaims(copy, { sub: 'u', email: 'a@b.c', name: 'A', exp: 1, other: 'x', address: { country: 'NL' } })
  t.same(mapped?.identity.claims, { email: 'a@b.c', name: 'A', 'address.country': 'NL' })
  t.same(wantedClaims({ subjectClaim: 'sub', rolesClaim: 'groups', claims: ['email'], requireClaims: { hd: 'x' } }), ['sub', 'groups', 'email', 'hd'])
  t.same(wantedClaims({ subjectClaim: 'email', rolesClaim: null, claims: [], requireClaims: {} }), ['email'])
})

t.test('requireClaims: every named claim must hold a required value', async (t) => {
  const claims = { hd: 'example.com', email_verified: true, groups: ['staff', 'ops'], level: 3, org: { id: 'o1' } }
  t.equal(unmetRequirement({}, claims), null, 'nothing required')
  t.equal(unmetRequirement({ hd: 'example.com', email_verified: true }, claims), null, 'equal values')
  t.equal(unmetRequirement({ groups: 'ops' }, claims), null, 'a list claim containing the value')
  t.equal(unmetRequirement({ groups: ['admins', 'staff'] }, claims), null, 'any of several values')
  t.equal(unmetRequirement({ 'org.id': 'o1', level: 3 }, claims), null, 'a dot path, a number')
  t.equal(unmetRequirement({ hd: 'evil.com' }, claims), 'hd', 'another value')
  t.equal(unmetRequirement({ email_verified: 'true' }, claims), 'email_verified', 'a string is not the boolean')
  t.equal(unmetRequirement({ groups: ['admins'] }, claims), 'groups', 'no member matches')
  t.equal(unmetRequirement({ tenant: 't1' }, claims), 'tenant', 'a missing claim never matches')
  t.equal(unmetRequirement({ hd: 'example.com', tenant: 't1' }, claims), 'tenant', 'all must hold')
})
