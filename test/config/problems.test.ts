import t from 'tap'
import { formatPath, formatProblem, sortProblems } from '../../src/config/problems.js'

t.test('a path reads the way the setting is written', async (t) => {
  t.equal(formatPath(['routes', 1, 'upstream']), 'routes[1].upstream')
  t.equal(formatPath(['auth', 'keys', 'signing', 0, 'kid']), 'auth.keys.signing[0].kid')
  t.equal(formatPath(['auth', 'identity', 0, 'users', 2, 'claims', 'https://x/role']), 'auth.identity[0].users[2].claims["https://x/role"]')
  t.equal(formatPath(['$schema']), '$schema')
  t.equal(formatPath([]), '')
})

t.test('a problem is shown as file:line:column path: message', async (t) => {
  const p = { path: 'routes[1].upstream', line: 12, column: 5, message: 'must be an http:// or https:// URL' }
  t.equal(formatProblem(p, 'gateway.yaml'), 'gateway.yaml:12:5 routes[1].upstream: must be an http:// or https:// URL')
  t.equal(formatProblem({ ...p, path: '' }, 'g.yaml'), 'g.yaml:12:5 must be an http:// or https:// URL')
  t.equal(formatProblem({ ...p, line: 0, column: 0 }, 'g.yaml'), 'g.yaml routes[1].upstream: must be an http:// or https:// URL')
})

t.test('problems sort into file order, keeping the order of problems at one place', async (t) => {
  const at = (line: number, column: number, message: string) => ({ path: '', line, column, message })
  t.same(
    sortProblems([at(3, 1, 'c'), at(1, 5, 'b'), at(1, 2, 'a'), at(3, 1, 'd')]).map((p) => p.message),
    ['a', 'b', 'c', 'd'],
  )
})
