/**
 * Settings a reload cannot apply: they shape things built once per process (the listening
 * socket, the store, the revocation sync). A reload keeps their running values and says so
 * in the log, so an operator never believes a change took effect when it did not.
 */
import type { GatewayConfig } from '../config/schema.js'

type Section = 'server' | 'store' | 'auth' | 'revocation'

/** [section, key], or [section] for a whole section. */
const RESTART_ONLY: readonly (readonly [Section, string?])[] = [
  ['server', 'host'],
  ['server', 'port'],
  ['server', 'workers'],
  ['server', 'maxHeaderSize'],
  ['server', 'requestTimeout'],
  ['server', 'headersTimeout'],
  ['server', 'keepAliveTimeout'],
  ['server', 'demoUpstream'],
  ['server', 'admin'],
  ['store'],
  // The store keeps a revocation entry for accessTokenTtl + clockTolerance, fixed when it is
  // built: letting tokens live longer than that would let a revoked token pass again once its
  // entry expired. So token lifetimes change together with the store, at a restart.
  ['auth', 'accessTokenTtl'],
  ['auth', 'clockTolerance'],
  ['auth', 'maxSessionsPerUser'],
  ['revocation', 'resyncInterval'],
]

const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y)
const read = (c: GatewayConfig, [section, key]: readonly [Section, string?]) =>
  key === undefined ? c[section] : (c[section] as Record<string, unknown>)[key]

/**
 * server.tls is half live: its files are read again on every reload (src/tls/certificates.ts),
 * but HTTPS itself, and HTTP/2 offered by ALPN, are the kind of server the process listens with.
 */
function tlsChange(running: GatewayConfig, next: GatewayConfig): 'server.tls' | 'server.tls.http2' | null {
  const [was, is] = [running.server.tls, next.server.tls]
  if ((was === undefined) !== (is === undefined)) return 'server.tls'
  return was && is && was.http2 !== is.http2 ? 'server.tls.http2' : null
}

/** Dotted names of the restart-only settings that differ between `running` and `next`. */
export function restartOnlyChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  const changed = RESTART_ONLY.filter((p) => !same(read(running, p), read(next, p))).map((p) => p.join('.'))
  const tls = tlsChange(running, next)
  return tls === null ? changed : [...changed, tls]
}

/** `next` with every restart-only setting at its running value: the config that really applies. */
export function withRunningSettings(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const out = { ...next } as Record<Section, unknown> & GatewayConfig
  for (const path of RESTART_ONLY) {
    const [section, key] = path
    if (key === undefined) out[section] = running[section] as never
    else out[section] = { ...(out[section] as object), [key]: read(running, path) } as never
  }
  const tls = tlsChange(running, next)
  if (tls === 'server.tls') out.server = { ...out.server, tls: running.server.tls } as GatewayConfig['server']
  else if (tls === 'server.tls.http2') out.server = { ...out.server, tls: { ...next.server.tls!, http2: running.server.tls!.http2 } }
  return Object.freeze(out)
}
