import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeKey } from '../../src/cli/keys-generate.js'
import { buildCli, spawnCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/redis-process.js'
import { startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'

t.before(() => void buildCli())

/**
 * Every key repeated within one JSON object of `text`, as `key` or `outer.key`.
 * JSON.parse keeps the last of two equal keys without a word, so the keys are read here.
 */
function repeatedKeys(text: string): string[] {
  let i = 0
  const repeated: string[] = []
  const space = () => {
    while (/\s/.test(text[i] ?? '')) i++
  }
  const string = (): string => {
    const start = i
    i++ // opening quote
    while (text[i] !== '"') {
      if (i >= text.length) throw new Error(`unterminated string at ${start}`)
      i += text[i] === '\\' ? 2 : 1
    }
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (where: string): void => {
    space()
    if (text[i] === '{') {
      i++
      const seen = new Set<string>()
      space()
      if (text[i] === '}') return void i++
      for (;;) {
        space()
        const key = string()
        if (seen.has(key)) repeated.push(where + key)
        seen.add(key)
        space()
        i++ // ':'
        value(`${where}${key}.`)
        space()
        if (text[i++] === '}') return
      }
    }
    if (text[i] === '[') {
      i++
      space()
      if (text[i] === ']') return void i++
      for (;;) {
        value(where)
        space()
        if (text[i++] === ']') return
      }
    }
    if (text[i] === '"') return void string()
    while (i < text.length && !/[,}\]\s]/.test(text[i]!)) i++ // number, true, false, null
  }
  value('')
  return repeated
}

t.test('the key reader finds a repeated key that JSON.parse would hide', async (t) => {
  t.same(repeatedKeys('{"level":30,"pid":1,"workers":2,"pid":1,"msg":"x"}'), ['pid'])
  t.same(repeatedKeys('{"a":{"b":1,"b":[{"c":"}\\"","c":2}]},"s":"{\\"a\\":1,\\"a\\":2}"}'), ['a.b', 'a.b.c'])
  t.same(repeatedKeys('{"pid":1,"err":{"pid":2},"list":[1,"pid",{}]}'), [])
})

t.test('no log line of a start with workers, a worker crash and a shutdown repeats a key', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const dir = t.testdir({})
  const key = await writeKey('ES256', 'k1', dir)
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `server: { host: 127.0.0.1, port: 0, workers: 2, shutdownTimeout: 2s }
auth:
  keys: { algorithm: ES256, signing: [{ kid: k1, privateKeyFile: "${key}" }] }
store: { type: redis, url: "${redis.url}" }
routes: [{ name: api, prefix: /api, upstream: "${up.url}" }]
`,
  )
  const child = spawnCli(['start', '--config', file], { ownGroup: true })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
    return exited
  })
  let stdout = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  const lines = () => stdout.split('\n').filter(Boolean)
  const count = (msg: string) => lines().filter((l) => l.includes(`"msg":"${msg}"`)).length

  await waitFor('both workers to listen', async () => count('portcullis listening') === 2, 15_000)
  // A worker that dies makes the primary log it (with the dead worker's pid) and start another.
  const workerPid = (JSON.parse(lines().find((l) => l.includes('"portcullis listening"'))!) as { pid: number }).pid
  process.kill(workerPid, 'SIGKILL')
  await waitFor('a replacement worker to listen', async () => count('portcullis listening') === 3, 15_000)
  process.kill(-child.pid!, 'SIGTERM')
  await exited

  const messages = lines().map((l) => (JSON.parse(l) as { msg: string }).msg)
  for (const msg of ['portcullis primary started', 'worker exited; starting another', 'stopping workers', 'shut down']) {
    t.ok(messages.includes(msg), `the run wrote "${msg}"`)
  }
  const repeats = lines().flatMap((line) => repeatedKeys(line).map((key) => `${key} in ${line}`))
  t.same(repeats, [], 'no line repeats a key')
})
