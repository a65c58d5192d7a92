// Read-only, always: snapshot and check inside a network namespace leave iptables (both backends), nftables,
// addresses, routes, policy rules, sysctls and conntrack byte-identical; and the allowlist refuses a write
// command before running it.
import {chmodSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {cli, deleteNamespace, inNs, kernelSkipReason, makeNamespace, ROOT, which} from './collect-netns-setup.js'

const skip = kernelSkipReason()
if (skip) console.warn(`skipping the read-only netns tests: ${skip}`)

/** iptables-save prints the time in its comment lines; everything else is compared byte for byte. */
const undated = (s: string) => s.replace(/^# (Generated|Completed) .*\n/gm, '')

const DUMPS: readonly (readonly string[])[] = [
  ['iptables-save', '-c'],
  ['iptables-legacy-save', '-c'],
  ['ip6tables-save', '-c'],
  ['ip6tables-legacy-save', '-c'],
  ['nft', 'list', 'ruleset'],
  ['ip', 'addr', 'show'],
  ['ip', 'route', 'show', 'table', 'all'],
  ['ip', '-6', 'route', 'show', 'table', 'all'],
  ['ip', 'rule', 'show'],
  ['ip', '-6', 'rule', 'show'],
  ['sysctl', 'net'],
  ['conntrack', '-L'],
  ['cat', '/proc/net/ip_tables_names', '/proc/net/ip6_tables_names'],
  ['ls', '/proc/net'],
]

function dump(ns: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const argv of DUMPS) {
    const r = inNs(ns, argv)
    out[argv.join(' ')] = `exit ${r.status}\n${undated(r.stdout)}`
  }
  return out
}

describe.skipIf(skip !== undefined)('snapshot and check change nothing', () => {
  let ns = ''
  let work = ''
  let before: Record<string, string> = {}

  beforeAll(() => {
    ns = makeNamespace('r')
    work = mkdtempSync(join(tmpdir(), 'lds-ro-'))
    chmodSync(work, 0o711)
    before = dump(ns)
  }, 60_000)
  afterAll(() => {
    if (ns) deleteNamespace(ns)
    if (work) rmSync(work, {recursive: true, force: true})
  })

  test('the dumps are stable on their own (control)', () => {
    expect(dump(ns)).toEqual(before)
    expect(before['iptables-save -c']).toContain('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT')
    expect(before['sysctl net']).toContain('net.ipv4.ip_forward = 1')
  }, 60_000)

  test('snapshot (dir, .tar.gz, as a user) and check (live, --keep, on the snapshot) leave every dump identical', () => {
    const runs: string[][] = [
      ['snapshot', '-o', join(work, 'a')],
      ['snapshot', '-o', join(work, 'a.tar.gz'), '--json'],
      ['check', '--fail-on', 'none'],
      ['check', '--json', '--fail-on', 'none'],
      ['check', '--keep', join(work, 'k'), '--fail-on', 'none'],
      ['check', join(work, 'a'), '--fail-on', 'none'],
      ['check', join(work, 'a.tar.gz'), '--json', '--fail-on', 'none'],
    ]
    for (const args of runs) {
      const r = cli(ns, args)
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).not.toBe(null)
      expect(r.stderr, args.join(' ')).not.toMatch(/internal error/)
    }
    mkdirSync(join(work, 'u'), {mode: 0o777})
    chmodSync(join(work, 'u'), 0o777)
    const u = cli(ns, ['snapshot', '-o', join(work, 'u', 's')], {prefix: [which('setpriv')!, '--reuid=65534', '--regid=65534', '--clear-groups', which('env')!, 'HOME=/tmp']})
    expect(u.status, u.stderr).toBe(0)
    expect(dump(ns)).toEqual(before)
  }, 60_000)

  test('the allowlist refuses write commands before running them; the rules stay', () => {
    const script = `
      const {defaultRunner, NotAllowedError} = await import(${JSON.stringify(join(ROOT, 'dist/snapshot/exec.js'))})
      const tried = [['iptables', '-F'], ['iptables', '-t', 'nat', '-F'], ['iptables-legacy', '-F'], ['nft', 'flush', 'ruleset'],
        ['ip', 'route', 'flush', 'table', 'main'], ['ip', 'addr', 'flush', 'dev', 'ldsd0'], ['sysctl', '-w', 'net.ipv4.ip_forward=0'],
        ['sysctl', 'net.ipv4.ip_forward=0'], ['conntrack', '-F'], ['ipvsadm', '-C']]
      const refused = []
      for (const argv of tried) {
        try { await defaultRunner(argv); refused.push('RAN ' + argv.join(' ')) }
        catch (e) { refused.push((e instanceof NotAllowedError ? 'refused ' : 'other ' + e.message + ' ') + argv.join(' ')) }
      }
      process.stdout.write(refused.join('\\n'))`
    const r = inNs(ns, [process.execPath, '--input-type=module', '-e', script])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.split('\n').every((l) => l.startsWith('refused '))).toBe(true)
    expect(r.stdout.split('\n')).toHaveLength(10)
    expect(dump(ns)).toEqual(before)
  }, 60_000)

  test('the comparison does see a change (iptables -F run by the test itself)', () => {
    inNs(ns, ['iptables', '-F'])
    const after = dump(ns)
    expect(after['iptables-save -c']).not.toBe(before['iptables-save -c'])
    expect(after['iptables-save -c']).not.toContain('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT')
  }, 60_000)
})
