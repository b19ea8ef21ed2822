/**
 * The V8 flags `portcullis start` runs with, set by the gateway itself rather than left to
 * whoever types the `node` command (docs/operations.md "V8 flags").
 *
 * `--min-semi-space-size=16`: an idle V8 shrinks its young generation to 1 MiB and regrows it
 * only over seconds of load, scavenging up to 14 times as often meanwhile; a floor at the size
 * the gateway reaches under load anyway keeps a process back from idleness, or from a burst of
 * never-seen tokens, out of that slow mode (docs/benchmarks.md "Tail latency"). V8 reads it
 * when the heap is made: `v8.setFlagsFromString` at run time leaves the young generation at
 * 1 MiB (measured: 43 scavenges against 14 for the same allocations), and Node refuses it in
 * NODE_OPTIONS. Hence a re-execution of the primary and `execArgv` for cluster workers.
 */
import cluster from 'node:cluster'

/** The flags applied when $PORTCULLIS_NODE_FLAGS is not set. */
export const DEFAULT_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16']

/** Set in the environment of the re-executed process, so that it never re-executes again. */
const REEXECUTED = 'PORTCULLIS_NODE_FLAGS_APPLIED'

/** The flags wanted: $PORTCULLIS_NODE_FLAGS (space-separated; empty for none), else the defaults. */
export function wantedNodeFlags(env: NodeJS.ProcessEnv): string[] {
  const given = env['PORTCULLIS_NODE_FLAGS']
  return given === undefined ? [...DEFAULT_NODE_FLAGS] : given.split(/\s+/).filter(Boolean)
}

/** `--min_semi_space_size=8` and `--min-semi-space-size 16` name the same flag. */
const flagName = (flag: string) => flag.split('=', 1)[0]!.replaceAll('_', '-')

/**
 * The wanted flags that the process does not already have under the same name, from its
 * command line (`execArgv`) or NODE_OPTIONS: an operator's own value always wins.
 */
export function missingNodeFlags(wanted: string[], execArgv: readonly string[], nodeOptions = ''): string[] {
  const present = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName))
  return wanted.filter((flag) => !present.has(flagName(flag)))
}

export type FlagsOutcome =
  /** Nothing was missing (or this process is the re-executed one). */
  | { applied: 'already' }
  /** This Node cannot replace its own process (process.execve: Node 22.15+, not on Windows). */
  | { applied: 'no'; missing: string[] }

/**
 * Replaces this process with the same command plus the missing flags, in place: same pid, so
 * signals, a supervisor's view, the container's PID 1, stdio and the exit code are those of
 * the one gateway process, with no parent left to relay them. Returns only when nothing needs
 * doing or when it cannot be done.
 */
export function applyNodeFlags(env: NodeJS.ProcessEnv = process.env): FlagsOutcome {
  // A worker was forked with them (workerExecArgv).
  if (!cluster.isPrimary) return { applied: 'already' }
  if (env[REEXECUTED] !== undefined) {
    // Not handed down to anything this process starts (the demo upstream, a worker).
    delete env[REEXECUTED]
    return { applied: 'already' }
  }
  const missing = missingNodeFlags(wantedNodeFlags(env), process.execArgv, env['NODE_OPTIONS'])
  if (missing.length === 0) return { applied: 'already' }
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve
  if (typeof execve !== 'function' || process.platform === 'win32') return { applied: 'no', missing }
  return execve.call(process, process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], {
    ...env,
    [REEXECUTED]: '1',
  })
}

/** What a cluster worker is started with: this process's flags plus the wanted ones it lacks. */
export function workerExecArgv(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...process.execArgv, ...missingNodeFlags(wantedNodeFlags(env), process.execArgv, env['NODE_OPTIONS'])]
}
