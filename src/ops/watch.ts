/**
 * Watches the config file (and server.tls's certificate and key: src/tls/certificates.ts) for
 * changes, including replacement by rename (editors' atomic save, Kubernetes ConfigMap and
 * Secret symlink swaps), and calls back once per burst of events.
 */
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile, realpath } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'

export function watchConfig(file: string, onChange: () => void, log: Logger, debounceMs = 250): () => void {
  return watchFile(file, onChange, log, { debounceMs, what: 'the config file' })
}

/** `what` names the file in log lines ("cannot watch the certificate"). */
export function watchFile(file: string, onChange: () => void, log: Logger, opts: { debounceMs?: number; what: string }): () => void {
  const debounceMs = opts.debounceMs ?? 250
  const path = resolve(file)
  let timer: NodeJS.Timeout | null = null
  let lastDigest: string | null = null
  let stopped = false
  const digest = () =>
    readFile(path).then(
      (b) => createHash('sha256').update(b).digest('hex'),
      () => null,
    )
  void digest().then((d) => (lastDigest = d))

  const fire = async () => {
    timer = null
    await followTarget()
    const d = await digest()
    // An editor's save can fire several events, a touch none that matter: reload on new content only.
    if (stopped || d === null || d === lastDigest) return
    lastDigest = d
    onChange()
  }
  const poke = () => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => void fire(), debounceMs)
  }

  // Watching directories, not the file: a rename-replace swaps the inode, and a watch on the
  // old inode would go silent. `..data` and its siblings are a ConfigMap's swap.
  const watchDir = (dir: string, name: string): FSWatcher | null => {
    try {
      const w = watch(dir, (_event, changed) => {
        if (changed === null || changed === name || String(changed).startsWith('..')) poke()
      })
      w.on('error', (err) => log.warn({ err, dir, file: path }, `watching ${opts.what} failed; reload with SIGHUP`))
      w.unref()
      return w
    } catch (err) {
      log.warn({ err, file: path }, `cannot watch ${opts.what}; reload with SIGHUP`)
      return null
    }
  }
  const own = watchDir(dirname(path), basename(path))

  // A config symlinked from another directory changes there: watch where it points too, and
  // follow it when the link is pointed elsewhere.
  let target: { path: string; watcher: FSWatcher | null } | null = null
  const followTarget = async () => {
    const real = await realpath(path).catch(() => null)
    if (stopped || real === null || real === target?.path) return
    target?.watcher?.close()
    target = { path: real, watcher: dirname(real) === dirname(path) ? null : watchDir(dirname(real), basename(real)) }
  }
  void followTarget()

  return () => {
    stopped = true
    if (timer) clearTimeout(timer)
    own?.close()
    target?.watcher?.close()
  }
}
