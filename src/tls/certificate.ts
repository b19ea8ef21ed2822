/**
 * The certificate chain and private key `server.tls` names, read and checked as a pair before
 * any client sees them: a half-copied file, a key from another certificate, or an expired
 * certificate is refused with the file and the reason, so the gateway can keep serving the
 * pair it has (src/tls/certificates.ts) and the operator learns what to fix from one log line.
 */
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContextOptions } from 'node:tls'

export interface TlsFiles {
  certFile: string
  keyFile: string
}

/** A certificate chain and its key, checked to belong together. */
export interface Certificate {
  readonly cert: Buffer
  readonly key: Buffer
  /** The leaf certificate's subject and alternative names, as OpenSSL prints them. */
  readonly subject: string
  readonly names: string | undefined
  /** Milliseconds since the epoch. */
  readonly notAfter: number
  /** SHA-256 of the leaf, colon-separated hex (what `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint: string
  /** Of both files' bytes: an unchanged pair is not loaded again. */
  readonly digest: string
}

/** Why a certificate or key file cannot be served; `file` is the one to fix. */
export class CertificateError extends Error {
  readonly file: string
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`${file}: ${reason}`, options)
    this.name = 'CertificateError'
    this.file = file
  }
}

/**
 * TLS 1.0 and 1.1 are deprecated (RFC 8996) and every browser has dropped them. Node's default
 * is already TLS 1.2, but an operator's NODE_OPTIONS (--tls-min-v1.0) could lower a default;
 * an explicit minimum cannot be lowered that way.
 */
const MIN_VERSION = 'TLSv1.2'

/**
 * The secure-context options of a server serving `certificate`: the same at start and at every
 * rotation, since setSecureContext replaces all of them (a rotation must not lose the minimum).
 */
export function contextOptions(certificate: Certificate): SecureContextOptions {
  return { cert: certificate.cert, key: certificate.key, minVersion: MIN_VERSION }
}

export async function readCertificate(files: TlsFiles, now = Date.now()): Promise<Certificate> {
  const cert = await readOrFail(files.certFile, 'certificate')
  const key = await readOrFail(files.keyFile, 'private key')
  let leaf: X509Certificate
  try {
    // The first certificate of the chain is the server's own; the rest go to clients as they are.
    leaf = new X509Certificate(cert)
  } catch (err) {
    throw new CertificateError(
      files.certFile,
      'not a PEM certificate (expected "-----BEGIN CERTIFICATE-----"; a file still being written looks like this too)',
      {
        cause: err,
      },
    )
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    const encrypted = /ENCRYPTED|passphrase/i.test(`${key.subarray(0, 64).toString('latin1')} ${(err as Error).message}`)
    throw new CertificateError(
      files.keyFile,
      encrypted ? 'an encrypted private key: give an unencrypted PEM key (`openssl pkey -in KEY -out KEY.plain`)' : 'not a PEM private key',
      { cause: err },
    )
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CertificateError(
      files.keyFile,
      `this private key does not belong to the certificate in ${files.certFile} (${leaf.subject.replaceAll('\n', ', ')})`,
    )
  }
  const notAfter = Date.parse(leaf.validTo)
  if (notAfter <= now) throw new CertificateError(files.certFile, `the certificate expired on ${new Date(notAfter).toISOString()}`)
  try {
    // What the server will do with them: a chain OpenSSL will not load fails here, not on a client's handshake.
    createSecureContext({ cert, key, minVersion: MIN_VERSION })
  } catch (err) {
    throw new CertificateError(files.certFile, `OpenSSL refuses this certificate and key: ${(err as Error).message}`, { cause: err })
  }
  return {
    cert,
    key,
    subject: leaf.subject.replaceAll('\n', ', '),
    names: leaf.subjectAltName,
    notAfter,
    fingerprint: leaf.fingerprint256,
    digest: createHash('sha256').update(cert).update('\0').update(key).digest('hex'),
  }
}

async function readOrFail(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message
    throw new CertificateError(file, `cannot read the ${what}: ${reason}`, { cause: err })
  }
}
