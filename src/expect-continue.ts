/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1), answered after the checks rather than before.
 *
 * Left to itself, Node sends `100 Continue` as soon as it has parsed the head, before any
 * hook has run, so a client would upload megabytes only to learn it gets 401 or 413. Given a
 * 'checkContinue' listener it sends nothing; the listener (src/server.ts) hands the request
 * here, and the 100 goes out when the gateway first reads the body. No route reads a body
 * before its checks: authentication, roles and CSRF run in onRequest, the declared size in
 * preParsing (src/proxy/body-limit.ts, Fastify's own limit on parsed bodies), and a proxied
 * body is read only once the upstream connection is open. A request refused before that gets
 * its final answer without a 100, and Node then closes the connection, as §10.1.1 allows,
 * instead of waiting for a body the client may or may not send. HTTP/1.0 requests never come
 * here: Node ignores their Expect, as §10.1.1 requires.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Makes the first read of `req`'s body send `100 Continue` on `res`, unless it is too late to. */
export function continueOnFirstRead(req: IncomingMessage, res: ServerResponse): void {
  const read = req._read
  req._read = function readAfterContinue(this: IncomingMessage, size: number): void {
    req._read = read
    // Bytes already here: the client did not wait, and the 100 may be omitted (§10.1.1). A
    // response already started (the body is being drained after it): a 100 would corrupt it.
    if (req.readableLength === 0 && !res.headersSent && !res.destroyed) res.writeContinue()
    read.call(this, size)
  }
}
