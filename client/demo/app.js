/**
 * The demo web app: everything a browser app behind Portcullis does, in one small module.
 * Every call goes through the fetch helper the gateway serves, so an expired access token is
 * refreshed without the page noticing, and an ended session shows a way back in.
 */
import { createAuthFetch } from '/auth/client.js'

// The shipped gateway.yaml keeps the auth endpoints under /auth.
const AUTH = '/auth'
const $ = (id) => document.getElementById(id)
const authFetch = createAuthFetch({ basePath: AUTH, onSessionEnded: () => ended('Your session has ended.') })

function say(text) {
  $('status').textContent = text
}

function ended(message) {
  $('app').hidden = true
  $('ended').hidden = false
  $('ended-message').textContent = message
  $('signin-link').href = `${AUTH}/signin?return=${encodeURIComponent(location.pathname)}`
  $('ended-message').focus()
}

async function codeOf(response) {
  const body = await response.json().catch(() => null)
  return body?.code ?? response.statusText
}

async function showMe() {
  const response = await authFetch(`${AUTH}/me`)
  if (!response.ok) return say(`Could not read who you are (${await codeOf(response)}).`)
  const me = await response.json()
  $('subject').textContent = me.subject
  $('roles').textContent = me.roles.join(', ') || '(none)'
  $('session').textContent = me.sessionId
  $('expires').textContent = new Date(me.expiresAt).toLocaleTimeString()
}

async function callApi() {
  const result = $('api-result')
  const response = await authFetch('/api/echo/hello')
  result.dataset.status = String(response.status)
  result.textContent = response.ok ? JSON.stringify(await response.json(), null, 2) : `${response.status} ${await codeOf(response)}`
  if (response.ok) await showMe() // the access token may have been refreshed on the way
}

/** "HeadlessChrome/156.0… (X11; Linux x86_64)" → "Chrome 156 on Linux". */
function browserName(userAgent) {
  if (!userAgent) return 'Unknown browser'
  const name = /(Firefox|Edg|Chrome|Safari)\/(\d+)/.exec(userAgent)
  const os = /(Windows|Mac OS X|Android|iPhone|Linux)/.exec(userAgent)
  return `${name ? `${name[1] === 'Edg' ? 'Edge' : name[1]} ${name[2]}` : 'Browser'}${os ? ` on ${os[1]}` : ''}`
}

function cell(text, title) {
  const td = document.createElement('td')
  td.textContent = text
  if (title) td.title = title
  return td
}

function sessionRow(session) {
  const tr = document.createElement('tr')
  tr.dataset.id = session.id
  tr.dataset.current = String(session.current)
  const name = cell(browserName(session.userAgent), session.userAgent ?? '')
  if (session.current) {
    const mark = document.createElement('span')
    mark.className = 'current'
    mark.textContent = ' (this browser)'
    name.append(mark)
  }
  const action = document.createElement('td')
  const button = document.createElement('button')
  button.type = 'button'
  button.className = 'secondary'
  button.textContent = 'End'
  button.setAttribute(
    'aria-label',
    `End the session of ${browserName(session.userAgent)} signed in at ${new Date(session.createdAt).toLocaleString()}`,
  )
  button.addEventListener('click', () => endSession(session))
  action.append(button)
  tr.append(
    name,
    cell(session.ip ?? ''),
    cell(new Date(session.createdAt).toLocaleString()),
    cell(new Date(session.lastUsedAt).toLocaleString()),
    action,
  )
  return tr
}

async function listSessions() {
  const response = await authFetch(`${AUTH}/sessions`)
  if (!response.ok) return say(`Could not list your sessions (${await codeOf(response)}).`)
  const { sessions } = await response.json()
  $('sessions-body').replaceChildren(...sessions.map(sessionRow))
}

async function endSession(session) {
  const response = await authFetch(`${AUTH}/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' })
  if (response.status !== 204) return say(`Could not end that session (${await codeOf(response)}).`)
  if (session.current) return ended('You ended this session.')
  say('Session ended.')
  await listSessions()
}

async function logOut(path, message) {
  const response = await authFetch(`${AUTH}/${path}`, { method: 'POST' })
  if (response.status === 204) return ended(message)
  say(`Could not log out (${await codeOf(response)}).`)
}

$('call-api').addEventListener('click', callApi)
$('logout').addEventListener('click', () => logOut('logout', 'You are signed out.'))
$('logout-all').addEventListener('click', () => logOut('logout-all', 'You are signed out everywhere.'))
await Promise.all([showMe(), listSessions()])
if (!$('app').hidden) say('Signed in.')
