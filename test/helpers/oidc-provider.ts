/**
 * A real OpenID Provider (`oidc-provider` v9, the certified Node implementation) as a child
 * process on 127.0.0.1:0, for tests of the gateway's OpenID Connect sign-in. The child is
 * test/helpers/oidc-provider-server.mjs, run by plain node so no TypeScript loader is involved.
 *
 * What it offers: the clients and accounts a test registers; devInteractions (its own login
 * and consent pages: any password is accepted for a known login); PKCE required; scopes
 * openid, profile, email, groups and realm_access; RS256 and ES256 keys made at start;
 * RP-initiated logout and back-channel logout to the clients' loopback receivers.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { runningProviders, type BackchannelDelivery, type LineTest } from './oidc-provider-driver.js'
import type { TeardownHost } from './redis-process.js'

export { logoutAtProvider, signInAtProvider, type BackchannelDelivery, type LogoutResult, type SignInResult } from './oidc-provider-driver.js'
export { CookieJar } from './cookie-jar.js'

export interface OidcClientOptions {
  client_id: string
  client_secret: string
  redirect_uris: string[]
  post_logout_redirect_uris?: string[]
  backchannel_logout_uri?: string
  /** Default true when backchannel_logout_uri is set: logout tokens then carry `sid`. */
  backchannel_logout_session_required?: boolean
  /** Default client_secret_basic. */
  token_endpoint_auth_method?: string
  /** Default RS256; ES256 and PS256 work too. */
  id_token_signed_response_alg?: string
  /** Any other client metadata oidc-provider knows, passed as is. */
  [metadata: string]: unknown
}

export interface OidcProviderOptions {
  clients?: OidcClientOptions[]
  /**
   * Login name → claims. The login is the account id and the id_token's `sub` (oidc-provider
   * makes them one), so a `sub` in the claims must equal the key.
   * E.g. `{ alice: { email: 'alice@example.com', name: 'Alice', groups: ['admins'], realm_access: { roles: ['ops'] } } }`.
   */
  accounts?: Record<string, Record<string, unknown>>
  /** Default true: granted claims go into the id_token too. False: only userinfo has them. */
  claimsInIdToken?: boolean
  /** Default 0 (any free port). */
  port?: number
}

export interface OidcProvider {
  /** `http://127.0.0.1:<port>`; discovery at `${issuer}/.well-known/openid-configuration`. */
  issuer: string
  pid: number
  /** Every back-channel delivery so far, oldest first (also those a browser's logout caused). */
  readonly backchannel: BackchannelDelivery[]
  /** The first delivery (past or to come) passing `test`; rejects after `timeoutMs` (default 5000). */
  waitForBackchannel(test?: (d: BackchannelDelivery) => boolean, timeoutMs?: number): Promise<BackchannelDelivery>
  /**
   * Registers a client after start, e.g. one whose redirect_uri names the port of a gateway
   * started after the provider. Rejects with oidc-provider's reason when the metadata is invalid.
   */
  addClient(client: OidcClientOptions): Promise<void>
  /** Every JSON line the child printed, and its stderr (for failure messages). */
  lines(): Record<string, unknown>[]
  stderr(): string
  /** SIGTERM (after SIGCONT if paused); resolves once it has exited. Also run at teardown. */
  stop(): Promise<void>
  /** SIGKILL: a crash. Resolves once it has exited. */
  kill(): Promise<void>
  /** SIGSTOP: connections are accepted by the kernel but never answered. */
  pause(): void
  /** SIGCONT. */
  resume(): void
}

const SERVER = join(import.meta.dirname, 'oidc-provider-server.mjs')

/** Starts a provider and resolves once it prints its issuer; stopped at `t`'s teardown. */
export async function startOidcProvider(t: TeardownHost, options: OidcProviderOptions = {}): Promise<OidcProvider> {
  for (const [id, claims] of Object.entries(options.accounts ?? {})) {
    if (claims['sub'] !== undefined && claims['sub'] !== id) throw new Error(`account ${id}: sub must equal the login (oidc-provider makes them one)`)
  }
  // Only PATH: no NODE_OPTIONS (tap's loader, coverage) from this process. stdin stays open as
  // a lifeline: the child exits when it closes, so a killed test process leaves no provider behind.
  const child = spawn(process.execPath, [SERVER, JSON.stringify(options)], {
    env: { PATH: process.env['PATH'] ?? '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  // A command written after the child died must not crash the test process (EPIPE).
  child.stdin.on('error', () => undefined)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const gone = () => child.exitCode !== null || child.signalCode !== null
  const lines: Record<string, unknown>[] = []
  const backchannel: BackchannelDelivery[] = []
  const waiters = new Set<{ test: LineTest; resolve: (line: Record<string, unknown>) => void }>()
  let stderr = ''
  let buffer = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8000)))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
      const text = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      // oidc-provider prints some warnings on stdout too: those are kept as text lines.
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        line = { event: 'text', text }
      }
      lines.push(line)
      if (line['event'] === 'backchannel') backchannel.push(line as unknown as BackchannelDelivery)
      for (const w of waiters) {
        if (!w.test(line)) continue
        waiters.delete(w)
        w.resolve(line)
      }
    }
  })

  const waitForLine = (test: LineTest, timeoutMs = 5000) => {
    const seen = lines.find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w)
        reject(new Error(`the OpenID Provider did not print the expected line within ${timeoutMs} ms; stderr: ${stderr}`))
      }, timeoutMs)
      const w = {
        test,
        resolve: (line: Record<string, unknown>) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      waiters.add(w)
    })
  }

  let issuer = ''
  const stop = async () => {
    if (issuer) runningProviders.delete(issuer)
    if (gone()) return
    child.kill('SIGCONT')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(stop)

  const listening = await Promise.race([
    // Only a failure waits this long: on a loaded 2-core machine its start once took over 15 s.
    waitForLine((l) => l['event'] === 'listening', 60_000),
    exited.then(() => {
      throw new Error(`the OpenID Provider exited before listening: ${stderr}`)
    }),
  ])
  issuer = String(listening['issuer'])
  runningProviders.set(issuer, { lines: () => lines, waitForLine })

  let commands = 0
  const addClient = async (client: OidcClientOptions) => {
    const id = ++commands
    child.stdin.write(`${JSON.stringify({ id, addClient: client })}\n`)
    const reply = await waitForLine((l) => l['event'] === 'reply' && l['id'] === id)
    if (reply['error']) throw new Error(`the OpenID Provider refused client ${client.client_id}: ${String(reply['error'])}`)
  }

  return {
    issuer,
    pid: child.pid!,
    addClient,
    backchannel,
    lines: () => lines,
    stderr: () => stderr,
    waitForBackchannel: async (test = () => true, timeoutMs = 5000) =>
      (await waitForLine(
        (l) => l['event'] === 'backchannel' && test(l as unknown as BackchannelDelivery),
        timeoutMs,
      )) as unknown as BackchannelDelivery,
    stop,
    async kill() {
      runningProviders.delete(issuer)
      if (!gone()) child.kill('SIGKILL')
      await exited
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  }
}
