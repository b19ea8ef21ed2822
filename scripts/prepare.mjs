#!/usr/bin/env node
/**
 * `npm install` / `npm ci` in a checkout (the `prepare` script), and `npm pack`: compiles
 * src/ into dist/ with TypeScript, a devDependency.
 *
 * A production-only install of a checkout (`npm ci --omit=dev`) has no TypeScript, so it
 * cannot compile: rather than fail the whole install (`tsc: not found`), it keeps a dist/
 * built earlier (the recipe `npm ci && npm run build && npm prune --omit=dev`, or a dist/
 * copied from a build stage) or says how to get one. `node scripts/prepare.mjs --check`
 * (`prestart`) stops `npm start` with the same advice instead of a module-not-found trace.
 *
 * Plain JavaScript on purpose: it must run where nothing but the runtime dependencies is installed.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

const root = new URL('../', import.meta.url)
const built = existsSync(new URL('dist/cli.js', root))
const recipe = 'npm ci && npm run build && npm prune --omit=dev'

if (process.argv.includes('--check')) {
  if (!built) {
    process.stderr.write(
      `portcullis: dist/ is not built, so there is nothing to start.\n` +
        `  In a checkout: npm install (it compiles), or for production: ${recipe}\n`,
    )
    process.exit(1)
  }
  process.exit(0)
}

let tsc
try {
  tsc = createRequire(root).resolve('typescript/bin/tsc')
} catch {
  // devDependencies omitted: nothing can compile here.
}

if (tsc === undefined) {
  process.stderr.write(
    built
      ? 'portcullis: TypeScript is not installed (a production install); keeping the dist/ that is already built.\n'
      : `portcullis: TypeScript is not installed (a production install), so dist/ was not built and \`npm start\` cannot run.\n` +
          `  Build first, then drop the build tools: ${recipe}\n`,
  )
  process.exit(0)
}

const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
process.exit(run.status ?? 1)
