/**
 * The help texts of docs/reference/cli.md, as `portcullis --help` and `portcullis <command>
 * --help` print them (src/cli.ts run in this process, its output captured): every command the
 * main help lists gets its own.
 */
import { main } from '../../src/cli.js'

/** What `portcullis ...args` writes to stdout, and its exit code. */
async function run(args: string[]): Promise<{ out: string; code: number }> {
  const write = process.stdout.write
  let out = ''
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    return true
  }) as typeof process.stdout.write
  try {
    const code = await main(args)
    return { out, code }
  } finally {
    process.stdout.write = write
  }
}

/** The commands listed under "Commands:" in the main help, each as its words. */
export function commandsOf(mainHelp: string): string[][] {
  const listed = mainHelp.split('Commands:\n')[1] ?? ''
  const commands: string[][] = []
  for (const line of listed.split('\n')) {
    const match = /^ {2}(\S+(?: \S+)*?) {2,}/.exec(line)
    if (!match) break
    commands.push(match[1]!.split(' '))
  }
  return commands
}

export async function cliHelpMarkdown(): Promise<string> {
  const top = await run(['--help'])
  if (top.code !== 0) throw new Error('portcullis --help failed')
  const sections = ['```console', '$ portcullis --help', top.out.trimEnd(), '```']
  for (const command of commandsOf(top.out)) {
    const { out, code } = await run([...command, '--help'])
    // A command without options of its own prints the main help again: nothing to add.
    if (code !== 0 || out === top.out) continue
    sections.push('', '```console', `$ portcullis ${command.join(' ')} --help`, out.trimEnd(), '```')
  }
  return sections.join('\n')
}
