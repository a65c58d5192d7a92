// check with ipset-save.txt: a FORWARD drop for a blacklist set on a DNAT balancer (fixtures/rules/dnat-forward-drop-fixed,
// with `-m set --match-set lis-black src -j DROP` before its accepts). Without the sets the drop can only be assumed
// to match; with them check decides from the entries: no finding when the client is not listed, an error that
// assumes nothing when it is.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {loadScenario} from './helpers.js'

const CLIENT = '203.0.113.10'
const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp(CLIENT)!, clientPort: 40000}

function withBlacklist(h: HostSnapshot, ipset?: string): HostSnapshot {
  const raw = new Map(h.raw)
  raw.set('iptables-save.txt', h.raw.get('iptables-save.txt')!.replace(':OUTPUT ACCEPT [0:0]\n', ':OUTPUT ACCEPT [0:0]\n-A FORWARD -m set --match-set lis-black src -j DROP\n'))
  if (ipset !== undefined) raw.set('ipset-save.txt', ipset)
  return hostFromFiles(h.name, h.source, raw)
}

const hosts = (ipset?: string) => {
  const [d, rs] = loadScenario('dnat-forward-drop-fixed')
  return [withBlacklist(d!, ipset), rs!]
}
const summary = (hs: HostSnapshot[]) => runRules({hosts: hs, flows: [flow]}).map((f) => `${f.rule} ${f.severity} ${f.host}${/assumed|cannot decide/.test(JSON.stringify(f)) ? ' (assumed)' : ''}`)

describe('check decides -m set from ipset-save.txt', () => {
  test('without ipset-save.txt the blacklist drop is assumed to match (said so)', () => {
    const s = summary(hosts())
    expect(s.length).toBeGreaterThan(0)
    expect(s.every((x) => x.endsWith('(assumed)'))).toBe(true)
  })

  test('the client is not in the set: the assumed finding is gone', () => {
    const hs = hosts('create lis-black hash:net family inet hashsize 1024 maxelem 65536\nadd lis-black 198.18.0.0/15\nadd lis-black 203.0.113.0/24\nadd lis-black 203.0.113.10 nomatch\n')
    expect(hs[0]!.errors).toEqual([])
    expect(summary(hs)).toEqual([])
  })

  test('the client is in the set: an error that assumes nothing, naming the rule', () => {
    const hs = hosts('create lis-black hash:net family inet hashsize 1024 maxelem 65536\nadd lis-black 203.0.113.0/24\n')
    const f = runRules({hosts: hs, flows: [flow]})
    expect(f.map((x) => `${x.rule} ${x.severity}`)).toEqual(['filter-blocks-vip error'])
    expect(JSON.stringify(f)).not.toMatch(/assumed to match|cannot decide/)
    expect(f[0]!.evidence.map((e) => e.text)).toContain('-A FORWARD -m set --match-set lis-black src -j DROP')
  })
})
