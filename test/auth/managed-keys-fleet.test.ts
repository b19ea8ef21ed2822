import t from 'tap'
import { Redis } from 'ioredis'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import { api, login, refresh, type Tokens } from '../helpers/fleet-client.js'
import { send } from '../helpers/http.js'
import { startManagedFleet, type ManagedInstance } from '../helpers/managed-fleet.js'
import { startRedis } from '../helpers/redis.js'

const MINUTE = 60_000
const T0 = Date.UTC(2026, 10, 27, 12)

/**
 * An upstream that verifies assertions with the JWKS as HTTP caching allows it: fetched again
 * only once the copy is as old as its Cache-Control max-age, by the shared clock.
 */
function cachingUpstream(instances: ManagedInstance[], clock: { now: number }) {
  let copy: { set: JSONWebKeySet; fetchedAt: number; maxAge: number } | null = null
  let fetches = 0
  return {
    get fetches() {
      return fetches
    },
    async keys(): Promise<JSONWebKeySet> {
      if (copy === null || clock.now - copy.fetchedAt >= copy.maxAge * 1000) {
        const res = await send(instances[fetches++ % instances.length]!.url, '/.well-known/jwks.json')
        const maxAge = Number(/max-age=(\d+)/.exec(String(res.headers['cache-control']))![1])
        copy = { set: res.json<JSONWebKeySet>(), fetchedAt: clock.now, maxAge }
      }
      return copy.set
    },
  }
}

t.test('two instances on one Redis rotate through three keys while a client keeps calling', async (t) => {
  const redis = await startRedis(t)
  const clock = { now: T0 }
  // publishAhead 3m: the JWKS may be cached 90 s. A fixed 300 s (release 1) would leave the
  // upstream below without the next key when it starts signing.
  const fleet = await startManagedFleet(t, { now: () => clock.now, rotateEvery: '1h', publishAhead: '3m', accessTokenTtl: '5m' })
  const instances = [await fleet.start(redis.url), await fleet.start(redis.url)]
  const [a, b] = instances as [ManagedInstance, ManagedInstance]
  const upstream = cachingUpstream(instances, clock)
  const jwks = await send(a.url, '/.well-known/jwks.json')
  t.equal(jwks.headers['cache-control'], 'public, max-age=90', 'max-age is half of publishAhead')

  let tokens: Tokens = await login(a.url)
  let mintedAt = clock.now
  const refused: string[] = []
  const apart: string[] = []
  const notCurrent: string[] = []
  const unverifiable: string[] = []
  const signers = new Set<string>()
  for (let step = 1; step <= 190; step++) {
    clock.now += MINUTE
    await Promise.all(instances.map((i) => i.keys.sync()))
    const kid = a.keys.signer.kid
    signers.add(kid)
    if (b.keys.signer.kid !== kid) apart.push(`minute ${step}: ${kid} and ${b.keys.signer.kid}`)
    // Refreshed with a minute to spare, on each instance in turn.
    if (clock.now - mintedAt >= 4 * MINUTE) {
      const res = await refresh(instances[step % 2]!.url, tokens.refreshToken)
      if (res.status !== 200) refused.push(`minute ${step}: refresh ${res.status} ${res.body}`)
      tokens = res.json<Tokens>()
      mintedAt = clock.now
      if (decodeProtectedHeader(tokens.accessToken).kid !== kid) notCurrent.push(`minute ${step}`)
    }
    for (const instance of instances) {
      const res = await api(instance.url, tokens.accessToken)
      if (res.status !== 200) refused.push(`minute ${step}: ${res.status} ${res.body}`)
      const assertion = String(fleet.upstream.last().headers['x-portcullis-assertion'])
      await jwtVerify(assertion, createLocalJWKSet(await upstream.keys()), { currentDate: new Date(clock.now) }).catch((err: Error) =>
        unverifiable.push(`minute ${step}: ${err.message}`),
      )
    }
  }
  t.same(refused, [], 'no valid token was ever refused')
  t.same(apart, [], 'both instances signed with the same kid at every step')
  t.same(notCurrent, [], 'every token was signed by the key of its moment')
  t.same(unverifiable, [], 'an upstream honouring max-age never met an unknown kid')
  t.equal(signers.size, 4, 'the first key and three more')
  t.equal(upstream.fetches, 95, 'the upstream fetched the JWKS only when its copy was 90 s old: every other minute')
})

t.test('two instances starting at once on an empty Redis create one key and sign with it', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startManagedFleet(t)
  const [a, b] = await Promise.all([fleet.start(redis.url), fleet.start(redis.url)])
  t.equal(a.keys.signer.kid, b.keys.signer.kid)
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const [version, value] = await client.hmget('portcullis:keyset', 'v', 'set')
  t.equal(version, '1', 'the keyset was written once: the other instance adopted it')
  const stored = JSON.parse(value!) as { alg: string; keys: { kid: string; sealed: string }[] }
  t.same(
    stored.keys.map((k) => k.kid),
    [a.keys.signer.kid],
  )
  t.notMatch(value!, /PRIVATE|"d":/, 'no private key in the clear')
})

t.test('an instance whose encryptionKey differs from the fleet does not start, and says which setting', async (t) => {
  const redis = await startRedis(t)
  const fleet = await startManagedFleet(t)
  const a = await fleet.start(redis.url)
  const err = await fleet.start(redis.url, { keySecret: 'another secret of thirty-two bytes or more' }).catch((e: unknown) => e)
  t.match(err, { message: /^auth\.keys\.managed\.encryptionKey cannot open the managed key \S+ in the store/ })
  const res = await send(a.url, '/.well-known/jwks.json')
  t.same(
    res.json<JSONWebKeySet>().keys.map((k) => k.kid),
    [a.keys.signer.kid],
    'and made no key of its own',
  )
})
