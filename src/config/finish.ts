/** The last steps from validated data to a config generation. */
import { dirname, resolve } from 'node:path'
import type { GatewayConfig } from './schema.js'

/**
 * Key files are named relative to the config file, so a config directory can move as a whole
 * (a config built in code, with no file, resolves against the working directory).
 */
export function resolveKeyFiles(config: GatewayConfig, source: string | null): void {
  const base = source === null ? process.cwd() : dirname(source)
  for (const entry of config.auth.keys?.signing ?? []) {
    if ('privateKeyFile' in entry) entry.privateKeyFile = resolve(base, entry.privateKeyFile)
    if ('publicKeyFile' in entry) entry.publicKeyFile = resolve(base, entry.publicKeyFile)
  }
  const tls = config.server.tls
  if (tls) {
    tls.certFile = resolve(base, tls.certFile)
    tls.keyFile = resolve(base, tls.keyFile)
  }
}

/**
 * A config generation is replaced whole on reload, never changed: in-flight requests keep
 * reading the generation they started with, so a shared object must not move under them.
 */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
