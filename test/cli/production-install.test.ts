/**
 * `npm ci --omit=dev` on a checkout: the production-only install. It has no TypeScript, so it
 * cannot compile dist/; it must still succeed, say how to build, and run a dist/ built before.
 */
import t from 'tap'
import { cpSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { buildCli } from '../helpers/cli.js'
import { copyCheckout, npmEnv, QUIET, run, startThrough } from '../helpers/checkout.js'

t.setTimeout(300_000)

const RECIPE = 'npm ci && npm run build && npm prune --omit=dev'

t.test('npm ci --omit=dev on a checkout succeeds without TypeScript, and npm start says how to build', async (t) => {
  const checkout = await copyCheckout(t)
  const install = await run('npm', ['ci', '--omit=dev', ...QUIET], { cwd: checkout, env: npmEnv, timeout: 240_000 })
  t.notOk(existsSync(join(checkout, 'node_modules', 'typescript')), 'no devDependency is installed')
  t.match(install.stderr, `dist/ was not built and \`npm start\` cannot run.\n  Build first, then drop the build tools: ${RECIPE}`)

  const start = await run('npm', ['start', '--silent'], { cwd: checkout, env: npmEnv }).then(
    (ok) => ({ code: 0, stderr: ok.stderr }),
    (err: { code: number; stderr: string }) => err,
  )
  t.equal(start.code, 1, 'npm start fails')
  t.match(start.stderr, `dist/ is not built, so there is nothing to start.\n  In a checkout: npm install (it compiles), or for production: ${RECIPE}`)
  t.notMatch(start.stderr, /ERR_MODULE_NOT_FOUND|\n\s+at /, 'with advice, not a stack trace')

  t.test('with a dist/ built elsewhere, npm start runs the shipped gateway.yaml on production dependencies only', async (t) => {
    cpSync(buildCli(), join(checkout, 'dist'), { recursive: true })
    const again = await run('node', ['scripts/prepare.mjs'], { cwd: checkout, env: npmEnv })
    t.match(again.stderr, 'keeping the dist/ that is already built', 'prepare keeps it')
    const env = { ...npmEnv, HOST: '127.0.0.1', PORT: '0', DEMO_UPSTREAM_PORT: '0' }
    const gateway = await startThrough(t, 'npm', ['start', '--silent'], { cwd: checkout, env })
    t.equal((await fetch(`${gateway.base}/healthz`)).status, 200)
    process.kill(gateway.pid, 'SIGTERM')
    t.equal(await gateway.exited, 0, 'SIGTERM: exit 0, passed on by npm')
  })
})
