import t from 'tap'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { verifyPassword } from '../../src/auth/passwords.js'
import { loadKeyring } from '../../src/auth/keys.js'
import { createVerifier } from '../../src/auth/verify.js'
import { loadGatewayConfig } from '../../src/config/gateway.js'
import { buildCli, ROOT, runCli } from '../helpers/cli.js'
import { makeToken } from '../helpers/tokens.js'

t.before(() => void buildCli())

t.test('--help explains every command and exits 0', async (t) => {
  const main = await runCli(['--help'])
  t.equal(main.code, 0)
  t.match(main.stdout, /Usage: portcullis <command>/)
  for (const command of ['start', 'check-config', 'hash-password', 'keys generate']) {
    t.match(main.stdout, command)
    const own = await runCli([...command.split(' '), '--help'])
    t.equal(own.code, 0, `${command} --help exits 0`)
    t.match(own.stdout, `Usage: portcullis ${command}`)
  }
})

t.test('a mistaken command line gets a clear message and exit code 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /Usage: portcullis <command>/],
    [['stat'], /unknown command "stat"/],
    [['start', '--conifg', 'x.yaml'], /Unknown option '--conifg'/],
    [['check-config', 'extra'], /Unexpected argument 'extra'/],
    [['keys'], /Usage: portcullis keys generate/],
    [['keys', 'rotate'], /Usage: portcullis keys generate/],
    [['keys', 'generate', '--alg', 'HS256'], /unsupported --alg HS256/],
    [['keys', 'generate', '--bits', '4096'], /Unknown option '--bits'/],
    [['hash-password', '--rounds', '3'], /Unknown option '--rounds'/],
  ]
  for (const [args, message] of cases) {
    const run = await runCli(args)
    t.equal(run.code, 2, `portcullis ${args.join(' ')} exits 2`)
    t.match(run.stderr, message, `portcullis ${args.join(' ')} says what is wrong`)
    t.notMatch(run.stderr, /\n\s+at /, 'and shows no stack trace')
  }
})

t.test('check-config prints ok for a valid file, found by flag, $PORTCULLIS_CONFIG or ./gateway.yaml', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': 'routes: []\n', 'other.yaml': 'server: { port: 9000 }\n' })
  const byFlag = await runCli(['check-config', '--config', join(dir, 'other.yaml')])
  t.same([byFlag.code, byFlag.stdout], [0, 'ok\n'])
  const byEnv = await runCli(['check-config'], { env: { PORTCULLIS_CONFIG: join(dir, 'other.yaml') } })
  t.same([byEnv.code, byEnv.stdout], [0, 'ok\n'])
  const byCwd = await runCli(['check-config'], { cwd: dir })
  t.same([byCwd.code, byCwd.stdout], [0, 'ok\n'])
  t.same([(await runCli(['check-config'], { cwd: ROOT })).code], [0], 'the shipped gateway.yaml is valid')
})

t.test('check-config warns on stderr about route prefixes that differ only by case, and still exits 0 with ok', async (t) => {
  const dir = t.testdir({
    'gateway.yaml': [
      'routes:',
      '  - { name: svc, prefix: /svc, upstream: "http://u" }',
      '  - { name: admin, prefix: /Svc, upstream: "http://u" }',
      '',
    ].join('\n'),
  })
  const path = join(dir, 'gateway.yaml')
  const run = await runCli(['check-config', '--config', path])
  t.same([run.code, run.stdout], [0, 'ok\n'])
  t.equal(
    run.stderr,
    `warning: ${path}:3:28 routes[1].prefix: differs from routes[0].prefix (/svc) only by case: prefixes match case-sensitively, so each route serves only its own spelling (got "/Svc")\n`,
  )
})

t.test('check-config lists every problem as FILE:LINE:COLUMN path: message and exits 1', async (t) => {
  const dir = t.testdir({
    'schema.yaml': 'server:\n  port: 99999\nroutes:\n  - { name: a, prefix: /a, upstream: "ftp://nope" }\n',
    // Valid to the schema; the key file and the static user fail the checks that follow it.
    'deeper.yaml': [
      'auth:',
      '  keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: missing.pem }] }',
      '  identity:',
      '    - type: static',
      '      users:',
      '        - { username: bob, passwordHash: plain-text-password, roles: [" admin"] }',
      '',
    ].join('\n'),
  })
  const schema = join(dir, 'schema.yaml')
  const first = await runCli(['check-config', '--config', schema])
  t.equal(first.code, 1)
  t.same(first.stdout.trimEnd().split('\n'), [
    `${schema}:2:9 server.port: must be at most 65535 (got 99999)`,
    `${schema}:4:38 routes[0].upstream: must be an http:// or https:// URL without query or fragment (got "ftp://nope")`,
  ])

  const deeper = join(dir, 'deeper.yaml')
  const second = await runCli(['check-config', '--config', deeper])
  t.equal(second.code, 1)
  t.same(second.stdout.trimEnd().split('\n'), [
    `${deeper}:2:66 auth.keys.signing[0].privateKeyFile: cannot read ${join(dir, 'missing.pem')}: ENOENT`,
    `${deeper}:6:42 auth.identity[0].users[0].passwordHash: not a hash made by \`portcullis hash-password\``,
    `${deeper}:6:71 auth.identity[0].users[0].roles[0]: must not contain "," control characters or surrounding spaces`,
  ])

  const missing = await runCli(['check-config', '--config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 1)
  t.equal(missing.stdout, `${join(dir, 'nope.yaml')} does not exist\n`)
})

t.test('hash-password reads a piped line and prints a hash that verifies as the last line', async (t) => {
  const run = await runCli(['hash-password'], { stdin: 'correct horse battery\nignored\n' })
  t.equal(run.code, 0)
  const last = run.stdout.trimEnd().split('\n').at(-1) ?? ''
  t.match(last, /^\$argon2id\$/)
  t.equal(await verifyPassword(last, 'correct horse battery'), true)
  t.equal(await verifyPassword(last, 'ignored'), false)

  const empty = await runCli(['hash-password'], { stdin: '' })
  t.equal(empty.code, 1)
  t.match(empty.stderr, /the password is empty/)
})

for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
  t.test(`keys generate --alg ${alg} writes a PKCS#8 key that auth.keys loads and that signs verifiable tokens`, async (t) => {
    const dir = t.testdir()
    const run = await runCli(['keys', 'generate', '--alg', alg, '--kid', `k-${alg}`, '--out', join(dir, 'keys')])
    t.equal(run.code, 0, run.stderr)
    const path = run.stdout.trim()
    t.equal(path, join(dir, 'keys', `k-${alg}.pem`))
    t.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM')
    t.equal(statSync(path).mode & 0o777, 0o600, 'readable by its owner only')

    const config = join(dir, 'gateway.yaml')
    await writeFile(config, `auth:\n  keys:\n    algorithm: ${alg}\n    signing:\n      - { kid: k-${alg}, privateKeyFile: keys/k-${alg}.pem }\n`)
    t.same(await runCli(['check-config', '--config', config]).then((r) => [r.code, r.stdout]), [0, 'ok\n'])
    const loaded = await loadGatewayConfig(config, {})
    const keyring = await loadKeyring(loaded.auth.keys, alg)
    t.same(
      keyring.jwks.keys.map((k) => [k.kid, k.alg, k.use, 'd' in k]),
      [[`k-${alg}`, alg, 'sig', false]],
    )
    const verify = createVerifier({ keyring, issuer: 'portcullis', audience: 'portcullis', clockTolerance: 0, maxLifetime: 600_000 })
    const claims = await verify(await makeToken(keyring, { sub: 'u-keys' }))
    t.equal(claims.sub, 'u-keys')

    const before = readFileSync(path, 'utf8')
    const again = await runCli(['keys', 'generate', '--alg', alg, '--kid', `k-${alg}`, '--out', join(dir, 'keys')])
    t.equal(again.code, 1, 'an existing key is never overwritten')
    t.equal(
      again.stderr,
      `portcullis keys: ${path} already exists and is never overwritten: choose another --kid, or remove the file first (--if-missing keeps it)\n`,
      'and says how to proceed',
    )
    t.equal(readFileSync(path, 'utf8'), before)
    const init = await runCli(['keys', 'generate', '--alg', alg, '--kid', `k-${alg}`, '--out', join(dir, 'keys'), '--if-missing'])
    t.same([init.code, init.stdout.trim()], [0, path], '--if-missing keeps it and prints its path')
    t.equal(readFileSync(path, 'utf8'), before)
  })
}

t.test('keys generate defaults to ES256, a dated kid and ./keys', async (t) => {
  const dir = t.testdir()
  const run = await runCli(['keys', 'generate'], { cwd: dir })
  t.equal(run.code, 0)
  const kid = new Date().toISOString().slice(0, 10)
  t.equal(run.stdout.trim(), join(dir, 'keys', `${kid}.pem`))
  t.match(readFileSync(join(dir, 'keys', `${kid}.pem`), 'utf8'), /BEGIN PRIVATE KEY/)
})

t.test('the built CLI is what package.json runs: bin, npm start and the prepare build', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> }
  t.equal(pkg.bin['portcullis'], 'dist/cli.js')
  t.equal(pkg.scripts['start'], 'node dist/cli.js start')
  t.equal(pkg.scripts['build'], 'tsc -p tsconfig.build.json')
  // prepare builds the same way, where TypeScript is installed (test/cli/production-install.test.ts).
  t.equal(pkg.scripts['prepare'], 'node scripts/prepare.mjs')
  t.match(readFileSync(join(ROOT, 'scripts', 'prepare.mjs'), 'utf8'), "[tsc, '-p', 'tsconfig.build.json']")
  t.match(readFileSync(join(buildCli(), 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'the bin has a shebang')
  // dist/ is made by `npm install` (prepare); where it exists it must run too.
  if (existsSync(join(ROOT, 'dist', 'cli.js'))) {
    const { spawnSync } = await import('node:child_process')
    const out = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' })
    t.equal(out.status, 0, 'node dist/cli.js --help runs')
  }
})
