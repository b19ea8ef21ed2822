/** Something a generation serves that a drain past its timeout must close. */
export interface Closable {
  destroy(): unknown
}

/** An entry of an OpenList; only the list that made it may take it out. */
export interface OpenEntry<T extends Closable> {
  readonly stream: T
  prev: OpenEntry<T> | null
  next: OpenEntry<T> | null
}

/**
 * The requests and WebSockets a config generation is still serving (src/server.ts).
 *
 * A linked list whose removed entries clear their links, not a `Set`: a Set that gains and
 * loses an entry per request had V8 promote every request's objects out of the young
 * generation (measured, with a script that shows it: docs/benchmarks.md, "Where a proxied
 * request's time goes").
 */
export class OpenList<T extends Closable> {
  #head: OpenEntry<T> | null = null
  #size = 0

  /** How many are still open. */
  get size(): number {
    return this.#size
  }

  /** Adds `stream`; the entry returned is what `remove` takes. */
  add(stream: T): OpenEntry<T> {
    const entry: OpenEntry<T> = { stream, prev: null, next: this.#head }
    if (this.#head) this.#head.prev = entry
    this.#head = entry
    this.#size++
    return entry
  }

  /** Takes out an entry of this list (a second call does nothing) and clears its links. */
  remove(entry: OpenEntry<T>): void {
    if (entry.prev === null && this.#head !== entry) return
    if (entry.prev) entry.prev.next = entry.next
    else this.#head = entry.next
    if (entry.next) entry.next.prev = entry.prev
    entry.prev = entry.next = null
    this.#size--
  }

  /** The streams still listed, newest first: a copy, so closing them may take entries out. */
  streams(): T[] {
    const out: T[] = []
    for (let e = this.#head; e; e = e.next) out.push(e.stream)
    return out
  }
}
