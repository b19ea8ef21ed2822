/**
 * The package as a user gets it: `npm pack`, `npm install <tarball>` into an empty project,
 * then `npx portcullis start`. The install takes only `dependencies`, so anything the gateway
 * still needed from a devDependency at run time would fail here.
 */
import t, { type Test } from 'tap'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildCli, ROOT } from '../helpers/cli.js'
import { copyCheckout, npmEnv, QUIET, run, startThrough, tempDir } from '../helpers/checkout.js'
import { startUpstream } from '../helpers/upstream.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string }

// Packing, and installing the dependencies from npm's cache (or the registry), take a while.
t.setTimeout(300_000)

/** `npm pack` of a checkout whose dist/ is the compiled tree every CLI test shares (`prepare` would compile it once more). */
async function packCheckout(t: Test): Promise<{ tarball: string; files: string[] }> {
  const checkout = await copyCheckout(t)
  cpSync(buildCli(), join(checkout, 'dist'), { recursive: true })
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', checkout, ...QUIET], { cwd: checkout, env: npmEnv })
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[]
  return { tarball: join(checkout, info!.filename), files: info!.files.map((f) => f.path) }
}

t.test('the packed tarball installs into an empty project, and npx portcullis starts, serves and stops with exit 0', async (t) => {
  const { tarball, files } = await packCheckout(t)
  t.ok(
    files.includes('dist/cli.js') && files.includes('gateway.yaml') && files.includes('config/gateway.schema.json'),
    'the CLI, demo config and JSON Schema ship',
  )
  t.ok(files.includes('client/signin.js') && files.includes('client/portcullis-fetch.js'), 'the browser scripts the gateway serves ship')
  t.same(
    files.filter((f) => /^(src|test|bench|scripts|docs)\//.test(f)),
    [],
    'sources, tests and docs stay out',
  )

  const project = tempDir(t, 'project')
  writeFileSync(join(project, 'package.json'), '{ "private": true }\n')
  await run('npm', ['install', tarball, ...QUIET], { cwd: project, env: npmEnv, timeout: 240_000 })

  // --no-install: should the local bin be missing, fail rather than fetch "portcullis" from the registry.
  const version = await run('npx', ['--no-install', 'portcullis', '--version'], { cwd: project, env: npmEnv })
  t.equal(version.stdout, `${pkg.version}\n`, 'the installed CLI reports its version')
  const imported = `console.log(typeof (await import('${pkg.name}/client')).createAuthFetch)`
  const client = await run(process.execPath, ['--input-type=module', '-e', imported], { cwd: project, env: npmEnv })
  t.equal(client.stdout, 'function\n', `the client bundle imports as ${pkg.name}/client`)

  const upstream = await startUpstream(t)
  writeFileSync(
    join(project, 'gateway.yaml'),
    [
      'server: { host: 127.0.0.1, port: 0 }',
      'auth: { signInPage: true, cookies: { secure: false } }',
      'routes:',
      `  - { name: open, prefix: /open, upstream: "${upstream.url}", auth: none }`,
      '',
    ].join('\n'),
  )
  const gateway = await startThrough(t, 'npx', ['--no-install', 'portcullis', 'start', '--config', 'gateway.yaml'], { cwd: project })

  t.equal((await fetch(`${gateway.base}/healthz`)).status, 200, '/healthz answers 200')
  t.equal((await fetch(`${gateway.base}/open/hello`)).status, 200, 'a request reaches the upstream')
  t.equal(upstream.last().url, '/open/hello')
  const script = await fetch(`${gateway.base}/auth/signin.js`)
  t.equal(script.status, 200, "the sign-in page's script is served from the installed client/")
  t.match(await script.text(), /safeReturnPath/)

  // Signalled as a supervisor signals the process it runs; npx passes its exit code on.
  process.kill(gateway.pid, 'SIGTERM')
  t.equal(await gateway.exited, 0, 'SIGTERM: the gateway drains and exits 0')
  t.match(gateway.stdout(), /"msg":"shut down"/)
})
