/**
 * Reading and writing W3C `traceparent` (src/ops/tracing/traceparent.ts): what the spec
 * accepts is continued, every malformed form it lists starts a new trace, and new ids are
 * valid and not repeated.
 */
import t from 'tap'
import { formatTraceparent, parseTraceparent, randomSpanId, randomTraceId } from '../../../src/ops/tracing/traceparent.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const VALID = `00-${TRACE}-${PARENT}-01`

t.test('a valid version-00 header gives its trace id, parent id and sampled flag', async (t) => {
  t.same(parseTraceparent(VALID), { traceId: TRACE, parentId: PARENT, sampled: true })
  t.same(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, sampled: false })
})

t.test('only the lowest flag bit says sampled; the other bits are read as unknown', async (t) => {
  t.equal(parseTraceparent(`00-${TRACE}-${PARENT}-ff`)?.sampled, true)
  t.equal(parseTraceparent(`00-${TRACE}-${PARENT}-fe`)?.sampled, false)
  t.equal(parseTraceparent(`00-${TRACE}-${PARENT}-02`)?.sampled, false)
  t.equal(parseTraceparent(`00-${TRACE}-${PARENT}-09`)?.sampled, true)
})

t.test('a missing header, and every malformed form in the spec, is refused', async (t) => {
  const refused: Record<string, string | undefined> = {
    absent: undefined,
    empty: '',
    'version ff': `ff-${TRACE}-${PARENT}-01`,
    'all-zero trace id': `00-${'0'.repeat(32)}-${PARENT}-01`,
    'all-zero parent id': `00-${TRACE}-${'0'.repeat(16)}-01`,
    'uppercase version': `0A-${TRACE}-${PARENT}-01`,
    'uppercase trace id': `00-${TRACE.toUpperCase()}-${PARENT}-01`,
    'one uppercase digit in the trace id': `00-4BF92f3577b34da6a3ce929d0e0e4736-${PARENT}-01`,
    'uppercase parent id': `00-${TRACE}-00F067AA0BA902B7-01`,
    'uppercase flags': `00-${TRACE}-${PARENT}-0A`,
    'trace id one digit short': `00-${TRACE.slice(1)}-${PARENT}-01`,
    'trace id one digit long': `00-${TRACE}a-${PARENT}-01`,
    'parent id one digit short': `00-${TRACE}-${PARENT.slice(1)}-01`,
    'parent id one digit long': `00-${TRACE}-${PARENT}a-01`,
    'one-digit flags': `00-${TRACE}-${PARENT}-1`,
    'three-digit flags': `00-${TRACE}-${PARENT}-011`,
    'version 00 with more after it': `00-${TRACE}-${PARENT}-01-extra`,
    'one-digit version': `0-${TRACE}-${PARENT}-01`,
    'non-hex in the version': `0g-${TRACE}-${PARENT}-01`,
    'non-hex in the trace id': `00-${TRACE.slice(0, 31)}g-${PARENT}-01`,
    'non-hex in the parent id': `00-${TRACE}-${PARENT.slice(0, 15)}z-01`,
    'non-hex in the flags': `00-${TRACE}-${PARENT}-0x`,
    'underscores for dashes': `00_${TRACE}_${PARENT}_01`,
    'leading space': ` ${VALID}`,
    'trailing space': `${VALID} `,
    'two headers joined by Node': `${VALID}, 00-${TRACE}-${PARENT}-00`,
    'a later version too short': `01-${TRACE}-${PARENT}-0`,
    'a later version with no dash after the flags': `cc-${TRACE}-${PARENT}-01xyz`,
    'a later version with an all-zero trace id': `cc-${'0'.repeat(32)}-${PARENT}-01-what-the-future-holds`,
  }
  for (const [why, value] of Object.entries(refused)) t.equal(parseTraceparent(value), null, why)
})

t.test('a later version is read as far as version 00 goes, extra fields after a dash or not', async (t) => {
  t.same(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-the-future-holds`), { traceId: TRACE, parentId: PARENT, sampled: true })
  t.same(parseTraceparent(`01-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, sampled: false })
})

t.test('a written header is version 00 with only the sampled flag, and reads back the same', async (t) => {
  t.equal(formatTraceparent(TRACE, PARENT, true), VALID)
  t.equal(formatTraceparent(TRACE, PARENT, false), `00-${TRACE}-${PARENT}-00`)
  t.same(parseTraceparent(formatTraceparent(TRACE, PARENT, true)), { traceId: TRACE, parentId: PARENT, sampled: true })
})

t.test('new ids are lowercase hex of the right length, valid in a header, and never repeat', async (t) => {
  // Past several refills of the 4 KiB pool.
  const traces = Array.from({ length: 2000 }, randomTraceId)
  const spans = Array.from({ length: 2000 }, randomSpanId)
  t.same(
    traces.filter((id) => !/^[0-9a-f]{32}$/.test(id)),
    [],
    'every trace id is 32 lowercase hex digits',
  )
  t.same(
    spans.filter((id) => !/^[0-9a-f]{16}$/.test(id)),
    [],
    'every span id is 16 lowercase hex digits',
  )
  t.same(
    traces.filter((id, i) => parseTraceparent(formatTraceparent(id, spans[i]!, false)) === null),
    [],
    'each pair makes a header that parses',
  )
  t.equal(new Set(traces).size, traces.length, 'trace ids unique')
  t.equal(new Set(spans).size, spans.length, 'span ids unique')
})
