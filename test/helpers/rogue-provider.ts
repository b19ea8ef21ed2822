/**
 * A scriptable, hostile OpenID Provider in this process (node:http on 127.0.0.1:0), for the
 * negative tests a real provider cannot be talked into: a test edits each id_token before it is
 * signed (wrong iss or aud, expired, alg none, HS256 with the client secret, an unpublished
 * key...), rotates keys, slows every answer, or answers any request itself.
 *
 * It speaks enough of the protocol for an honest client to succeed by default: discovery, JWKS,
 * an authorization endpoint that redirects straight back with a code (no login page, so plain
 * fetch can follow the gateway's /start), a token endpoint checking client_secret_basic and the
 * PKCE verifier (a code works once), userinfo and end_session.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeKey, signToken, type RogueAlg, type Signer, type SigningKey } from './rogue-keys.js'
import type { TeardownHost } from './redis-process.js'

export type { RogueAlg, Signer } from './rogue-keys.js'

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export interface RogueProviderOptions {
  /** Default 'portcullis'. */
  clientId?: string
  /** Default 'rogue-client-secret-0123456789abcdef'. */
  clientSecret?: string
  /** The `sub` of every id_token by default; default 'rogue-user'. */
  sub?: string
  /** The published key's algorithm; default RS256. */
  alg?: RogueAlg
  /** The clock for iat, exp and auth_time, in epoch seconds; default the real one. */
  now?: () => number
}

/** One request to the authorization endpoint, and what the provider made of it. */
export interface AuthorizeRecord {
  /** Every query parameter as sent. */
  params: Record<string, string>
  client_id?: string
  redirect_uri?: string
  state?: string
  nonce?: string
  code_challenge?: string
  code_challenge_method?: string
  scope?: string
  /** The code handed out, and the `sid` its id_token carries. */
  code: string
  sid: string
}

/** An id_token before it is signed: change anything in place. */
export interface IdTokenDraft {
  /** Holds iss, aud (the client_id), sub, iat, exp (iat + 300), auth_time, nonce, sid, azp when `azp` is on, then `idTokenClaims`. */
  claims: Record<string, unknown>
  /** Default 'key'. */
  signer: Signer
  /** Merged over the header the signer makes ({ alg, kid }); e.g. `{ kid: 'nope' }`. */
  header: Record<string, unknown>
}

/** What alterIdToken changes: claims (one set to undefined is left out), the signer, header fields. */
export interface IdTokenChange {
  claims?: Record<string, unknown>
  signer?: Signer
  header?: Record<string, unknown>
}

/** An `idToken` hook applying `change`, e.g. `rogue.idToken = alterIdToken({ claims: { aud: 'other' } })`. */
export function alterIdToken(change: IdTokenChange): (draft: IdTokenDraft) => void {
  return (draft) => {
    Object.assign(draft.claims, change.claims)
    Object.assign(draft.header, change.header)
    if (change.signer) draft.signer = change.signer
  }
}

export interface TokenAnswer {
  status: number
  body: Record<string, unknown>
}

export interface RogueProvider {
  /** `http://127.0.0.1:<port>` */
  issuer: string
  clientId: string
  clientSecret: string
  /** The discovery document, served as it is at the time of each request: edit or delete fields. */
  metadata: Record<string, unknown>
  /** Claims added to every id_token after the defaults (e.g. email, groups). */
  idTokenClaims: Record<string, unknown>
  /** What userinfo answers (its sub defaults to the last id_token's). */
  userinfo: Record<string, unknown>
  /** Add `azp: client_id` to id_tokens. */
  azp: boolean
  /** Every answer (discovery, JWKS, authorize, token, userinfo, end_session) waits this long first. */
  delayMs: number
  /** Edits each id_token before it is signed. */
  idToken?: (draft: IdTokenDraft, request: AuthorizeRecord) => void
  /** Edits each token endpoint answer (also error answers) before it is sent. */
  tokenAnswer?: (answer: TokenAnswer, request: AuthorizeRecord | undefined) => void
  /** Edits the redirect back to the client (add error=, drop iss, change state...). */
  authorizeRedirect?: (location: URL, request: AuthorizeRecord) => void
  /** Answers any request itself when it returns an answer; undefined lets the provider answer. */
  intercept?: (req: IncomingMessage, url: URL) => { status: number; headers?: Record<string, string>; body?: string } | undefined
  readonly authorizeRequests: AuthorizeRecord[]
  readonly tokenRequests: { authorization: string | null; params: Record<string, string>; status: number }[]
  readonly endSessionRequests: URL[]
  readonly jwksFetches: number
  readonly userinfoFetches: number
  /** The kid tokens are signed with now, and the one never published. */
  readonly kid: string
  readonly foreignKid: string
  /** A new key becomes the signing key and appears in the JWKS; the old one stays published unless `dropOld`. Resolves with the new kid. */
  rotateKey(opts?: { dropOld?: boolean }): Promise<string>
  /**
   * A back-channel logout token: iss, aud (client_id), iat, jti (fresh), events, and the sub and
   * sid of the last id_token, then `claims` over them (a claim set to undefined is left out).
   */
  logoutToken(claims?: Record<string, unknown>, opts?: { signer?: Signer; header?: Record<string, unknown> }): Promise<string>
  close(): Promise<void>
}

export async function startRogueProvider(t: TeardownHost, options: RogueProviderOptions = {}): Promise<RogueProvider> {
  const alg = options.alg ?? 'RS256'
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))
  const sub = options.sub ?? 'rogue-user'
  let current = await makeKey(alg, 'rogue')
  const foreign = await makeKey(alg, 'foreign')
  let published: SigningKey[] = [current]
  const codes = new Map<string, { record: AuthorizeRecord; used: boolean }>()
  const accessTokens = new Set<string>()
  const closing = new AbortController()
  let last: { sub: unknown; sid: unknown } = { sub, sid: undefined }
  let jwksFetches = 0
  let userinfoFetches = 0

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: String(err) })
      else res.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const rogue: RogueProvider = {
    issuer,
    clientId: options.clientId ?? 'portcullis',
    clientSecret: options.clientSecret ?? 'rogue-client-secret-0123456789abcdef',
    metadata: {
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      userinfo_endpoint: `${issuer}/userinfo`,
      end_session_endpoint: `${issuer}/logout`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code'],
      subject_types_supported: ['public'],
      scopes_supported: ['openid', 'profile', 'email'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
      id_token_signing_alg_values_supported: [alg],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    },
    idTokenClaims: {},
    userinfo: {},
    azp: false,
    delayMs: 0,
    authorizeRequests: [],
    tokenRequests: [],
    endSessionRequests: [],
    get jwksFetches() {
      return jwksFetches
    },
    get userinfoFetches() {
      return userinfoFetches
    },
    get kid() {
      return current.kid
    },
    foreignKid: foreign.kid,
    async rotateKey(opts = {}) {
      current = await makeKey(alg, 'rogue')
      published = opts.dropOld ? [current] : [...published, current]
      return current.kid
    },
    logoutToken(claims = {}, opts = {}) {
      const defaults = {
        iss: issuer,
        aud: rogue.clientId,
        iat: now(),
        jti: randomBytes(12).toString('base64url'),
        events: { [BACKCHANNEL_EVENT]: {} },
        ...last,
      }
      return signToken(withoutUndefined({ ...defaults, ...claims }), {
        signer: opts.signer ?? 'key',
        current,
        foreign,
        clientSecret: rogue.clientSecret,
        header: { typ: 'logout+jwt', ...opts.header },
      })
    },
    async close() {
      closing.abort()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  t.teardown(() => (server.listening ? rogue.close() : undefined))

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer)
    const body = await readBody(req)
    if (rogue.delayMs > 0) await sleep(rogue.delayMs, undefined, { signal: closing.signal }).catch(() => undefined)
    if (closing.signal.aborted) return void res.destroy()
    const own = rogue.intercept?.(req, url)
    if (own) return void res.writeHead(own.status, own.headers).end(own.body ?? '')
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return json(res, 200, rogue.metadata)
      case 'GET /jwks':
        jwksFetches++
        return json(res, 200, { keys: published.map((k) => k.jwk) })
      case 'GET /authorize':
        return authorize(url, res)
      case 'POST /token':
        return token(req, new URLSearchParams(body), res)
      case 'GET /userinfo':
      case 'POST /userinfo':
        return userinfo(req, res)
      case 'GET /logout':
        return endSession(url, res)
      default:
        return json(res, 404, { error: 'not_found' })
    }
  }

  function authorize(url: URL, res: ServerResponse): void {
    const params = Object.fromEntries(url.searchParams)
    const record: AuthorizeRecord = { ...params, params, code: randomBytes(16).toString('base64url'), sid: randomBytes(8).toString('hex') }
    rogue.authorizeRequests.push(record)
    codes.set(record.code, { record, used: false })
    if (!record.redirect_uri) return json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri missing' })
    const location = new URL(record.redirect_uri)
    location.searchParams.set('code', record.code)
    if (record.state !== undefined) location.searchParams.set('state', record.state)
    location.searchParams.set('iss', issuer)
    rogue.authorizeRedirect?.(location, record)
    res.writeHead(302, { location: location.href }).end()
  }

  async function token(req: IncomingMessage, params: URLSearchParams, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization ?? null
    const entry = codes.get(params.get('code') ?? '')
    const answer = await tokenAnswer(authorization, params, entry)
    rogue.tokenAnswer?.(answer, entry?.record)
    rogue.tokenRequests.push({ authorization, params: Object.fromEntries(params), status: answer.status })
    const headers: Record<string, string> = answer.status === 401 ? { 'www-authenticate': 'Basic realm="rogue"' } : {}
    json(res, answer.status, answer.body, headers)
  }

  async function tokenAnswer(
    authorization: string | null,
    params: URLSearchParams,
    entry: { record: AuthorizeRecord; used: boolean } | undefined,
  ): Promise<TokenAnswer> {
    const refuse = (status: number, error: string, description: string) => ({ status, body: { error, error_description: description } })
    if (!basicMatches(authorization, rogue.clientId, rogue.clientSecret)) return refuse(401, 'invalid_client', 'client authentication failed')
    if (params.get('grant_type') !== 'authorization_code') return refuse(400, 'unsupported_grant_type', 'only authorization_code')
    if (!entry) return refuse(400, 'invalid_grant', 'unknown code')
    // A code works once (RFC 6749 section 4.1.2); a replay is refused.
    if (entry.used) return refuse(400, 'invalid_grant', 'code already used')
    entry.used = true
    const { record } = entry
    if (params.get('redirect_uri') !== record.redirect_uri) return refuse(400, 'invalid_grant', 'redirect_uri differs from the authorization request')
    const challenge = createHash('sha256')
      .update(params.get('code_verifier') ?? '')
      .digest('base64url')
    if (record.code_challenge_method !== 'S256' || challenge !== record.code_challenge)
      return refuse(400, 'invalid_grant', 'PKCE verification failed')
    const accessToken = randomBytes(24).toString('base64url')
    accessTokens.add(accessToken)
    return {
      status: 200,
      body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: record.scope ?? 'openid', id_token: await idToken(record) },
    }
  }

  async function idToken(record: AuthorizeRecord): Promise<string> {
    const iat = now()
    const claims: Record<string, unknown> = {
      iss: issuer,
      aud: record.client_id ?? rogue.clientId,
      sub,
      iat,
      exp: iat + 300,
      auth_time: iat,
      sid: record.sid,
    }
    if (record.nonce !== undefined) claims['nonce'] = record.nonce
    if (rogue.azp) claims['azp'] = rogue.clientId
    const draft: IdTokenDraft = { claims: { ...claims, ...rogue.idTokenClaims }, signer: 'key', header: {} }
    rogue.idToken?.(draft, record)
    last = { sub: draft.claims['sub'], sid: draft.claims['sid'] }
    return signToken(withoutUndefined(draft.claims), {
      signer: draft.signer,
      current,
      foreign,
      clientSecret: rogue.clientSecret,
      header: draft.header,
    })
  }

  function userinfo(req: IncomingMessage, res: ServerResponse): void {
    userinfoFetches++
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (!bearer || !accessTokens.has(bearer))
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
    json(res, 200, { sub: last.sub, ...rogue.userinfo })
  }

  function endSession(url: URL, res: ServerResponse): void {
    rogue.endSessionRequests.push(url)
    const back = url.searchParams.get('post_logout_redirect_uri')
    if (!back) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('signed out')
    const location = new URL(back)
    const state = url.searchParams.get('state')
    if (state !== null) location.searchParams.set('state', state)
    res.writeHead(302, { location: location.href }).end()
  }

  return rogue
}

/** RFC 6749 section 2.3.1: id and secret are form-urlencoded, then joined by ':' and base64-encoded. */
function basicMatches(header: string | null, id: string, secret: string): boolean {
  const encoded = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '')?.[1]
  if (!encoded) return false
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '))
  try {
    return colon > 0 && unform(decoded.slice(0, colon)) === id && unform(decoded.slice(colon + 1)) === secret
  } catch {
    return false
  }
}

function withoutUndefined(claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined))
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body))
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
