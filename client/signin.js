/**
 * The script of the gateway's sign-in page ({basePath}/signin). Plain ESM; its one import is
 * the return-path check it shares with the gateway.
 *
 * 1. Silent refresh: the refresh cookie is scoped to basePath, so the navigation that brought
 *    the browser here could not use it. If it still holds a session, go straight back.
 * 2. Otherwise show the choices: a link per OpenID Provider (the gateway renders them) and the
 *    password form, whose credentials are posted as JSON (cookie mode) before going back.
 *    A page showing a failed provider sign-in (data-problem) skips the silent refresh.
 *
 * Going back is only ever to a same-origin path: see safeReturnPath (./return-path.js, which
 * the gateway serves beside this script and runs itself before rendering the page).
 */

import { safeReturnPath } from './return-path.js'

const MESSAGES = {
  invalid_credentials: 'Wrong username or password.',
  rate_limited: 'Too many attempts. Wait a moment, then try again.',
  csrf_rejected: 'This page cannot sign you in from here.',
}

async function codeOf(response) {
  try {
    return (await response.json()).code
  } catch {
    return undefined
  }
}

function start(main) {
  const base = main.dataset.base ?? ''
  const returnTo = safeReturnPath(main.dataset.return)
  const status = document.getElementById('status')
  const providers = document.getElementById('providers')
  const form = document.getElementById('form')
  const goBack = () => location.replace(returnTo)

  function showForm() {
    status.textContent = ''
    if (providers) providers.hidden = false
    if (form) {
      form.hidden = false
      document.getElementById('username').focus()
    } else providers?.querySelector('a')?.focus()
  }

  // A failed provider sign-in to show, or a route wanting a recent sign-in (a refresh keeps the
  // old sign-in time, so it would only bring the user back here): straight to the choices.
  if (main.dataset.problem || main.dataset.reauth) {
    if (form) passwordForm(base, form, goBack)
    return showForm()
  }
  if (form) passwordForm(base, form, goBack)
  fetch(`${base}/refresh`, { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' } })
    .then((response) => (response.ok ? goBack() : showForm()))
    .catch(showForm)
}

function passwordForm(base, form, goBack) {
  const error = document.getElementById('error')
  const button = form.querySelector('button')

  function showError(message) {
    error.textContent = message
    for (const input of form.querySelectorAll('input')) input.setAttribute('aria-invalid', 'true')
    document.getElementById('password').select()
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const data = new FormData(form)
    button.disabled = true
    form.setAttribute('aria-busy', 'true')
    error.textContent = ''
    for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid')
    try {
      const response = await fetch(`${base}/login`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username: data.get('username'), password: data.get('password') }),
      })
      if (response.ok) return goBack()
      showError(MESSAGES[await codeOf(response)] ?? 'Signing in is not possible right now. Try again later.')
    } catch {
      showError('The gateway could not be reached. Check your connection and try again.')
    } finally {
      button.disabled = false
      form.removeAttribute('aria-busy')
    }
  })
}

const main = typeof document === 'undefined' ? null : document.getElementById('signin')
if (main) start(main)
