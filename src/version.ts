/**
 * The package's own name and version, read from its package.json at run time.
 *
 * package.json sits one level above this module in every layout the code runs from: src/ in a
 * checkout (tests), dist/ after a build, and node_modules/<name>/dist/ once installed. Reading
 * it (rather than importing it as JSON) keeps it out of the compiled tree, whose root is src/.
 */
import { readFileSync } from 'node:fs'

interface PackageInfo {
  readonly name: string
  readonly version: string
}

let info: PackageInfo | undefined

/** `{ name, version }` of the installed package; read once. */
export function packageInfo(): PackageInfo {
  if (info === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Partial<PackageInfo>
    info = Object.freeze({ name: String(pkg.name ?? 'portcullis'), version: String(pkg.version ?? 'unknown') })
  }
  return info
}

/** The version in package.json, e.g. `0.1.0`. */
export const version = (): string => packageInfo().version
