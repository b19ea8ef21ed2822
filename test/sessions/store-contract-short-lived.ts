/**
 * The store contract for ShortLivedValues: what OpenID Connect sign-in keeps beside the
 * sessions (flows in progress, used logout-token ids, provider-session links).
 */
import { type ContractOptions, SECOND, T0, type TapTest } from './store-fixtures.js'

export function shortLivedContract(t: TapTest, { make }: ContractOptions): void {
  t.test('a value is kept once, taken once, and gone after its lifetime', async (t) => {
    const { store, peer = store } = await make(t)
    t.equal(await store.putNew('flow:a', 'one', 60 * SECOND, T0), true, 'the first put keeps it')
    t.equal(await peer.putNew('flow:a', 'two', 60 * SECOND, T0), false, 'a second put, from any instance, keeps nothing')
    t.equal(await peer.take('flow:a', T0 + SECOND), 'one', 'another instance takes the first value')
    t.equal(await store.take('flow:a', T0 + SECOND), null, 'nobody takes it twice')
    t.equal(await store.putNew('flow:a', 'three', 60 * SECOND, T0 + 2 * SECOND), true, 'once taken, the key is free again')
    t.equal(await store.take('flow:missing', T0), null, 'an unknown key holds nothing')

    await store.putNew('flow:short', 'x', 50, T0)
    if (store.kind === 'redis') await new Promise((r) => setTimeout(r, 120)) // Redis keeps its own time
    t.equal(await store.take('flow:short', T0 + 100), null, 'an expired value is not taken')
  })

  t.test('links gather members from every instance and live as long as the latest asks', async (t) => {
    const { store, peer = store } = await make(t)
    t.same(await store.linked('sid:none', T0), [], 'an unknown link has no members')
    await store.link('sid:p1', 'session-a', T0 + 60 * SECOND, T0)
    await peer.link('sid:p1', 'session-b', T0 + 3600 * SECOND, T0)
    await store.link('sid:p1', 'session-a', T0 + 10 * SECOND, T0)
    t.same((await peer.linked('sid:p1', T0)).sort(), ['session-a', 'session-b'], 'each member once, whoever added it')
    if (store.kind === 'memory') {
      t.same((await store.linked('sid:p1', T0 + 120 * SECOND)).sort(), ['session-a', 'session-b'], 'a shorter later link does not shorten it')
      t.same(await store.linked('sid:p1', T0 + 3601 * SECOND), [], 'gone after the latest expiry')
    }
  })
}
