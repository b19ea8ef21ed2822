/**
 * The return path after sign-in. One function (client/return-path.js) serves the page's script
 * and the server; the test checks it through both entry points, so a server that stopped using
 * the shared check would show up here (test/auth/signin.test.ts checks the page imports it).
 */
import t from 'tap'
import { safeReturnPath as pageCheck } from '../../client/return-path.js'
import { MAX_RETURN_PATH, safeReturnPath as serverCheck } from '../../src/auth/signin.js'

const KEPT = [
  '/',
  '/app/',
  '/app/orders?id=42&sort=desc',
  '/a/b/c.html',
  '/search?q=%2F%2Fevil.example', // encoded slashes stay a query value
  '/app/%E2%9C%93',
  '/x?next=https://example.com', // a URL inside the query is just text
  '/javascript:alert(1)', // a path segment named so, on our origin
  '/' + 'a'.repeat(MAX_RETURN_PATH - 1),
]

const REFUSED: [string, unknown][] = [
  ['a network-path reference', '//evil.example'],
  ['a network-path reference with a path', '//evil.example/app/'],
  ['a backslash after the slash', '/\\evil.example'],
  ['two backslashes', '\\\\evil.example'],
  ['a backslash later on', '/app\\..\\x'],
  ['an absolute https URL', 'https://evil.example/'],
  ['an absolute http URL', 'http://localhost:8080/app/'],
  ['a javascript: URL', 'javascript:alert(1)'],
  ['an uppercase JAVASCRIPT: URL', 'JaVaScRiPt:alert(1)'],
  ['a data: URL', 'data:text/html,<script>alert(1)</script>'],
  ['a relative path', 'app/'],
  ['a dot path', './app'],
  ['a tab that the URL parser drops', '/\t/evil.example'],
  ['a newline that the URL parser drops', '/\n/evil.example'],
  ['a carriage return', '/\r/evil.example'],
  ['a NUL', '/app\u0000'],
  ['DEL', '/app\u007f'],
  ['a space', '/ /evil.example'],
  ['a leading space', ' /app/'],
  ['a non-ASCII character', '/app/✓'],
  ['a fullwidth solidus', '/／evil.example'],
  ['an empty string', ''],
  ['a path that is too long', '/' + 'a'.repeat(MAX_RETURN_PATH)],
  ['a number', 42],
  ['an array (a repeated query parameter)', ['/app/', '//evil.example']],
  ['undefined', undefined],
  ['null', null],
]

for (const [name, check] of [
  ['the server', serverCheck],
  ['the page script', pageCheck],
] as const) {
  t.test(`${name} keeps same-origin paths`, async (t) => {
    for (const path of KEPT) t.equal(check(path), path, JSON.stringify(path).slice(0, 60))
  })
  t.test(`${name} turns everything else into /`, async (t) => {
    for (const [why, value] of REFUSED) t.equal(check(value), '/', why)
  })
}

t.test('the server runs the very same check as the page script', async (t) => {
  t.equal(serverCheck, pageCheck)
})
