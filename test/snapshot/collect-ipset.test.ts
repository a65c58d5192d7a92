// snapshot collects ipset-save.txt with `ipset save` only when an iptables dump uses a set (-m set, -j SET) and
// the ip_set module is loaded (/sys/module/ip_set beside /proc: asking would load it). Fake runner and /proc.
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {collect} from '../../src/snapshot/collect.js'
import {isAllowed, type RunResult} from '../../src/snapshot/exec.js'

const work = mkdtempSync(join(tmpdir(), 'lis-collect-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))
let seq = 0

/** A /proc (and a /sys beside it, with or without ip_set) under a directory of its own. */
function root(o: {ipset: boolean}): string {
  const r = join(work, String(++seq))
  mkdirSync(join(r, 'proc/net'), {recursive: true})
  mkdirSync(join(r, 'proc/sys/net/ipv4'), {recursive: true})
  if (o.ipset) mkdirSync(join(r, 'sys/module/ip_set/parameters'), {recursive: true})
  return join(r, 'proc')
}

const SAVE_WITH_SET = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m set --match-set lis-black src -j DROP
COMMIT
`
const SAVE_PLAIN = SAVE_WITH_SET.replace('-m set --match-set lis-black src ', '-s 10.0.0.1/32 ')
const IPSET = 'create lis-black hash:ip family inet hashsize 1024 maxelem 65536\nadd lis-black 10.0.0.66\n'

function runner(save: string, ipset: 'ok' | 'missing' | 'fails') {
  const calls: string[] = []
  const r = async (argv: readonly string[]): Promise<RunResult> => {
    const key = argv.join(' ')
    calls.push(key)
    const base = {argv: [...argv], stderr: '', durationMs: 1, timedOut: false, timeoutMs: 5000, maxBuffer: false}
    if (key === 'iptables -V') return {...base, stdout: Buffer.from('iptables v1.8.9 (nf_tables)\n'), exitCode: 0}
    if (key === 'iptables-save') return {...base, stdout: Buffer.from(save), exitCode: 0}
    if (key === 'ipset save' && ipset === 'ok') return {...base, stdout: Buffer.from(IPSET), exitCode: 0}
    if (key === 'ipset save' && ipset === 'fails') return {...base, stdout: Buffer.alloc(0), stderr: 'ipset v7.17: Kernel error received: Operation not permitted\n', exitCode: 1}
    return {...base, stdout: Buffer.alloc(0), exitCode: null, errorCode: 'ENOENT'}
  }
  return Object.assign(r, {calls})
}

const quiet = {progress: 'silent' as const, host: 'lis-h', keepalivedPath: '/nonexistent/keepalived.conf'}

describe('snapshot: ipset-save.txt', () => {
  test('a rule uses a set and ip_set is loaded: ipset save is run and its output written verbatim', async () => {
    const run = runner(SAVE_WITH_SET, 'ok')
    const c = await collect({...quiet, runner: run, proc: root({ipset: true})})
    expect(c.files.get('ipset-save.txt')!.toString()).toBe(IPSET)
    expect(c.commands['ipset-save.txt']).toEqual({argv: ['ipset', 'save'], exitCode: 0, durationMs: 1, stderr: ''})
    expect(c.gaps.filter((g) => g.file === 'ipset-save.txt')).toEqual([])
    expect(run.calls.every((k) => isAllowed(k.split(' ')))).toBe(true)
  })

  test('no rule uses a set: ipset is not asked, nothing recorded', async () => {
    const run = runner(SAVE_PLAIN, 'ok')
    const c = await collect({...quiet, runner: run, proc: root({ipset: true})})
    expect(run.calls).not.toContain('ipset save')
    expect(c.files.has('ipset-save.txt')).toBe(false)
    expect(c.commands['ipset-save.txt']).toBeUndefined()
  })

  test('ip_set not loaded: not run (it would load the module), recorded as a gap', async () => {
    const run = runner(SAVE_WITH_SET, 'ok')
    const c = await collect({...quiet, runner: run, proc: root({ipset: false})})
    expect(run.calls).not.toContain('ipset save')
    expect(c.files.has('ipset-save.txt')).toBe(false)
    expect(c.gaps.filter((g) => g.file === 'ipset-save.txt').map((g) => g.gap)).toEqual(['ip_set is not loaded in this kernel (no /sys/module/ip_set), so there are no sets; ipset not run because it would load the module'])
  })

  test('ipset missing or failing: no file, a gap that says why', async () => {
    const missing = await collect({...quiet, runner: runner(SAVE_WITH_SET, 'missing'), proc: root({ipset: true})})
    expect(missing.files.has('ipset-save.txt')).toBe(false)
    expect(missing.gaps.find((g) => g.file === 'ipset-save.txt')?.gap).toMatch(/ipset is not installed/)
    const fails = await collect({...quiet, runner: runner(SAVE_WITH_SET, 'fails'), proc: root({ipset: true})})
    expect(fails.files.has('ipset-save.txt')).toBe(false)
    expect(fails.commands['ipset-save.txt']?.exitCode).toBe(1)
    expect(fails.gaps.find((g) => g.file === 'ipset-save.txt')?.gap).toMatch(/Operation not permitted/)
  })
})
