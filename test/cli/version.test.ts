import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageInfo } from '../../src/version.js'
import { buildCli, ROOT, runCli } from '../helpers/cli.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string }

t.before(() => void buildCli())

t.test('portcullis --version, -v and version print the version in package.json and exit 0', async (t) => {
  for (const args of [['--version'], ['-v'], ['version']]) {
    const run = await runCli(args)
    t.same([run.code, run.stdout, run.stderr], [0, `${pkg.version}\n`, ''], `portcullis ${args.join(' ')}`)
  }
})

t.test('portcullis version with an argument says what is wrong and exits 2', async (t) => {
  const run = await runCli(['version', '--json'])
  t.equal(run.code, 2)
  t.match(run.stderr, /Unknown option '--json'/)
})

t.test('the main help lists the version command', async (t) => {
  t.match((await runCli(['--help'])).stdout, /^ {2}version +print the version/m)
})

t.test('packageInfo reads the name and version of the package the code belongs to', async (t) => {
  t.same(packageInfo(), { name: pkg.name, version: pkg.version })
})
