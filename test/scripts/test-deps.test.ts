/**
 * scripts/test-deps.sh, which `npm test` runs first. The machine's own apt-get cannot be
 * pointed at a package that is missing here, so each case runs the script with a PATH of its
 * own: `id` says who we are, and a stand-in apt-get records what it was asked and "installs"
 * redis-server when told to.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/cli.js'

const SCRIPT = join(ROOT, 'scripts', 'test-deps.sh')

function run(env: NodeJS.ProcessEnv) {
  const out = spawnSync('/bin/sh', [SCRIPT], { env, encoding: 'utf8', timeout: 10_000 })
  return { code: out.status, stdout: out.stdout, stderr: out.stderr }
}

/** The stand-in apt-get: appends its arguments to ../apt-calls; `installs` puts a redis-server beside it. */
const APT_GET = (installs: boolean) => `#!/bin/sh
echo "$*" >> "\${0%/*}/../apt-calls"
${installs ? `case "$1" in install) printf '#!/bin/sh\\necho v=7\\n' > "\${0%/*}/redis-server"; /bin/chmod +x "\${0%/*}/redis-server";; esac` : ''}
`

/** A bin folder (the whole PATH) with `env`, an `id` that answers `uid`, and maybe an apt-get. */
function machine(t: Test, opts: { uid: number; aptGet?: 'installs' | 'does-nothing' }) {
  const dir = t.testdir({
    bin: {
      id: `#!/bin/sh\necho ${opts.uid}\n`,
      ...(opts.aptGet && { 'apt-get': APT_GET(opts.aptGet === 'installs') }),
    },
  })
  const bin = join(dir, 'bin')
  for (const name of readdirSync(bin)) chmodSync(join(bin, name), 0o755)
  symlinkSync('/usr/bin/env', join(bin, 'env'))
  const log = join(dir, 'apt-calls')
  return { env: { PATH: bin }, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) }
}

t.test('with redis-server and chromium present it does nothing, at once', (t) => {
  const started = performance.now()
  const out = run(process.env)
  t.equal(out.code, 0, out.stderr)
  t.equal(out.stdout + out.stderr, '', 'prints nothing')
  t.ok(performance.now() - started < 1000, 'no apt-get run')
  t.end()
})

t.test('without root or password-less sudo it names what to install and fails, never skips', (t) => {
  const m = machine(t, { uid: 1000, aptGet: 'does-nothing' })
  const out = run(m.env)
  t.equal(out.code, 1)
  t.match(out.stderr, /npm test needs redis-server and cannot install it: this is not root, and sudo is missing or asks for a password/)
  t.match(out.stderr, /sudo apt-get install -y redis-server/)
  t.same(m.calls(), [], 'apt-get was not tried')
  t.end()
})

t.test('without apt-get it names what to install and fails', (t) => {
  const m = machine(t, { uid: 0 })
  const out = run(m.env)
  t.equal(out.code, 1)
  t.match(out.stderr, /cannot install it: there is no apt-get here/)
  t.match(out.stderr, /sudo apt-get install -y redis-server/)
  t.end()
})

t.test('as root it installs what is missing with apt-get and goes on', (t) => {
  const m = machine(t, { uid: 0, aptGet: 'installs' })
  const out = run(m.env)
  t.equal(out.code, 0, out.stderr)
  t.same(m.calls(), ['update -qq', 'install -y -qq redis-server'])
  t.match(out.stderr, /installing redis-server with apt-get[\s\S]*installed redis-server/)
  t.end()
})

t.test('an install that leaves the program missing fails with the reason', (t) => {
  const m = machine(t, { uid: 0, aptGet: 'does-nothing' })
  const out = run(m.env)
  t.equal(out.code, 1)
  t.same(m.calls(), ['update -qq', 'install -y -qq redis-server'])
  t.match(out.stderr, /redis-server is still not on the PATH after apt-get install/)
  t.end()
})
