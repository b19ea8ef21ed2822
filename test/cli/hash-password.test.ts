import t from 'tap'
import { PassThrough } from 'node:stream'
import { runHashPassword } from '../../src/cli/hash-password.js'
import { MAX_PASSWORD_BYTES, verifyPassword } from '../../src/auth/passwords.js'

/** Real streams around runHashPassword; `tty` makes stdin look like a terminal. */
function harness(options: { tty?: boolean } = {}) {
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?: (on: boolean) => void }
  const raw: boolean[] = []
  if (options.tty === true) {
    stdin.isTTY = true
    stdin.setRawMode = (on) => void raw.push(on)
  }
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
  stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
  return {
    stdin,
    raw,
    run: () => runHashPassword({ stdin, stdout, stderr }),
    out: () => out,
    err: () => err,
    lastLine: () => out.trimEnd().split('\n').at(-1) ?? '',
  }
}

t.test('a piped password is hashed and printed as the last line', async (t) => {
  const io = harness()
  io.stdin.end('s3cret pass\n')
  t.equal(await io.run(), 0)
  t.ok(io.out().endsWith('\n'))
  t.match(io.lastLine(), /^\$argon2id\$/)
  t.equal(await verifyPassword(io.lastLine(), 's3cret pass'), true)
  t.equal(io.err(), '')
})

t.test('only the first line is read and a CRLF ending is removed', async (t) => {
  const io = harness()
  io.stdin.end('first\r\nsecond\n')
  t.equal(await io.run(), 0)
  t.equal(await verifyPassword(io.lastLine(), 'first'), true)
})

t.test('input without a final newline is the password', async (t) => {
  const io = harness()
  io.stdin.end('no-newline')
  t.equal(await io.run(), 0)
  t.equal(await verifyPassword(io.lastLine(), 'no-newline'), true)
})

t.test('a line split across chunks is read whole, spaces and unicode kept', async (t) => {
  const io = harness()
  const done = io.run()
  const bytes = Buffer.from(' pässwörd \n')
  io.stdin.write(bytes.subarray(0, 3)) // splits the "ä"
  io.stdin.write(bytes.subarray(3))
  t.equal(await done, 0)
  t.equal(await verifyPassword(io.lastLine(), ' pässwörd '), true)
})

t.test('an empty password is refused with exit code 1', async (t) => {
  for (const input of ['\n', '', '\r\n']) {
    const io = harness()
    io.stdin.end(input)
    t.equal(await io.run(), 1, JSON.stringify(input))
    t.equal(io.out(), '', 'nothing on stdout')
    t.match(io.err(), /password is empty/)
  }
})

t.test('an over-long password is refused with exit code 1', async (t) => {
  const io = harness()
  io.stdin.end('x'.repeat(MAX_PASSWORD_BYTES + 1) + '\n')
  t.equal(await io.run(), 1)
  t.equal(io.out(), '')
  t.match(io.err(), new RegExp(`longer than ${MAX_PASSWORD_BYTES} bytes`))
})

t.test('a password of exactly the limit is accepted', async (t) => {
  const io = harness()
  io.stdin.end('y'.repeat(MAX_PASSWORD_BYTES) + '\r\n')
  t.equal(await io.run(), 0)
  t.equal(await verifyPassword(io.lastLine(), 'y'.repeat(MAX_PASSWORD_BYTES)), true)
})

t.test('an endless line is refused without waiting for its end', async (t) => {
  const io = harness()
  const done = io.run()
  io.stdin.write('z'.repeat(64 * 1024)) // no newline, and the stream stays open
  t.equal(await done, 1)
  t.match(io.err(), /longer than/)
})

t.test('on a terminal it prompts twice without echo and restores the terminal', async (t) => {
  const io = harness({ tty: true })
  const done = io.run()
  io.stdin.write('sec')
  io.stdin.write('x\u007fret\r') // a typo fixed with backspace
  await new Promise((resolve) => setImmediate(resolve))
  io.stdin.write('secret\r')
  t.equal(await done, 0)
  t.equal(await verifyPassword(io.lastLine(), 'secret'), true)
  t.equal(io.err(), 'Password: \nRepeat password: \n', 'prompts only, no echo')
  t.notMatch(io.out(), 'secret')
  t.same(io.raw, [true, false, true, false], 'raw mode switched off after each prompt')
})

t.test('on a terminal a mismatched repeat is refused', async (t) => {
  const io = harness({ tty: true })
  const done = io.run()
  io.stdin.write('one\r')
  await new Promise((resolve) => setImmediate(resolve))
  io.stdin.write('two\r')
  t.equal(await done, 1)
  t.match(io.err(), /do not match/)
  t.equal(io.out(), '')
})

t.test('on a terminal Ctrl-C aborts with 130', async (t) => {
  const io = harness({ tty: true })
  const done = io.run()
  io.stdin.write('sec\u0003')
  t.equal(await done, 130)
  t.equal(io.out(), '')
  t.same(io.raw, [true, false])
})

t.test('on a terminal an empty password is refused without asking twice', async (t) => {
  const io = harness({ tty: true })
  const done = io.run()
  io.stdin.write('\r')
  t.equal(await done, 1)
  t.match(io.err(), /^Password: \nhash-password: the password is empty\n$/)
})
