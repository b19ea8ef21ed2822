/**
 * `portcullis keys generate [--alg ES256|EdDSA|RS256] [--kid KID] [--out DIR]`:
 * writes DIR/KID.pem, a PKCS#8 PEM private key, readable by its owner only.
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export type GeneratedAlg = 'ES256' | 'EdDSA' | 'RS256'
const ALGS: readonly GeneratedAlg[] = ['ES256', 'EdDSA', 'RS256']

export function isGeneratedAlg(value: string): value is GeneratedAlg {
  return (ALGS as readonly string[]).includes(value)
}

/** A default kid that sorts by time, like the `2026-11` in SPEC.md's example. */
export function defaultKid(now = new Date()): string {
  return now.toISOString().slice(0, 10)
}

export function generatePem(alg: GeneratedAlg): string {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 3072 })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

/**
 * Writes the key and returns its path. Refuses to overwrite an existing key; with `ifMissing`
 * an existing one is kept and its path returned (an init step that runs at every start).
 */
export async function writeKey(alg: GeneratedAlg, kid: string, outDir: string, opts: { ifMissing?: boolean } = {}): Promise<string> {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(kid)) throw new Error(`invalid kid "${kid}": use letters, digits, ".", "_" and "-"`)
  await mkdir(outDir, { recursive: true, mode: 0o700 })
  const path = resolve(join(outDir, `${kid}.pem`))
  // 'wx': never clobber a key that may still be signing tokens somewhere.
  await writeFile(path, generatePem(alg), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
    if (!opts.ifMissing) {
      // The code stays EEXIST so that callers can tell this from any other failure.
      throw Object.assign(
        new Error(`${path} already exists and is never overwritten: choose another --kid, or remove the file first (--if-missing keeps it)`, {
          cause: err,
        }),
        { code: 'EEXIST' },
      )
    }
  })
  return path
}
