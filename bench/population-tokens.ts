/**
 * The token stream of the population benchmark: which access token each request carries.
 *
 * Model (docs/benchmarks.md, "Population"): N signed-in sessions, one user each. Request i
 * comes from a user drawn from a Zipf distribution (rank k with weight 1/k^s), at simulated
 * time i / (N × rate): every session makes `rate` requests per simulated second on average,
 * the popular ones far more, the tail far fewer. Each session's access token is re-minted
 * every `ttl` simulated seconds, at a phase of its own (sessions did not all sign in at once),
 * so a request carries the token its session holds at that simulated moment: the one it sent
 * before, or a fresh one after a renewal. `cold`: every request a token never sent before.
 *
 * The stream continues across rounds: the gateway is sent positions in order (warm-up, then the
 * measured run, round after round), and only what it consumed is taken off the front.
 */
import { createPrivateKey, type KeyObject, randomBytes, sign } from 'node:crypto'
import { newSessionId } from '../src/sessions/tokens.js'

export interface PopulationModel {
  /** Active sessions; 'cold' sends a never-seen token on every request. */
  users: number | 'cold'
  /** Zipf exponent. */
  s: number
  /** Simulated seconds between two tokens of one session (the gateway's accessTokenTtl). */
  ttl: number
  /** Mean requests per session per simulated second. */
  rate: number
  seed: number
}

/** Lifetime of the tokens in real time: valid for the whole run (docs: only simulated time renews them). */
export const REAL_TOKEN_TTL = 3 * 3600

/**
 * ES256 access tokens with the claims the gateway's own minter (src/auth/mint.ts) sets, signed
 * with node:crypto directly: jose's SignJWT is about a third slower, and the cold case needs
 * one token per request.
 */
export function es256Minter(pem: string): (subject: string, sid: string) => string {
  const key: KeyObject = createPrivateKey(pem)
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'bench', typ: 'JWT' })).toString('base64url')
  return (subject, sid) => {
    const iat = Math.floor(Date.now() / 1000)
    const claims = {
      roles: ['user'],
      sid,
      auth_time: iat,
      iss: 'portcullis',
      aud: 'portcullis',
      sub: subject,
      iat,
      exp: iat + REAL_TOKEN_TTL,
      jti: randomBytes(12).toString('base64url'),
    }
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }
}

/** mulberry32: a small seeded generator, so every run draws the same sequence. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Draws ranks 0..n-1 with weight 1/(rank+1)^s, by binary search over the cumulative weights. */
function zipf(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s
    cdf[k] = sum
  }
  return () => {
    const x = rand() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export class TokenStream {
  /** Generated, not yet consumed: tokens and whether each is its token's first appearance. */
  private tokens: string[] = []
  private fresh: boolean[] = []
  private generated = 0
  private readonly next: () => { token: string; fresh: boolean }
  /** Tokens minted so far (the distinct tokens of the stream). */
  minted = 0

  constructor(model: PopulationModel, mint: (subject: string, sid: string) => string) {
    const rand = random(model.seed)
    if (model.users === 'cold') {
      this.next = () => {
        const subject = `c-${this.minted++}`
        return { token: mint(subject, newSessionId(subject)), fresh: true }
      }
      return
    }
    const n = model.users
    const draw = zipf(n, model.s, rand)
    const phase = Float64Array.from({ length: n }, () => rand())
    const epoch = new Float64Array(n).fill(-1)
    const current: Array<string | undefined> = new Array(n)
    const sids: Array<string | undefined> = new Array(n)
    const perSecond = n * model.rate
    this.next = () => {
      const user = draw()
      const now = this.generated / perSecond
      const e = Math.floor(now / model.ttl + phase[user]!)
      if (e === epoch[user]) return { token: current[user]!, fresh: false }
      epoch[user] = e
      // A renewal keeps the session: same sid, a new token.
      const subject = `u-${user}`
      sids[user] ??= newSessionId(subject)
      const token = mint(subject, sids[user])
      current[user] = token
      this.minted++
      return { token, fresh: true }
    }
  }

  /** The next `n` tokens of the stream, left in it. */
  peek(n: number): string[] {
    while (this.tokens.length < n) {
      const { token, fresh } = this.next()
      this.generated++
      this.tokens.push(token)
      this.fresh.push(fresh)
    }
    return this.tokens.slice(0, n)
  }

  /** Takes `n` tokens off the front (what a run sent); returns how many were first appearances. */
  consume(n: number): number {
    this.peek(n)
    const fresh = this.fresh.slice(0, n).reduce((a, f) => a + (f ? 1 : 0), 0)
    this.tokens = this.tokens.slice(n)
    this.fresh = this.fresh.slice(n)
    return fresh
  }
}
