import t from 'tap'
import { formatDuration, isDurationSyntax, parseDuration } from '../../src/config/duration.js'

t.test('each unit of a duration becomes milliseconds', async (t) => {
  t.equal(parseDuration('500ms'), 500)
  t.equal(parseDuration('30s'), 30_000)
  t.equal(parseDuration('10m'), 600_000)
  t.equal(parseDuration('12h'), 43_200_000)
  t.equal(parseDuration('14d'), 1_209_600_000)
  t.equal(parseDuration('0s'), 0)
})

t.test('an integer is a number of seconds', async (t) => {
  t.equal(parseDuration(90), 90_000)
  t.equal(parseDuration(0), 0)
})

t.test('anything else is not a duration', async (t) => {
  for (const bad of ['', '10', '1.5s', '-1s', '10 s', '10S', '1w', 's', ' 1s', -1, 1.5, NaN, Infinity, null, true, {}]) {
    t.equal(parseDuration(bad), null, JSON.stringify(bad))
  }
})

t.test('a duration too long to be exact in milliseconds is refused, though well written', async (t) => {
  t.equal(parseDuration('9999999999999d'), null)
  t.ok(isDurationSyntax('9999999999999d'))
  t.notOk(isDurationSyntax('soon'))
})

t.test('milliseconds are shown in the largest exact unit', async (t) => {
  t.equal(formatDuration(600_000), '10m')
  t.equal(formatDuration(90_000), '90s')
  t.equal(formatDuration(86_400_000), '1d')
  t.equal(formatDuration(1500), '1500ms')
  t.equal(formatDuration(0), '0ms')
})
