// bin/run.js runs `check` without oclif when src/cli/fast-check.ts understands every argument. Whatever path a
// command line takes, what the user sees must be what the oclif command prints: the same stdout, stderr and exit code.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseFastCheckArgs} from '../../src/cli/fast-check.js'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'

const ROOT = resolve(import.meta.dirname, '../..')
const DR = join(ROOT, 'fixtures/rules/lvs-howto-29.1-dr-state-new')
const run = (args: string[], oclif: boolean) => {
  const env: NodeJS.ProcessEnv = {...process.env}
  if (oclif) env.LVSDOCTOR_NO_FAST_CHECK = '1'
  else delete env.LVSDOCTOR_NO_FAST_CHECK
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'check', ...args], {encoding: 'utf8', env, cwd: ROOT})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

describe('check argv without oclif', () => {
  test('the flags of the check command, in the forms oclif accepts', () => {
    expect(parseFastCheckArgs(['a', 'b'])).toEqual({paths: ['a', 'b'], format: 'text', failOn: 'error', ignore: [], vips: [], proto: 'tcp'})
    expect(parseFastCheckArgs(['--vip', '198.51.100.100:80', 'a', '--vip=198.51.100.100:443', '--proto', 'udp', '--client=192.0.2.7'])).toMatchObject({paths: ['a'], vips: ['198.51.100.100:80', '198.51.100.100:443'], proto: 'udp', client: '192.0.2.7'})
    expect(parseFastCheckArgs(['--json', 'a'])).toMatchObject({paths: ['a'], format: 'json'})
    expect(parseFastCheckArgs(['--format', 'markdown', 'a'])).toMatchObject({format: 'markdown'})
    expect(parseFastCheckArgs(['--format=markdown', '--json', 'a'])).toMatchObject({format: 'json'})
    expect(parseFastCheckArgs(['--fail-on=none', 'a'])).toMatchObject({failOn: 'none'})
    expect(parseFastCheckArgs(['--ignore', 'x', 'a', '--ignore=y'])).toMatchObject({paths: ['a'], ignore: ['x', 'y']})
    expect(parseFastCheckArgs(['--keep', '/tmp/k'])).toMatchObject({paths: [], keep: '/tmp/k'})
  })
  test('anything else is left to oclif', () => {
    for (const argv of [
      ['--help'], ['-h', 'a'], ['--jsn', 'a'], ['--json', '--json', 'a'], ['--json=true', 'a'], ['--format', 'xml', 'a'],
      ['--format', 'json', '--format', 'text'], ['--fail-on', 'fatal'], ['--fail-on'], ['--keep', '--json'],
      ['--keep', 'a', '--keep', 'b'], ['--ignore='], ['--', 'a'], ['-'], ['a', '-x'],
      ['--proto', 'sctp', 'a'], ['--proto', 'tcp', '--proto', 'udp', 'a'], ['--client', 'x', '--client', 'y', 'a'], ['--vip'],
    ]) expect(parseFastCheckArgs(argv), argv.join(' ')).toBeUndefined()
  })

  const dir = mkdtempSync(join(tmpdir(), 'ldi-fastcheck-'))
  const bad = join(dir, 'iptables-save.txt')
  writeFileSync(bad, '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j\nCOMMIT\n')
  const cases: string[][] = [
    ['--json', `${DR}/director`, `${DR}/rs1`, `${DR}/rs2`],
    [`${DR}/director`],
    ['--format', 'markdown', '--fail-on=none', `${DR}/director`],
    ['--json', '--ignore', 'dr-stateful-filter', '--ignore=reject-on-one-way-flow', `${DR}/director`],
    ['--ignore', 'no-such-rule', `${DR}/director`],
    ['--keep', dir, `${DR}/director`],
    [bad],
    ['--json', join(dir, 'missing')],
    ['--format', 'xml', `${DR}/director`],
    ['--jsn', `${DR}/director`],
    ['--json', '--vip', '192.0.2.100:80', '--client', '203.0.113.7:41000', `${DR}/director`, `${DR}/rs1`],
    ['--vip', '192.0.2.100', `${DR}/director`],
    ['--vip', '[2001:db8::1]:80', `${DR}/director`],
    ['--client', '203.0.113.7', `${DR}/director`],
    ['--proto', 'sctp', '--vip', '192.0.2.100:80', `${DR}/director`],
  ]
  test.each(cases)('the same stdout, stderr and exit code with and without oclif: check %s', (...args: string[]) => {
    const fast = run(args, false)
    const oclif = run(args, true)
    expect(fast).toEqual(oclif)
  })
  test('a report longer than a pipe buffer reaches a slow reader whole', () => {
    const big = join(dir, 'kube.iptables-save')
    writeFileSync(big, generateKubeProxyDump(10_000))
    const r = spawnSync('sh', ['-c', `"${process.execPath}" bin/run.js check --json --fail-on none "${big}" | (sleep 0.5; cat)`], {encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20})
    expect(r.stdout.length).toBeGreaterThan(65536 + 4096)
    expect(JSON.parse(r.stdout)).toMatchObject({tool: 'lvsdoctor', hosts: [{counts: {iptablesRules: 10_000}}]})
    expect(r.stdout).toBe(run(['--json', '--fail-on', 'none', big], true).stdout)
  })
  test('the build bundled the check path, and bin/run.js prefers it while it is not older than tsc output', () => {
    const bundle = join(ROOT, 'dist/bundle/fast-check.js')
    expect(existsSync(bundle)).toBe(true)
    expect(statSync(bundle).mtimeMs).toBeGreaterThanOrEqual(statSync(join(ROOT, 'dist/cli/fast-check.js')).mtimeMs)
  })
  test('the fast path does run: a check it parses does not load oclif', () => {
    const r = spawnSync(process.execPath, ['--trace-warnings', '-e', `
      const m = require('node:module'); const orig = m._load
      m._load = function (req, ...rest) { if (String(req).includes('@oclif/core')) { process.stderr.write('OCLIF LOADED\\n') } return orig.call(this, req, ...rest) }
      process.argv = [process.argv[0], ${JSON.stringify(join(ROOT, 'bin/run.js'))}, 'check', '--json', ${JSON.stringify(`${DR}/director`)}]
      import(${JSON.stringify(join(ROOT, 'bin/run.js'))})
    `], {encoding: 'utf8', cwd: ROOT})
    expect(r.stdout).toMatch(/"tool": "lvsdoctor"/)
    expect(r.stderr).not.toMatch(/OCLIF LOADED/)
    const r2 = spawnSync(process.execPath, ['-e', `
      const m = require('node:module'); const orig = m._load
      m._load = function (req, ...rest) { if (String(req).includes('@oclif/core')) { process.stderr.write('OCLIF LOADED\\n') } return orig.call(this, req, ...rest) }
      process.argv = [process.argv[0], ${JSON.stringify(join(ROOT, 'bin/run.js'))}, 'check', '--help']
      import(${JSON.stringify(join(ROOT, 'bin/run.js'))})
    `], {encoding: 'utf8', cwd: ROOT})
    expect(r2.stderr).toMatch(/OCLIF LOADED/)
  })
})
