/**
 * Private keys at rest in the store: AES-256-GCM (authenticated: a changed byte, a wrong key or
 * a sealed key moved under another kid fails to open, never decrypts to garbage), with a key
 * derived from auth.keys.managed.encryptionKey by HKDF-SHA256 (RFC 5869), a random 96-bit IV per
 * seal (NIST SP 800-38D §8.2.2) and the kid as additional authenticated data.
 *
 * What it protects against is reading the store (a dump, a backup, a replica, MONITOR): not
 * writing to it, which already lets one forge sessions.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

const IV_BYTES = 12
const TAG_BYTES = 16
// Fixed: the input is a secret of 32 bytes or more, and a salt stored beside the keys would
// add nothing against someone who reads both. The info string names the use and its version.
const SALT = Buffer.from('portcullis')
const INFO = Buffer.from('portcullis managed signing keys v1')

/** The AES-256 key for `encryptionKey` (derived once per keyring, not per seal). */
export function sealingKey(encryptionKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(encryptionKey, 'utf8'), SALT, INFO, 32))
}

/** base64url of IV ‖ ciphertext ‖ tag. */
export function seal(key: Buffer, kid: string, plaintext: Buffer): string {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(kid, 'utf8'))
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('base64url')
}

/** The plaintext, or null when `sealed` was not sealed for `kid` with this key (or was altered). */
export function unseal(key: Buffer, kid: string, sealed: string): Buffer | null {
  const raw = Buffer.from(sealed, 'base64url')
  if (raw.length <= IV_BYTES + TAG_BYTES) return null
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES })
  decipher.setAAD(Buffer.from(kid, 'utf8')).setAuthTag(raw.subarray(raw.length - TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()])
  } catch {
    return null
  }
}
