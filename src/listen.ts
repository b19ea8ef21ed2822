/**
 * What an operator is told about a listening socket: the URL to open once it listens, and,
 * when its address cannot be taken, which setting to change.
 */
import type { AddressInfo } from 'node:net'

/** Addresses that a browser on this machine reaches as `localhost`. */
const LOCAL = new Set(['0.0.0.0', '::', '127.0.0.1'])

/** `127.0.0.1:8080`, `[::1]:8080` */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * The URL to open on this machine. `localhost` rather than an IP address: browsers keep Secure
 * cookies (and so the `__Host-` access cookie) over plain http on `localhost` only, so a
 * sign-in at http://127.0.0.1 would seem to work and then fail (docs/web.md, "Cookies").
 */
export function openUrl(address: AddressInfo, scheme: 'http' | 'https'): string {
  return `${scheme}://${LOCAL.has(address.address) ? `localhost:${address.port}` : hostPort(address.address, address.port)}`
}

const BECAUSE: Record<string, (where: string, setting: string, file: string) => string> = {
  EADDRINUSE: (where, setting, file) => `${where} is already in use by another process: stop that process, or choose another ${setting} in ${file}`,
  EACCES: (where, setting, file) => `${where}: permission denied (ports below 1024 need privileges): choose a ${setting} of 1024 or more in ${file}`,
  EADDRNOTAVAIL: (where, setting, file) => `${where}: no such address on this machine: change ${setting.replace(/port$/, 'host')} in ${file}`,
}

/** Thrown when the gateway cannot listen: its message is the whole story, on one line. */
export class ListenError extends Error {
  readonly code: string
  constructor(message: string, code: string, options: ErrorOptions) {
    super(message, options)
    this.name = 'ListenError'
    this.code = code
  }
}

/**
 * `listen`'s error in words an operator can act on: the address, and the setting (`server.port`)
 * in the file to change. An error without a known code is returned as it is.
 */
export function listenError(err: unknown, where: { host: string; port: number; setting: string; file: string }): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code
  const explain = code === undefined ? undefined : BECAUSE[code]
  if (explain === undefined) return err
  return new ListenError(explain(hostPort(where.host, where.port), where.setting, where.file), code!, { cause: err })
}
