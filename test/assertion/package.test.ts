/**
 * `@portcullis-gateway/portcullis/assertion` as a service gets it: src/assertion compiled as
 * `npm run build` compiles it, laid out as an installed package under package.json's own
 * `exports`, beside jose and nothing else, and imported by name from plain node.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ORDERS, signAssertion } from '../helpers/assertions.js'
import { ROOT } from '../helpers/cli.js'
import { makeKey } from '../helpers/rogue-keys.js'

interface PackageJson {
  name: string
  type: string
  exports: Record<string, { types: string; default: string }>
}

t.test('the package exports ./assertion with types, and it runs with jose as its only dependency', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson
  const entry = pkg.exports['./assertion']
  t.same(entry, { types: './dist/assertion/index.d.ts', default: './dist/assertion/index.js' })

  // A service of its own (its package.json also keeps node from resolving the name to this checkout).
  const dir = t.testdir({ 'package.json': JSON.stringify({ name: 'orders-service', type: 'module', private: true }) })
  const installed = join(dir, 'node_modules', ...pkg.name.split('/'))
  mkdirSync(installed, { recursive: true })
  writeFileSync(join(installed, 'package.json'), JSON.stringify({ name: pkg.name, type: pkg.type, exports: { './assertion': entry } }))
  // tsconfig.build.json's options, for this folder alone (the whole of src/ takes 10 s to build).
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const flags = [
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2023',
    '--strict',
    '--verbatimModuleSyntax',
    '--skipLibCheck',
  ]
  const build = spawnSync(
    process.execPath,
    [
      tsc,
      join(ROOT, 'src', 'assertion', 'index.ts'),
      '--outDir',
      join(dir, 'build'),
      '--rootDir',
      join(ROOT, 'src'),
      '--declaration',
      '--types',
      'node',
      ...flags,
    ],
    { encoding: 'utf8' },
  )
  t.ok(existsSync(join(dir, 'build', 'assertion', 'index.js')), `compiled\n${build.stdout}${build.stderr}`)
  t.equal(build.status, 0, 'without a type error')
  cpSync(join(dir, 'build', 'assertion'), join(installed, 'dist', 'assertion'), { recursive: true })
  t.ok(existsSync(join(installed, entry!.types)), 'the types file is where exports says')
  symlinkSync(join(ROOT, 'node_modules', 'jose'), join(dir, 'node_modules', 'jose'))

  for (const file of readdirSync(join(installed, 'dist', 'assertion')).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(join(installed, 'dist', 'assertion', file), 'utf8')
    const imports = [...source.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!)
    t.same(
      imports.filter((s) => s !== 'jose' && !/^\.\/[\w-]+\.js$/.test(s)),
      [],
      `${file} imports only jose and its own folder`,
    )
  }

  const key = await makeKey('EdDSA', 'gw')
  const token = await signAssertion({ kid: key.kid, alg: key.alg, key: key.privateKey })
  const program = `
    import { createAssertionVerifier } from '${pkg.name}/assertion'
    const verifier = createAssertionVerifier({ jwks: { keys: [${JSON.stringify(key.jwk)}] }, audience: '${ORDERS}' })
    console.log(JSON.stringify(await verifier.verify(process.argv[1])))
  `
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', program, token], { cwd: dir, encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr)
  t.match(JSON.parse(run.stdout || '{}'), { sub: 'u-alice', aud: ORDERS, roles: ['user'] })
})
