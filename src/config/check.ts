/** The shape of a semantic check (see checks.ts), and helpers the checks share. */
import type { ConfigPath } from './problems.js'
import type { GatewayConfig } from './schema.js'

export interface Report {
  problem(path: ConfigPath, message: string): void
  /** Allowed but probably not meant; the config still loads. */
  warning(path: ConfigPath, message: string): void
  /** Whether the schema found nothing wrong at, above or under `path`: its types can be trusted. */
  clean(path: ConfigPath): boolean
}

export interface Check {
  /** The settings it reads; it is skipped when one of them, or what holds it, has a problem. */
  needs: ConfigPath[]
  run(config: GatewayConfig, report: Report): void
}

/** Reports every entry after the first that has the same `keyOf` as an earlier one. */
export function reportDuplicates<T>(
  items: readonly T[],
  keyOf: (item: T, index: number) => string | undefined,
  onDuplicate: (index: number, firstIndex: number, key: string) => void,
): void {
  const seen = new Map<string, number>()
  items.forEach((item, i) => {
    const key = keyOf(item, i)
    if (key === undefined) return
    const first = seen.get(key)
    if (first === undefined) seen.set(key, i)
    else onDuplicate(i, first, key)
  })
}
