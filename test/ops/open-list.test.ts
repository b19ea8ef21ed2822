import t from 'tap'
import { OpenList } from '../../src/open-list.js'

const stream = (name: string) => ({
  name,
  destroyed: false,
  destroy() {
    this.destroyed = true
  },
})

t.test('lists what is open, newest first, and takes out any entry', async (t) => {
  const list = new OpenList<ReturnType<typeof stream>>()
  const [a, b, c] = [stream('a'), stream('b'), stream('c')].map((s) => list.add(s))
  t.same(
    list.streams().map((s) => s.name),
    ['c', 'b', 'a'],
  )
  t.equal(list.size, 3)
  list.remove(b!)
  t.same(
    list.streams().map((s) => s.name),
    ['c', 'a'],
    'from the middle',
  )
  list.remove(c!)
  t.same(
    list.streams().map((s) => s.name),
    ['a'],
    'the newest',
  )
  list.remove(c!)
  t.same(
    list.streams().map((s) => s.name),
    ['a'],
    'a second removal changes nothing',
  )
  t.equal(list.size, 1, 'nor the count')
  list.remove(a!)
  t.same(list.streams(), [], 'the last one')
  t.equal(list.size, 0)
  list.add(stream('d'))
  t.same(
    list.streams().map((s) => s.name),
    ['d'],
    'usable again once empty',
  )
})

t.test('an entry taken out keeps no link to the others', async (t) => {
  // The point of the list (src/open-list.ts): a dead entry must not keep newer ones alive.
  const list = new OpenList<ReturnType<typeof stream>>()
  const entries = ['a', 'b', 'c', 'd'].map((n) => list.add(stream(n)))
  for (const e of [entries[1]!, entries[3]!, entries[0]!]) {
    list.remove(e)
    t.equal(e.prev, null)
    t.equal(e.next, null)
  }
  t.same(
    list.streams().map((s) => s.name),
    ['c'],
  )
})

t.test('closing every stream may take entries out while it runs', async (t) => {
  const list = new OpenList<ReturnType<typeof stream>>()
  const streams = ['a', 'b', 'c'].map(stream)
  const entries = streams.map((s) => list.add(s))
  // As a response's 'close' listener would, synchronously.
  for (const [i, s] of streams.entries()) {
    const destroy = s.destroy.bind(s)
    s.destroy = () => {
      destroy()
      list.remove(entries[i]!)
    }
  }
  for (const s of list.streams()) s.destroy()
  t.ok(
    streams.every((s) => s.destroyed),
    'every stream closed',
  )
  t.same(list.streams(), [])
})
