/** Writing benchmark results into docs/benchmarks.md, one marked section per script. */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'

export function machineFacts(): string {
  const redis = (() => {
    try {
      return (
        execFileSync('redis-server', ['--version'])
          .toString()
          .match(/v=(\S+)/)?.[1] ?? '?'
      )
    } catch {
      return 'not installed'
    }
  })()
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return `Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; redis-server ${redis}; ${new Date().toISOString().slice(0, 10)}.`
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`, or appends it. */
export function writeSection(file: string, name: string, body: string): void {
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const block = `${start}\n${body}\n${end}`
  const text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nEvery figure here is produced by a script in this repository; rerun it to refresh it.\n'
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  writeFileSync(file, a !== -1 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text.trimEnd()}\n\n${block}\n`)
}
