/**
 * `portcullis hash-password`: reads one password line from stdin and prints a hash that
 * `passwordHash` accepts as the last line of stdout. Piped (`echo secret | portcullis
 * hash-password`) it reads the first line; on a terminal it prompts twice on stderr
 * without echoing, so the hash never lands in shell history or over a shoulder.
 */
import { StringDecoder } from 'node:string_decoder'
import { MAX_PASSWORD_BYTES, hashPassword } from '../auth/passwords.js'

export interface CliIo {
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

interface RawTty {
  isTTY?: boolean
  setRawMode?: (mode: boolean) => unknown
}

/** Runs the command; resolves the process exit code. */
export async function runHashPassword(io: CliIo): Promise<number> {
  const fail = (message: string) => {
    io.stderr.write(`hash-password: ${message}\n`)
    return 1
  }
  const tty = io.stdin as NodeJS.ReadableStream & RawTty
  let password: string
  if (tty.isTTY === true && typeof tty.setRawMode === 'function') {
    const first = await promptHidden(io, 'Password: ')
    if (first === null) return 130 // Ctrl-C, as a shell reports SIGINT
    if (first !== '' && fitsBytes(first)) {
      const again = await promptHidden(io, 'Repeat password: ')
      if (again === null) return 130
      if (again !== first) return fail('the passwords do not match')
    }
    password = first
  } else {
    const line = await readLine(io.stdin, MAX_PASSWORD_BYTES)
    if (line === null) return fail(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`)
    password = line
  }
  if (password === '') return fail('the password is empty')
  if (!fitsBytes(password)) return fail(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`)
  io.stdout.write(`${await hashPassword(password)}\n`)
  return 0
}

function fitsBytes(password: string): boolean {
  return Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES
}

/**
 * The first line of a stream without its "\n" or "\r\n" (the whole input when it has
 * no newline); null once it runs past `max` bytes, so an endless pipe is not buffered.
 */
function readLine(input: NodeJS.ReadableStream, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (line: string | null) => {
      input.off('data', onData)
      input.off('end', onEnd)
      input.off('error', onError)
      input.pause()
      resolve(line)
    }
    const done = () => {
      let buf = Buffer.concat(chunks)
      if (buf.at(-1) === 0x0d) buf = buf.subarray(0, -1)
      finish(buf.length > max ? null : buf.toString('utf8'))
    }
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
      const nl = buf.indexOf(0x0a)
      const part = nl === -1 ? buf : buf.subarray(0, nl)
      size += part.length
      if (size > max + 1) return finish(null) // +1: room for the "\r" of a "\r\n"
      chunks.push(part)
      if (nl !== -1) done()
    }
    const onEnd = () => done()
    const onError = (err: Error) => {
      input.off('data', onData)
      input.off('end', onEnd)
      reject(err)
    }
    input.on('data', onData)
    input.on('end', onEnd)
    input.on('error', onError)
    input.resume()
  })
}

/** Reads a line from a terminal in raw mode, echoing nothing; null on Ctrl-C. */
function promptHidden(io: CliIo, prompt: string): Promise<string | null> {
  const tty = io.stdin as NodeJS.ReadableStream & Required<RawTty>
  io.stderr.write(prompt)
  tty.setRawMode(true)
  const decoder = new StringDecoder('utf8')
  let typed = ''
  return new Promise((resolve, reject) => {
    const finish = (result: string | null) => {
      tty.off('data', onData)
      tty.off('error', onError)
      tty.setRawMode(false)
      tty.pause()
      io.stderr.write('\n')
      resolve(result)
    }
    const onData = (chunk: Buffer | string) => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk)
      for (const ch of text) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(typed)
        if (ch === '\u0003') return finish(null)
        if (ch === '\u007f' || ch === '\b') typed = Array.from(typed).slice(0, -1).join('')
        else typed += ch
      }
    }
    const onError = (err: Error) => {
      tty.off('data', onData)
      tty.setRawMode(false)
      reject(err)
    }
    tty.on('data', onData)
    tty.on('error', onError)
    tty.resume()
  })
}
