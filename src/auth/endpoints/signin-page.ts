/**
 * GET {basePath}/signin (the sign-in page), {basePath}/signin.js (its script),
 * {basePath}/return-path.js (the check that script shares with the gateway) and
 * {basePath}/client.js (the fetch helper web apps import). SPEC.md `auth.signInPage`.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { GatewayError } from '../../errors.js'
import { loadAsset, serveScript } from '../assets.js'
import type { EndpointContext } from '../routes.js'
import { safeReturnPath } from '../signin.js'

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1d21}
main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{margin-top:0;font-size:1.5rem}label{display:block;font-weight:600;margin-top:1rem}
input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #767676;border-radius:4px}
button{margin-top:1.5rem;width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;background:#1f5fbf;border:0;border-radius:4px}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}#error,#problem{color:#b00020;min-height:1.5em;margin:1rem 0 0}
#providers{list-style:none;padding:0;margin:1rem 0}#providers a{display:block;margin-top:.5rem;padding:.6rem;text-align:center;font-weight:600;color:#1f5fbf;border:1px solid #1f5fbf;border-radius:4px;text-decoration:none}`

/**
 * No inline script may run on the page that handles passwords: an injected `<script>` would
 * read them as typed. The one inline block is this style sheet, allowed by its hash.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "connect-src 'self'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "form-action 'self'",
  "base-uri 'none'",
  // Clickjacking: the password form must never be framed by another page.
  "frame-ancestors 'none'",
].join('; ')

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)

/** What the page offers: a sign-in link per OpenID Provider, the password form, or both. */
export interface SignInChoices {
  providers: ReadonlyArray<{ name: string; label: string }>
  passwordForm: boolean
}

function page(base: string, returnTo: string, choices: SignInChoices, problem: string | null, maxAge?: string): string {
  const query = new URLSearchParams()
  if (returnTo !== '/') query.set('return', returnTo)
  if (maxAge !== undefined) query.set('max_age', maxAge)
  const back = query.size === 0 ? '' : `?${query}`
  const links = choices.providers
    .map(({ name, label }) => `<li><a href="${escapeHtml(`${base}/oidc/${name}/start${back}`)}">Sign in with ${escapeHtml(label)}</a></li>`)
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>${STYLE}</style>
<script type="module" src="${escapeHtml(base)}/signin.js"></script>
</head>
<body>
<main id="signin" data-base="${escapeHtml(base)}" data-return="${escapeHtml(returnTo)}"${problem === null ? '' : ' data-problem="1"'}${maxAge === undefined ? '' : ' data-reauth="1"'}>
<h1>${maxAge === undefined ? 'Sign in' : 'Sign in again'}</h1>
${problem === null ? '' : `<p id="problem" role="alert">${escapeHtml(problem)}</p>\n`}<p id="status" role="status" aria-live="polite">${problem !== null ? '' : maxAge === undefined ? 'Checking for an existing session…' : 'This page needs a recent sign-in.'}</p>
<noscript><p>Signing in needs JavaScript, which is turned off in this browser.</p></noscript>
${links === '' ? '' : `<ul id="providers" hidden>\n${links}\n</ul>\n`}${
  choices.passwordForm
    ? `<form id="form" hidden>
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p id="error" aria-live="assertive"></p>
<button type="submit">Sign in</button>
</form>
`
    : ''
}</main>
</body>
</html>
`
}

/** Shows a failed sign-in (an OpenID Connect callback's) on the page, with the status it would have had. */
export type SignInPageRenderer = (reply: FastifyReply, error: GatewayError, returnTo: string) => FastifyReply | null

export async function signInPageEndpoints(app: FastifyInstance, ctx: EndpointContext, choices: SignInChoices): Promise<SignInPageRenderer> {
  const { auth } = ctx.config
  const base = auth.basePath.replace(/\/+$/, '')
  // The helper is a convenience: an installation without client/ still serves the API.
  const client = await loadAsset('portcullis-fetch.js').catch((err: Error) => {
    ctx.deps.logger.warn({ err }, `${base}/client.js is not served`)
    return null
  })
  if (client) serveScript(app, '/client.js', client)
  if (!auth.signInPage) return () => null

  // signInPage is on: a page that cannot load its script would strand every visitor.
  serveScript(app, '/signin.js', await loadAsset('signin.js'))
  serveScript(app, '/return-path.js', await loadAsset('return-path.js')) // signin.js imports it
  const render = (reply: FastifyReply, returnTo: string, problem: string | null, maxAge?: string) => {
    reply.header('content-security-policy', CSP)
    reply.header('x-frame-options', 'DENY')
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    return reply.type('text/html; charset=utf-8').send(page(base, returnTo, choices, problem, maxAge))
  }
  app.get<{ Querystring: Record<string, unknown> }>('/signin', async (request, reply) => {
    const maxAge = request.query['max_age']
    return render(reply, safeReturnPath(request.query['return']), null, typeof maxAge === 'string' && /^\d{1,9}$/.test(maxAge) ? maxAge : undefined)
  })
  return (reply, error, returnTo) => {
    // A 5xx's message is generic by design (errors.ts); the page says what a person can do.
    const problem = error.statusCode >= 500 ? 'Signing in is not possible right now. Try again later.' : error.message
    return render(reply.code(error.statusCode), returnTo, problem)
  }
}
