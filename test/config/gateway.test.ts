import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { checkConfigFile, loadGatewayConfig } from '../../src/config/gateway.js'
import { ConfigError } from '../../src/config/problems.js'
import { file } from './fixtures/load.js'

const pem = (type: 'ec' | 'rsa', bits = 2048) => {
  const { privateKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: bits })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
}

const withKeys = (algorithm: string, keyFile: string) =>
  file('auth:', '  keys:', `    algorithm: ${algorithm}`, '    signing:', `      - kid: k1`, `        privateKeyFile: ${keyFile}`)

t.test('check-config accepts a file whose key files load', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': withKeys('ES256', 'keys/k1.pem'), keys: { 'k1.pem': pem('ec') } })
  t.same(await checkConfigFile(join(dir, 'gateway.yaml'), {}), [])
})

t.test('check-config reports a key file problem at the setting that names the file', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': withKeys('RS256', 'small.pem'), 'small.pem': pem('rsa', 1024) })
  const path = join(dir, 'gateway.yaml')
  t.same(await checkConfigFile(path, {}), [`${path}:6:25 auth.keys.signing[0].privateKeyFile: RSA keys must be at least 2048 bits (got 1024)`])
})

t.test('check-config reports a missing key file', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': withKeys('ES256', 'nope.pem') })
  const [line] = await checkConfigFile(join(dir, 'gateway.yaml'), {})
  t.match(line, /gateway\.yaml:6:25 auth\.keys\.signing\[0\]\.privateKeyFile: cannot read .*nope\.pem: ENOENT$/)
})

t.test('check-config lists schema problems as FILE:LINE:COLUMN path: message', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': file('server:', '  port: x', '  hots: y') })
  const path = join(dir, 'gateway.yaml')
  t.same(await checkConfigFile(path, {}), [
    `${path}:2:9 server.port: must be an integer, not a string (got "x")`,
    `${path}:3:3 server.hots: unknown key "hots"; did you mean "host"?`,
  ])
})

t.test('loadGatewayConfig throws a ConfigError whose formatted lines name the file', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': file('routes: 5') })
  const path = join(dir, 'gateway.yaml')
  const err = await loadGatewayConfig(path, {}).catch((e: unknown) => e)
  t.type(err, ConfigError)
  t.same((err as ConfigError).formatted, [`${path}:1:9 routes: must be a list, not a number (got 5)`])
})

t.test('loadGatewayConfig hands warnings to onWarning and returns the config', async (t) => {
  const dir = t.testdir({ 'gateway.yaml': file('auth:', '  accessTokenTtl: 1h', '  refreshTokenTtl: 1h') })
  const warnings: string[] = []
  const config = await loadGatewayConfig(join(dir, 'gateway.yaml'), {}, (w) => warnings.push(w))
  t.equal(config.auth.refreshTokenTtl, 3_600_000)
  t.match(warnings, [/gateway\.yaml:3:20 auth\.refreshTokenTtl: is not longer than accessTokenTtl/])
})

t.test('the shipped gateway.yaml is valid with an empty environment', async (t) => {
  const shipped = fileURLToPath(new URL('../../gateway.yaml', import.meta.url))
  t.same(await checkConfigFile(shipped, {}), [])
})
