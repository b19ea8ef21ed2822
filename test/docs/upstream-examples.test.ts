/**
 * The verification programs docs/upstreams.md shows, run as a reader would run them. Their
 * input comes from a real gateway on loopback: assertions taken from what its proxy sent a real
 * upstream on a route with `identityAssertion: true`, and its /.well-known/jwks.json. What no
 * gateway would send (another issuer, alg none, HS256, an unknown kid, a missing claim) is
 * forged here with the gateway's own key in SPEC.md's format (test/helpers/assertions.ts).
 *
 * Python runs on every machine: Debian's python3-jwt for /usr/bin/python3, which npm test
 * installs (scripts/test-deps.sh); a missing one fails here, never skips. Go is not installed by
 * the suite (Debian's Go is 1.19, the libraries want 1.21, and their modules come from the Go
 * proxy): the Go program is compiled and run only where a go of 1.21 or later can fetch them.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { loadKeyring, type Algorithm } from '../../src/auth/keys.js'
import { ORDERS, serveJwks, signAssertion, TYP, type AssertionKey } from '../helpers/assertions.js'
import { ROOT } from '../helpers/cli.js'
import { startGateway } from '../helpers/gateway.js'
import { makeKey } from '../helpers/rogue-keys.js'
import { makeToken, unsignedToken } from '../helpers/tokens.js'
import { startUpstream } from '../helpers/upstream.js'

const PYTHON = '/usr/bin/python3' // Debian's, where python3-jwt is; not a pyenv python first on PATH
const EXAMPLES = join(ROOT, 'docs', 'examples')

/**
 * A gateway signing with a key of `alg`, in front of an upstream whose audience is its origin:
 * `assertion()` is what the upstream receives for a request with an access token.
 */
async function gatewayWith(t: Test, alg: Algorithm) {
  const up = await startUpstream(t)
  const keyring = await loadKeyring(undefined, alg)
  const routes = `
  - { name: orders, prefix: /orders, upstream: "${up.url}", identityAssertion: true }
  - { name: billing, prefix: /billing, upstream: "${up.url}", identityAssertion: { audience: billing } }`
  const gw = await startGateway(t, `routes:${routes}\n`, { keyring })
  const assertion = async (path = '/orders/1', spec: Parameters<typeof makeToken>[1] = {}) => {
    const res = await gw.fetch(path, { headers: { authorization: `Bearer ${await makeToken(keyring, spec, gw.clock.now)}` } })
    if (res.status !== 200) throw new Error(`the gateway answered ${res.status}`)
    return String(up.last().headers['x-portcullis-assertion'])
  }
  const signer: AssertionKey = { kid: keyring.signer.kid, alg, key: keyring.signer.key }
  const forge = (spec: Parameters<typeof signAssertion>[1] = {}) => signAssertion(signer, { aud: up.url, ...spec })
  return { gw, keyring, audience: up.url, jwksUrl: `${gw.url}/.well-known/jwks.json`, assertion, forge }
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

// PYTHONDONTWRITEBYTECODE: importing verify.py leaves no __pycache__ in docs/examples.
const env = (jwksUrl: string, audience: string) => ({
  PATH: process.env['PATH'] ?? '',
  PYTHONDONTWRITEBYTECODE: '1',
  JWKS_URL: jwksUrl,
  AUDIENCE: audience,
})

/** Runs a program to its end without blocking this process, which serves the JWKS it fetches. */
function execute(program: string, args: string[], jwksUrl: string, audience: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { env: env(jwksUrl, audience) })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const python = (at: { jwksUrl: string; audience: string }, token: string) =>
  execute(PYTHON, [join(EXAMPLES, 'verify.py'), token], at.jwksUrl, at.audience)

t.test('docs/upstreams.md shows verify.py and verify.go exactly as they are in docs/examples', async (t) => {
  const page = readFileSync(join(ROOT, 'docs', 'upstreams.md'), 'utf8')
  const blocks = [...page.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map(([, lang, body]) => ({ lang, body }))
  for (const [lang, file] of [
    ['python', 'verify.py'],
    ['go', 'verify.go'],
  ] as const) {
    const program = readFileSync(join(EXAMPLES, file), 'utf8')
    t.ok(
      blocks.some((b) => b.lang === lang && b.body === program),
      `a ${lang} block is ${file}, byte for byte`,
    )
  }
})

t.test('Debian python3-jwt with cryptography is there for /usr/bin/python3', async (t) => {
  const probe = spawnSync(PYTHON, ['-c', 'import jwt, cryptography; print(jwt.__version__)'], { encoding: 'utf8' })
  t.equal(probe.status, 0, `apt-get install python3-jwt python3-cryptography (scripts/test-deps.sh does)\n${probe.stderr}`)
})

for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
  t.test(`verify.py accepts the gateway's ${alg} assertion and prints its claims; it refuses an access token from the same key`, async (t) => {
    const at = await gatewayWith(t, alg)
    const ok = await python(
      at,
      await at.assertion('/orders/1', { sub: 'u-42', sid: 's-9', roles: ['user', 'admin'], extra: { email: 'a@example.com' } }),
    )
    t.equal(ok.code, 0, ok.stderr)
    t.match(JSON.parse(ok.stdout || '{}'), {
      iss: 'portcullis',
      aud: at.audience,
      sub: 'u-42',
      sid: 's-9',
      roles: ['user', 'admin'],
      email: 'a@example.com',
    })
    const accessToken = await python(at, await makeToken(at.keyring, { aud: at.audience }))
    t.equal(accessToken.code, 1)
    t.match(accessToken.stderr, /refused: typ is 'JWT'/)
  })
}

t.test('verify.py refuses what an upstream must refuse', async (t) => {
  const at = await gatewayWith(t, 'ES256')
  const now = Math.floor(Date.now() / 1000)
  const foreign = await makeKey('ES256', 'never-published')
  // Made by the gateway ten minutes ago (its clock), so expired now.
  at.gw.clock.now -= 600_000
  const old = await at.assertion('/orders/2')
  at.gw.clock.now += 600_000
  const cases: [string, string, RegExp][] = [
    ["the gateway's assertion for another route's audience", await at.assertion('/billing/1'), /Invalid audience/],
    ["the gateway's assertion, expired", old, /expired/],
    ['another issuer', await at.forge({ iss: 'someone-else' }), /Invalid issuer/],
    ['a typ with an application/ prefix', await at.forge({ header: { typ: `application/${TYP}` } }), /typ is 'application\//],
    [
      'alg none',
      unsignedToken(
        { iss: 'portcullis', aud: at.audience, sub: 'u', sid: 's', roles: [], iat: now, exp: now + 60 },
        { alg: 'none', typ: TYP, kid: at.keyring.signer.kid },
      ),
      /alg value is not allowed/,
    ],
    ['HS256 under the published kid', await hs256(at), /alg value is not allowed/],
    [
      'an unknown kid',
      await signAssertion({ kid: foreign.kid, alg: 'ES256', key: foreign.privateKey }, { aud: at.audience }),
      /no key 'never-published-/,
    ],
    ['no sid', await at.forge({ omit: ['sid'] }), /"sid"/],
    ['garbage', 'not.a.token', /refused: /],
  ]
  for (const [name, token, why] of cases) {
    const run = await python(at, token)
    t.equal(run.code, 1, `${name}: refused`)
    t.match(run.stderr, why, `${name}: says why`)
  }
})

/** An assertion in every way but its signature: HS256 keyed with a secret, under the gateway's kid. */
function hs256(at: { keyring: { signer: { kid: string } }; audience: string }): Promise<string> {
  const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef')
  return signAssertion({ kid: at.keyring.signer.kid, alg: 'HS256', key: secret }, { aud: at.audience })
}

t.test('verify.py exits 2 when the JWKS cannot be had', async (t) => {
  const at = await gatewayWith(t, 'ES256')
  const run = await python({ jwksUrl: 'http://127.0.0.1:1/.well-known/jwks.json', audience: at.audience }, await at.assertion())
  t.equal(run.code, 2, run.stderr)
  t.match(run.stderr, /^JWKS: /)
})

t.test('verify_assertion in a long-lived process fetches the JWKS again for a new kid, at most every 5 s', async (t) => {
  const first = await makeKey('ES256', 'gw')
  const jwks = await serveJwks(t, [first.jwk])
  const driver = `
import sys
sys.path.insert(0, ${JSON.stringify(EXAMPLES)})
import jwt
from verify import verify_assertion
for line in sys.stdin:
    try:
        print("ok", verify_assertion(line.strip())["sub"], flush=True)
    except jwt.PyJWTError as err:
        print("refused", err, flush=True)
`
  const child = spawn(PYTHON, ['-c', driver], { env: env(jwks.url, ORDERS) })
  t.teardown(() => child.kill())
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const ask = async (token: string) => {
    child.stdin.write(`${token}\n`)
    return String((await lines.next()).value)
  }
  const as = (k: Awaited<ReturnType<typeof makeKey>>) => signAssertion({ kid: k.kid, alg: k.alg, key: k.privateKey })
  t.equal(await ask(await as(first)), 'ok u-alice')
  t.equal(jwks.hits(), 1)
  const next = await makeKey('ES256', 'gw-next')
  jwks.publish([first.jwk, next.jwk])
  t.equal(await ask(await as(next)), 'ok u-alice', 'the key published since is found')
  t.equal(jwks.hits(), 2)
  const unknown = await makeKey('ES256', 'never-published')
  t.match(await ask(await as(unknown)), /^refused no key/)
  t.match(await ask(await as(unknown)), /^refused no key/)
  t.equal(jwks.hits(), 2, 'no fetch within 5 s of the last one')
})

/**
 * verify.go built as its comment says (go mod init, go mod tidy, go build), or why it cannot be
 * here: no go, a go older than 1.21, or modules that cannot be fetched. A build error is not
 * such a reason: the test reports it as a failure.
 */
function buildGoExample(): { missing: string } | { binary: string; dir: string; build: { status: number | null; stderr: string } } {
  const version = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' })
  if (version.error || version.status !== 0) return { missing: 'Go is not installed' }
  const [, minor] = /^go1\.(\d+)/.exec(version.stdout.trim()) ?? []
  if (Number(minor) < 21) return { missing: `${version.stdout.trim()} is older than the 1.21 that jwt/v5 and keyfunc/v3 need` }
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-verify-go-'))
  copyFileSync(join(EXAMPLES, 'verify.go'), join(dir, 'verify.go'))
  const go = (...args: string[]) => spawnSync('go', args, { cwd: dir, encoding: 'utf8', timeout: 300_000 })
  go('mod', 'init', 'example.com/verify')
  const tidy = go('mod', 'tidy')
  if (tidy.status !== 0) return { missing: `the Go modules could not be fetched (${tidy.stderr.trim().split('\n').pop()})` }
  return { dir, binary: join(dir, 'verify'), build: go('build', '-o', 'verify', '.') }
}

const goExample = buildGoExample()
// No skipped test: where Go cannot build the example, the run says so and there is no such
// test (CI has no Go: Debian's is too old for the libraries, and the module proxy is out of reach).
if ('missing' in goExample) t.comment(`verify.go not built here: ${goExample.missing}`)
else
  t.test('verify.go builds, accepts an assertion and refuses an access token or another audience', async (t) => {
    t.teardown(() => rmSync(goExample.dir, { recursive: true, force: true }))
    t.equal(goExample.build.status, 0, goExample.build.stderr)
    const at = await gatewayWith(t, 'ES256')
    const run = (token: string) => execute(goExample.binary, [token], at.jwksUrl, at.audience)
    const ok = await run(await at.assertion('/orders/1', { sid: 's-9' }))
    t.equal(ok.code, 0, ok.stderr)
    t.match(JSON.parse(ok.stdout || '{}'), { sub: 'u-alice', sid: 's-9', roles: ['user'] })
    t.equal((await run(await makeToken(at.keyring, { aud: at.audience }))).code, 1, 'an access token')
    t.equal((await run(await at.assertion('/billing/1'))).code, 1, 'an assertion for billing')
  })
