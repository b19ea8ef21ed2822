/**
 * Settings the session and flood benchmarks add to setup.ts's gatewayConfig(): lines under
 * `auth:` (identity, limits on sessions) and top-level blocks (`rateLimits:`). Inserted as
 * text, since gatewayConfig() returns YAML that run.ts also uses unchanged.
 */
export interface ExtraSettings {
  /** Lines placed under `auth:`, without indentation. */
  auth?: string[]
  /** Top-level YAML appended after the routes. */
  top?: string
}

export function withSettings(yaml: string, extra: ExtraSettings): string {
  let out = yaml
  if (extra.auth?.length) {
    const at = out.indexOf('\nauth:\n')
    if (at < 0) throw new Error('gateway config without an auth: block')
    const head = at + '\nauth:\n'.length
    out = out.slice(0, head) + extra.auth.map((l) => `  ${l}\n`).join('') + out.slice(head)
  }
  return extra.top ? `${out.trimEnd()}\n${extra.top.trimEnd()}\n` : out
}
