/**
 * A real OpenID Provider (`oidc-provider` v9) for tests, run by plain `node` as a child process
 * (test/helpers/oidc-provider.ts starts it). Its options come as one JSON argument; it prints
 * one JSON line per event on stdout:
 *   {"event":"listening","issuer":"http://127.0.0.1:<port>"}
 *   {"event":"backchannel","url":...,"status":200,"sid":...,"sub":...,"aud":...,"jti":...,"marker":...}
 *   {"event":"end_session","marker":...}          (after every back-channel delivery of that logout)
 *   {"event":"server_error","message":...}
 * The marker is the `x-harness-marker` header of the request that caused the line, if any.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { createInterface } from 'node:readline'
import Provider from 'oidc-provider'

const options = JSON.parse(process.argv[2] ?? '{}')
const accounts = options.accounts ?? {}

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)
const markerOf = (ctx) => ctx?.get('x-harness-marker') || null

/** Keys made at start, never written anywhere: RS256 first (the default), then ES256 on P-256. */
function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  return [
    { ...rsa, kid: `rsa-${randomBytes(4).toString('hex')}`, use: 'sig' },
    { ...ec, kid: `ec-${randomBytes(4).toString('hex')}`, use: 'sig' },
  ]
}

/** The login typed on the devInteractions form is the account id, and the id is the `sub`. */
async function findAccount(_ctx, id) {
  const claims = accounts[id]
  if (!claims) return undefined
  return { accountId: id, claims: async () => ({ ...claims, sub: id }) }
}

/**
 * oidc-provider refuses to deliver back-channel logout tokens to special-use addresses
 * (127.0.0.0/8 among them) by handing fetch an SSRF-guarding dispatcher; the receivers in
 * tests live on loopback, so the dispatcher is dropped. Each delivery is reported with its status.
 */
async function loopbackFetch(url, init) {
  delete init.dispatcher
  const body = init.body instanceof URLSearchParams ? init.body : null
  const token = body?.get('logout_token')
  if (!token) return globalThis.fetch(url, init)
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'))
  const line = { event: 'backchannel', url: String(url), sid: claims.sid ?? null, sub: claims.sub, aud: claims.aud, jti: claims.jti }
  const marker = markerOf(Provider.ctx)
  try {
    const response = await globalThis.fetch(url, init)
    print({ ...line, status: response.status, marker })
    return response
  } catch (err) {
    print({ ...line, status: null, error: String(err?.cause?.message ?? err?.message ?? err), marker })
    throw err
  }
}

function clientsOf(list) {
  return list.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    ...(c.backchannel_logout_uri ? { backchannel_logout_session_required: true } : {}),
    ...c,
  }))
}

const server = createServer()
await new Promise((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
const { port } = server.address()
const issuer = `http://127.0.0.1:${port}`

const provider = new Provider(issuer, {
  clients: clientsOf(options.clients ?? []),
  findAccount,
  jwks: { keys: signingKeys() },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'updated_at'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    realm_access: ['realm_access'],
  },
  // Claims of the granted scopes go into the id_token as well as userinfo (as Keycloak does);
  // `claimsInIdToken: false` keeps them for userinfo only, as the OpenID Connect spec has it for code flow.
  conformIdTokenClaims: options.claimsInIdToken === false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Browsers keep cookies per host, not per host and port: two providers on 127.0.0.1 would
  // overwrite each other's `_session` in Chromium unless the names differ. Cookies are only
  // marked Secure when the request came over https, so plain http on loopback works as is.
  cookies: {
    names: { session: `_session_${port}`, interaction: `_interaction_${port}`, resume: `_interaction_resume_${port}` },
    keys: [randomBytes(32).toString('base64url')],
  },
  // Not /auth: the gateway's basePath is /auth on the same host, and path-scoped cookies of the
  // two would then match each other's URLs.
  routes: { authorization: '/authorize' },
  fetch: loopbackFetch,
})

provider.on('end_session.success', (ctx) => print({ event: 'end_session', marker: markerOf(ctx) }))
provider.on('backchannel.error', (ctx, err, client) =>
  print({ event: 'backchannel_error', client: client.clientId, message: err.message, marker: markerOf(ctx) }),
)
provider.on('server_error', (_ctx, err) => print({ event: 'server_error', message: err.message, stack: err.stack }))

server.on('request', provider.callback())
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close()
    server.closeAllConnections()
    process.exit(0)
  })
}
/** A client registered after start (its redirect URI may name a port known only then). */
async function addClient(metadata) {
  const [client] = clientsOf([metadata])
  await provider.Client.validate(client)
  await provider.Client.adapter.upsert(client.client_id, client)
}

// Commands come on stdin, one JSON line each: {"id":1,"addClient":{...}} → {"event":"reply","id":1,"error":null}.
// The parent holds stdin open; when it goes (even killed with SIGKILL), so do we.
const commands = createInterface({ input: process.stdin })
commands.on('line', (text) => {
  const { id, addClient: metadata } = JSON.parse(text)
  addClient(metadata).then(
    () => print({ event: 'reply', id, error: null }),
    (err) => print({ event: 'reply', id, error: `${err.message}${err.error_description ? `: ${err.error_description}` : ''}` }),
  )
})
commands.on('close', () => process.exit(0))
print({ event: 'listening', issuer })
