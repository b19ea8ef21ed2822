import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watchConfig } from '../../src/ops/watch.js'
import { send } from '../helpers/http.js'
import { LISTEN, replaceByRename, startRunning, type Running } from '../helpers/running.js'
import { startUpstream } from '../helpers/upstream.js'

const routes = (up: string, names: string[]) =>
  LISTEN + 'routes:\n' + names.map((n) => `  - { name: ${n}, prefix: /${n}, upstream: "${up}", auth: none }\n`).join('')

/** Wires the file watcher to reload exactly as `portcullis start` does. */
function watch(t: { teardown(fn: () => unknown): void }, run: Running): void {
  const stop = watchConfig(run.file, () => void run.gw.reload(), run.gw.logger)
  t.teardown(stop)
}

/** Milliseconds until `path` answers `status`, polling every 25 ms for at most 5 s. */
async function timeUntil(url: string, path: string, status: number): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < 200; i++) {
    if ((await send(url, path)).status === status) return performance.now() - start
    await new Promise((r) => setTimeout(r, 25))
  }
  return Infinity
}

const reloads = (run: Running) => run.logs().filter((l) => l['msg'] === 'config reloaded').length

// The watcher's first digest is taken asynchronously: let it settle before editing.
const settle = () => new Promise((r) => setTimeout(r, 100))

t.test('a rewritten config file takes effect within about a second', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  watch(t, run)
  await settle()
  t.equal((await send(run.gw.url, '/b/x')).status, 404)
  await writeFile(run.file, routes(up.url, ['a', 'b']))
  const ms = await timeUntil(run.gw.url, '/b/x', 200)
  t.ok(ms < 1500, `the new route answered after ${Math.round(ms)} ms`)
  t.equal((await send(run.gw.url, '/a/x')).status, 200, 'the routes kept still answer')
  t.equal(up.last().url, '/a/x')
})

t.test('a file replaced by rename, as editors save, is picked up', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  watch(t, run)
  await settle()
  await replaceByRename(run.file, routes(up.url, ['b']))
  const ms = await timeUntil(run.gw.url, '/b/x', 200)
  t.ok(ms < 1500, `the new route answered after ${Math.round(ms)} ms`)
  t.equal((await send(run.gw.url, '/a/x')).status, 404, 'the removed route is gone')
  // The watch survives the swapped inode: a second save is seen too.
  await replaceByRename(run.file, routes(up.url, ['c']))
  t.ok((await timeUntil(run.gw.url, '/c/x', 200)) < 1500)
})

t.test('a Kubernetes ConfigMap update (the ..data symlink swap) is picked up', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']), { configMap: true })
  watch(t, run)
  await settle()
  await run.configMapUpdate(routes(up.url, ['b']))
  const ms = await timeUntil(run.gw.url, '/b/x', 200)
  t.ok(ms < 1500, `the new route answered after ${Math.round(ms)} ms`)
  await run.configMapUpdate(routes(up.url, ['c']))
  t.ok((await timeUntil(run.gw.url, '/c/x', 200)) < 1500, 'and the next update too')
})

t.test('a config symlinked from another directory is reloaded when the file it points to changes', async (t) => {
  const up = await startUpstream(t)
  const elsewhere = await mkdtemp(join(tmpdir(), 'portcullis-config-'))
  t.teardown(() => rm(elsewhere, { recursive: true, force: true }))
  await writeFile(join(elsewhere, 'real.yaml'), routes(up.url, ['a']))
  const run = await startRunning(t, routes(up.url, ['a']), { symlinkTo: join(elsewhere, 'real.yaml') })
  watch(t, run)
  await settle()
  await writeFile(join(elsewhere, 'real.yaml'), routes(up.url, ['b']))
  t.ok((await timeUntil(run.gw.url, '/b/x', 200)) < 1500, 'an edit in place of the target is seen')
})

t.test('saving the same content again does not reload', async (t) => {
  const up = await startUpstream(t)
  const text = routes(up.url, ['a'])
  const run = await startRunning(t, text)
  watch(t, run)
  await settle()
  await writeFile(run.file, text)
  await replaceByRename(run.file, text)
  await new Promise((r) => setTimeout(r, 600))
  t.equal(reloads(run), 0)
})

t.test('an invalid file is logged with every problem and the last good config keeps serving', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  watch(t, run)
  await settle()
  const bad =
    LISTEN + `routes:\n  - { name: a, prefix: nope, upstream: "${up.url}" }\n  - { name: b, prefix: /b, upstream: ftp://x, timeout: soon }\n`
  await writeFile(run.file, bad)
  const line = await run.logged((l) => l['msg'] === 'config reload rejected; still serving the previous config')
  const problems = line['problems'] as string[]
  t.equal(line['level'], 50, 'logged as an error')
  t.match(problems, [
    /gateway\.yaml:3:\d+ routes\[0\]\.prefix: /,
    /gateway\.yaml:4:\d+ routes\[1\]\.upstream: /,
    /gateway\.yaml:4:\d+ routes\[1\]\.timeout: /,
  ])
  t.equal(problems.length, 3, 'every problem, not just the first')
  t.equal((await send(run.gw.url, '/a/x')).status, 200, 'the previous config still serves')
  t.equal((await run.gw.reload()).ok, false, 'and a reload by hand says so')

  await writeFile(run.file, routes(up.url, ['a', 'b']))
  t.ok((await timeUntil(run.gw.url, '/b/x', 200)) < 1500, 'a corrected file is then taken')
})

t.test('an empty file, as seen halfway through a non-atomic write, is refused on reload', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  await writeFile(run.file, '# nothing yet\n')
  const result = await run.gw.reload()
  t.same(result, {
    ok: false,
    problems: [`${run.file} is empty: a reload takes every setting from the file, so an empty one (perhaps caught while being written) is refused`],
  })
  t.equal((await send(run.gw.url, '/a/x')).status, 200, 'the routes are not dropped')
})

t.test('a burst of reloads ends on the last file written', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  const results: Promise<unknown>[] = []
  for (const name of ['b', 'c', 'd', 'e']) {
    await replaceByRename(run.file, routes(up.url, [name]))
    results.push(run.gw.reload())
  }
  await Promise.all(results)
  t.same(
    run.gw.config().routes.map((r) => r.name),
    ['e'],
  )
  t.equal((await send(run.gw.url, '/e/x')).status, 200)
  t.equal((await send(run.gw.url, '/d/x')).status, 404)
})

t.test('static users that cannot sign in are refused with their position; the old config stays', async (t) => {
  const run = await startRunning(t, LISTEN)
  const bad = LISTEN + 'auth:\n  identity:\n    - type: static\n      users:\n        - { username: eve, passwordHash: not-a-hash, roles: ["a,b"] }\n'
  await writeFile(run.file, bad)
  const result = await run.gw.reload()
  t.equal(result.ok, false)
  if (!result.ok) {
    t.match(result.problems, [
      /gateway\.yaml:6:\d+ auth\.identity\[0\]\.users\[0\]\.passwordHash: not a hash/,
      /gateway\.yaml:6:\d+ auth\.identity\[0\]\.users\[0\]\.roles\[0\]: /,
    ])
  }
  t.equal((await send(run.gw.url, '/healthz')).status, 200)
  t.equal(run.gw.server.current?.id, 1, 'no generation was built from it')
})

t.test('settings that need a restart are reported in the log, the rest applies', async (t) => {
  const up = await startUpstream(t)
  const run = await startRunning(t, routes(up.url, ['a']))
  const next = routes(up.url, ['a', 'b'])
    .replace('port: 0', 'port: 1')
    .replace('shutdownTimeout: 2s', 'shutdownTimeout: 2s, workers: 2, maxHeaderSize: 32768, logLevel: warn')
    .concat('store: { type: redis, url: "redis://127.0.0.1:1/0" }\n')
    .concat('auth: { accessTokenTtl: 1h, keys: { algorithm: HS256, signing: [{ kid: k1, secret: "0123456789abcdef0123456789abcdef" }] } }\n')
  await writeFile(run.file, next)
  const result = await run.gw.reload()
  t.equal(result.ok, true)
  const settings = run
    .logs()
    .filter((l) => l['msg'] === 'this setting only takes effect after a restart')
    .map((l) => l['setting'])
  t.same(settings.sort(), ['auth.accessTokenTtl', 'server.maxHeaderSize', 'server.port', 'server.workers', 'store'])
  t.equal((await send(run.gw.url, '/b/x')).status, 200, 'the live settings took effect')
  const applied = run.gw.config()
  t.equal(applied.store.type, 'memory', 'the running store is kept')
  t.equal(applied.server.port, 0)
  t.equal(applied.auth.accessTokenTtl, 600_000, 'token lifetimes stay with the store they were sized for')
  t.equal(applied.auth.keys?.algorithm, 'HS256', 'keys reload live')
  t.equal(run.gw.logger.level, 'warn', 'the log level reloads live')

  // Still not applied at the next reload, so still reported.
  await run.gw.reload()
  t.equal(run.logs().filter((l) => l['setting'] === 'server.port').length, 2)
})
