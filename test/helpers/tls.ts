/**
 * A certificate authority of the test's own, made with the openssl CLI: a CA certificate that
 * clients are told to trust (curl --cacert, Node's `ca`, Chromium's NSS database) and server
 * certificates it signs, as an operator's internal CA or Let's Encrypt would hand them over.
 */
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Names every test certificate carries: Chromium is pointed at portcullis.test by a host rule. */
export const TEST_NAMES = ['localhost', 'portcullis.test', '127.0.0.1']

export interface Issued {
  certFile: string
  keyFile: string
  /** The PEM certificate, to compare with what a server presents. */
  pem: string
}

export interface TestCa {
  dir: string
  /** The CA certificate (PEM), for clients to trust. */
  caFile: string
  ca: string
  /** A server certificate for `names`, signed by this CA, as `<name>.pem` and `<name>.key`. */
  issue(name: string, opts?: { names?: string[]; days?: number }): Promise<Issued>
}

/** The curve OpenSSL and every browser support; an EC key takes milliseconds to make, RSA far longer. */
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

export async function makeCa(dir: string, subject = 'Portcullis Test CA'): Promise<TestCa> {
  const caFile = join(dir, 'ca.pem')
  const caKey = join(dir, 'ca.key')
  await run('openssl', [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    `/CN=${subject}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  let serial = 1
  return {
    dir,
    caFile,
    ca: await readFile(caFile, 'utf8'),
    async issue(name, opts = {}) {
      const names = opts.names ?? TEST_NAMES
      const keyFile = join(dir, `${name}.key`)
      const certFile = join(dir, `${name}.pem`)
      const csr = join(dir, `${name}.csr`)
      const ext = join(dir, `${name}.ext`)
      const san = names.map((n) => (/^[\d.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',')
      await writeFile(
        ext,
        `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
      )
      await run('openssl', ['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${names[0]}/O=${name}`])
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        '-set_serial',
        String(serial++),
        '-days',
        String(opts.days ?? 1),
        '-out',
        certFile,
        '-extfile',
        ext,
      ])
      return { certFile, keyFile, pem: await readFile(certFile, 'utf8') }
    },
  }
}

export interface CurlAnswer {
  status: number
  /** '1.1' or '2' */
  version: string
  headers: Record<string, string>
  body: string
}

/**
 * One request with the curl CLI trusting only `caFile` (no --insecure): `args` pick the
 * protocol (--http2, --http1.1) and anything else. curl's own failure (a refused handshake)
 * rejects with its message.
 */
export async function curl(url: string, caFile: string, args: string[] = []): Promise<CurlAnswer> {
  const { stdout } = await run('curl', ['-sS', '--cacert', caFile, '-D', '-', '-w', '\n%{json}', ...args, url], { maxBuffer: 16 * 1024 * 1024 })
  const lastNewline = stdout.lastIndexOf('\n')
  const meta = JSON.parse(stdout.slice(lastNewline + 1)) as { http_version: string; response_code: number }
  const text = stdout.slice(0, lastNewline)
  // With --http2 a 100 Continue or two header blocks never occur here: the last head is the answer's.
  const split = text.indexOf('\r\n\r\n')
  const headers: Record<string, string> = {}
  for (const line of text.slice(0, split).split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: meta.response_code, version: meta.http_version, headers, body: text.slice(split + 4) }
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
export function servedFingerprint(port: number, caPem: string, servername = 'localhost'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca: caPem, ALPNProtocols: ['http/1.1'] }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.end()
      resolve(fingerprint)
    })
    socket.once('error', reject)
  })
}

/** The fingerprint as servedFingerprint gives it, of a PEM certificate. */
export const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256
