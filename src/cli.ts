#!/usr/bin/env node
/**
 * portcullis start | check-config | hash-password | keys generate | keys rotate | version   (SPEC.md "CLI")
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
// Each command imports what it needs when it runs: `--help` or `keys generate` should not
// pay for loading the whole gateway.

const HELP: Record<string, string> = {
  main: `Usage: portcullis <command> [options]

Commands:
  start            run the gateway
  check-config     validate a config file
  hash-password    read a password from stdin, print a hash for passwordHash
  keys generate    write a new signing key (PKCS#8 PEM)
  keys rotate      managed keys: retire them all at once, a new one signs (--now)
  version          print the version (also --version, -v)

Run "portcullis <command> --help" for a command's options.`,
  start: `Usage: portcullis start [--config FILE]

Runs the gateway. FILE defaults to $PORTCULLIS_CONFIG, then ./gateway.yaml.
SIGHUP or a change to FILE reloads it; SIGTERM/SIGINT drain in-flight requests and exit 0.
It runs node with --min-semi-space-size=16 (re-executing itself in place when started
without it); $PORTCULLIS_NODE_FLAGS replaces that list (empty: none), and a flag given to
node itself wins.`,
  'check-config': `Usage: portcullis check-config [--config FILE]

Prints "ok" and exits 0 when FILE is valid (keys included); else prints every problem
as FILE:LINE:COLUMN path: message and exits 1. Warnings (allowed, but probably not meant)
go to stderr as "warning: FILE:LINE:COLUMN path: message"; they do not change the exit code.`,
  'hash-password': `Usage: portcullis hash-password

Reads one password line from stdin and prints an argon2id hash (last line of stdout)
for auth.identity[].users[].passwordHash. Example: echo 'secret' | portcullis hash-password`,
  keys: `Usage: portcullis keys generate [--alg ES256|EdDSA|RS256] [--kid KID] [--out DIR] [--if-missing]
       portcullis keys rotate --now [--config FILE]

Run "portcullis keys generate --help" or "portcullis keys rotate --help" for what each does.`,
  'keys generate': `Usage: portcullis keys generate [--alg ES256|EdDSA|RS256] [--kid KID] [--out DIR] [--if-missing]

Writes DIR/KID.pem (PKCS#8 PEM private key, mode 0600) and prints its path.
Defaults: --alg ES256, --kid today's date, --out ./keys.
An existing key is never overwritten: that is an error, or with --if-missing (for container
init steps) it is left as it is and its path printed.`,
  'keys rotate': `Usage: portcullis keys rotate --now [--config FILE]

For auth.keys.managed on a Redis store, after a suspected key compromise: retires every
managed key in the store at once (out of the JWKS; no instance verifies with them any more)
and makes a new one sign from now. Running instances learn of it within milliseconds. Every
access token signed before is refused (401 invalid_token) and every client refreshes;
sessions survive. Prints the retired kids and the new one. FILE as for start.`,
}

function configPath(flag: string | undefined): string {
  return flag ?? process.env['PORTCULLIS_CONFIG'] ?? 'gateway.yaml'
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    return help('main', command === undefined ? 2 : 0)
  }
  const wantsHelp = rest.includes('--help') || rest.includes('-h')
  try {
    switch (command) {
      case 'start': {
        if (wantsHelp) return help('start')
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } })
        // First, before anything is loaded or started: this may replace the process with one
        // that runs with the gateway's V8 flags (src/cli/node-flags.ts).
        const { applyNodeFlags } = await import('./cli/node-flags.js')
        const flags = applyNodeFlags()
        const { runStart } = await import('./cli/start.js')
        return await runStart(configPath(values.config), flags)
      }
      case 'check-config': {
        if (wantsHelp) return help('check-config')
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } })
        const { checkConfigFile } = await import('./config/gateway.js')
        // Warnings go to stderr: stdout stays exactly "ok" for scripts that compare it.
        const warn = (line: string) => process.stderr.write(`warning: ${line}\n`)
        const problems = await checkConfigFile(configPath(values.config), process.env, warn)
        if (problems.length === 0) {
          process.stdout.write('ok\n')
          return 0
        }
        for (const line of problems) process.stdout.write(line + '\n')
        return 1
      }
      case 'hash-password': {
        if (wantsHelp) return help('hash-password')
        parseArgs({ args: rest, options: {} }) // no options: anything given is a mistake
        const { runHashPassword } = await import('./cli/hash-password.js')
        return await runHashPassword({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
      }
      case 'version':
      case '--version':
      case '-v': {
        if (wantsHelp) return help('main')
        parseArgs({ args: rest, options: {} }) // no options: anything given is a mistake
        const { version } = await import('./version.js')
        process.stdout.write(version() + '\n')
        return 0
      }
      case 'keys': {
        const [sub, ...args] = rest
        if (sub === 'rotate' && wantsHelp) return help('keys rotate')
        if (sub === 'rotate') {
          const { values } = parseArgs({ args, options: { now: { type: 'boolean', default: false }, config: { type: 'string', short: 'c' } } })
          // Only the emergency rotation exists: the schedule rotates on its own.
          if (!values.now) return help('keys', 2)
          const [{ loadGatewayConfig }, { runKeysRotate }] = await Promise.all([import('./config/gateway.js'), import('./cli/keys-rotate.js')])
          process.stdout.write(await runKeysRotate(await loadGatewayConfig(configPath(values.config), process.env)))
          return 0
        }
        if (sub === 'generate' && wantsHelp) return help('keys generate')
        if (sub !== 'generate') return help('keys', wantsHelp ? 0 : 2)
        const { values } = parseArgs({
          args,
          options: {
            alg: { type: 'string', default: 'ES256' },
            kid: { type: 'string' },
            out: { type: 'string', default: 'keys' },
            'if-missing': { type: 'boolean', default: false },
          },
        })
        const { defaultKid, isGeneratedAlg, writeKey } = await import('./cli/keys-generate.js')
        if (!isGeneratedAlg(values.alg)) {
          process.stderr.write(`unsupported --alg ${values.alg}: use ES256, EdDSA or RS256 (HS256 takes a secret, not a key file)\n`)
          return 2
        }
        process.stdout.write((await writeKey(values.alg, values.kid ?? defaultKid(), values.out, { ifMissing: values['if-missing'] })) + '\n')
        return 0
      }
      default:
        process.stderr.write(`unknown command "${command}"\n\n${HELP['main']}\n`)
        return 2
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // parseArgs errors and file errors are the user's to fix: a message, not a stack trace.
    process.stderr.write(`portcullis ${command}: ${e.message}\n`)
    return e.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1
  }
}

function help(topic: string, code = 0): number {
  ;(code === 0 ? process.stdout : process.stderr).write(HELP[topic] + '\n')
  return code
}

// Run only when executed, not when imported by a test.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : ''
if (invoked === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      // `start` keeps the process alive itself and exits on its own terms.
      if (code !== -1) process.exitCode = code
    },
    (err: unknown) => {
      process.stderr.write(`portcullis: ${(err as Error).stack ?? String(err)}\n`)
      process.exitCode = 1
    },
  )
}
