// `node bench/set-chain.mjs`: why src/open-list.ts is a linked list and not a Set.
//
// A registry holds 25 open "requests" (objects of about 4 KiB); each step opens one and closes
// the oldest, as a busy server's registry of open responses does. Run three ways, each in a
// child process with --trace-gc-nvp: a Set whose storage was first moved to the old generation
// (two forced full collections, as V8 does to a process going idle or to any live object at a
// full collection); the same Set without that; and a linked list whose removed entries clear
// their links, moved to the old generation likewise. Prints, per way, the bytes promoted per
// scavenge, the mean scavenge pause, the full collections and the run time.
import { spawnSync } from 'node:child_process'

const STEPS = 2_000_000
const OPEN = 25

function child(kind, seeded) {
  const set = new Set()
  let head = null
  const add = (r) => {
    if (kind === 'set') return void set.add(r)
    r.entry = { r, prev: null, next: head }
    if (head) head.prev = r.entry
    head = r.entry
  }
  const remove = (r) => {
    if (kind === 'set') return void set.delete(r)
    const e = r.entry
    if (e.prev) e.prev.next = e.next
    else head = e.next
    if (e.next) e.next.prev = e.prev
    e.prev = e.next = null
  }
  const open = []
  const request = (i) => ({ payload: new Array(500).fill(i) })
  for (let i = 0; i < OPEN; i++) {
    const r = request(i)
    add(r)
    open.push(r)
  }
  if (seeded) {
    globalThis.gc()
    globalThis.gc()
  }
  const started = Date.now()
  for (let i = 0; i < STEPS; i++) {
    const r = request(i)
    add(r)
    open.push(r)
    remove(open.shift())
  }
  process.stderr.write(`ms=${Date.now() - started}\n`)
}

if (process.argv[2]) {
  child(process.argv[2], process.argv[3] === 'seeded')
} else {
  const url = new URL(import.meta.url).pathname
  for (const [kind, seeded, label] of [
    ['set', 'seeded', 'Set, storage in the old generation'],
    ['set', 'fresh', 'Set, storage young'],
    ['list', 'seeded', 'linked list, in the old generation'],
  ]) {
    // The trace goes to stdout, the run time to stderr.
    const run = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-nvp', url, kind, seeded], { encoding: 'utf8', maxBuffer: 1 << 28 })
    const trace = run.stdout
    const scavenges = []
    let full = 0
    for (const line of trace.split('\n')) {
      const gc = / gc=(\S+)/.exec(line)?.[1]
      if (gc === undefined) continue
      if (gc !== 's') {
        full++
        continue
      }
      const value = (k) => Number(new RegExp(` ${k}=([0-9.]+)`).exec(line)?.[1] ?? 0)
      scavenges.push({ promoted: value('promoted'), pause: value('pause') })
    }
    const mean = (k) => scavenges.reduce((n, s) => n + s[k], 0) / scavenges.length
    const ms = /ms=(\d+)/.exec(run.stderr)?.[1] ?? '?'
    console.log(
      `${label}: ${(mean('promoted') / 1024).toFixed(0)} KiB promoted per scavenge, ${mean('pause').toFixed(2)} ms per scavenge, ${scavenges.length} scavenges, ${full} full collections, ${ms} ms`,
    )
  }
}
