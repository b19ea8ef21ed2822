import t from 'tap'
import { CheckGate } from '../../src/auth/check-gate.js'
import { GatewayError } from '../../src/errors.js'

/** Acquires and records the order in which turns (or refusals) come. */
function taker(gate: CheckGate, order: string[]) {
  return (name: string, deferred: boolean) =>
    gate.acquire(deferred).then(
      () => void order.push(name),
      (err: GatewayError) => void order.push(`${name}:${err.code}`),
    )
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('checks beyond the concurrency wait their turn in arrival order', async (t) => {
  const gate = new CheckGate({ concurrency: 1 })
  const order: string[] = []
  const take = taker(gate, order)
  void take('a', false)
  void take('b', false)
  void take('c', false)
  await settle()
  t.same(order, ['a'])
  t.equal(gate.waiting, 2)
  gate.release(false)
  await settle()
  t.same(order, ['a', 'b'])
  gate.release(false)
  gate.release(false)
  await settle()
  t.same(order, ['a', 'b', 'c'])
  t.equal(gate.waiting, 0)
  void take('d', false)
  await settle()
  t.same(order, ['a', 'b', 'c', 'd'], 'with a slot free a check starts at once')
})

t.test('addresses over their budget get one check at a time between them, and only when no other address is waiting', async (t) => {
  const gate = new CheckGate({ concurrency: 3 })
  const order: string[] = []
  const take = taker(gate, order)
  void take('over-1', true)
  void take('over-2', true)
  void take('clean-1', false)
  void take('clean-2', false)
  void take('clean-3', false)
  await settle()
  t.same(order, ['over-1', 'clean-1', 'clean-2'], 'the second over-budget check waits though a slot is free')
  gate.release(true)
  await settle()
  t.same(order, ['over-1', 'clean-1', 'clean-2', 'clean-3'], 'a waiting clean address goes first, even into the slot an over-budget check freed')
  gate.release(false)
  await settle()
  t.same(order, ['over-1', 'clean-1', 'clean-2', 'clean-3', 'over-2'])
  void take('over-3', true)
  await settle()
  t.equal(order.length, 5, 'one over-budget check under way is the limit')
})

t.test('a full queue refuses the newest over-budget waiter first, and an over-budget newcomer when there is none to refuse', async (t) => {
  const gate = new CheckGate({ concurrency: 1, queue: 2 })
  const order: string[] = []
  const take = taker(gate, order)
  void take('running', false)
  void take('over-1', true)
  void take('over-2', true)
  void take('clean-1', false)
  await settle()
  t.same(order, ['running', 'over-2:rate_limited'], 'a clean address takes the place of the last over-budget one')
  void take('over-3', true)
  void take('clean-2', false)
  void take('clean-3', false)
  await settle()
  t.same(order, ['running', 'over-2:rate_limited', 'over-3:rate_limited', 'over-1:rate_limited', 'clean-3:rate_limited'])
  const refused = await gate.acquire(false).catch((err: GatewayError) => err)
  t.equal(refused instanceof GatewayError && refused.statusCode, 429)
  t.equal(refused instanceof GatewayError && refused.headers?.['retry-after'], '1')
})
