import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
const run = (args: string[], env: Record<string, string> = {}) =>
  execFileSync(process.execPath, [join(ROOT, 'bin/run.js'), ...args], {encoding: 'utf8', env: {...process.env, ...env}})

describe('root help', () => {
  test('the build rendered it (npm test builds first)', () => {
    expect(existsSync(join(ROOT, 'dist/root-help.txt'))).toBe(true)
  })
  test('the cached root help is exactly what oclif renders', () => {
    const cached = run(['--help'])
    const oclif = run(['--help'], {LVSDOCTOR_NO_HELP_CACHE: '1'})
    expect(cached).toBe(oclif)
    for (const c of ['capture', 'check', 'explain', 'rules', 'snapshot', 'trace']) expect(cached).toMatch(new RegExp(`^  ${c} `, 'm'))
  })
  test('a command help is not served from the cache', () => {
    expect(run(['check', '--help'])).toMatch(/--fail-on/)
  })
})
