/**
 * Watches the config file for changes, including replacement by rename (editors' atomic
 * save, Kubernetes ConfigMap symlink swaps), and calls back once per burst of events.
 */
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'

export function watchConfig(file: string, onChange: () => void, log: Logger, debounceMs = 250): () => void {
  const path = resolve(file)
  const name = basename(path)
  let timer: NodeJS.Timeout | null = null
  let lastDigest: string | null = null
  const digest = () => readFile(path).then((b) => createHash('sha256').update(b).digest('hex'), () => null)
  void digest().then((d) => (lastDigest = d))

  const fire = async () => {
    timer = null
    const d = await digest()
    // An editor's save can fire several events, a touch none that matter: reload on new content only.
    if (d === null || d === lastDigest) return
    lastDigest = d
    onChange()
  }
  // Watching the directory, not the file: a rename-replace swaps the inode, and a watch on
  // the old inode would go silent.
  let watcher: FSWatcher
  try {
    watcher = watch(dirname(path), (_event, changed) => {
      if (changed !== null && changed !== name && !String(changed).startsWith('..')) return
      if (timer) clearTimeout(timer)
      timer = setTimeout(() => void fire(), debounceMs)
    })
  } catch (err) {
    log.warn({ err, file: path }, 'cannot watch the config file; reload with SIGHUP')
    return () => {}
  }
  watcher.on('error', (err) => log.warn({ err }, 'config watcher failed; reload with SIGHUP'))
  watcher.unref()
  return () => {
    if (timer) clearTimeout(timer)
    watcher.close()
  }
}
