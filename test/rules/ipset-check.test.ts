// check with ipset-save.txt: a FORWARD drop for a blacklist set on a DNAT balancer (fixtures/rules/dnat-forward-drop-fixed,
// with `-m set --match-set lis-black src -j DROP` before its accepts). Without the sets the drop can only be assumed
// to match; with them check decides from the entries: no finding when the client is not listed, an error that
// assumes nothing when it is.
import fc from 'fast-check'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp, type IpAddr} from '../../src/model/ip.js'
import {addrClass, type Scope} from '../../src/rules/engine/classes.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {HostView} from '../../src/rules/engine/host.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
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

describe('address classes count the entries of the sets the rules look up', () => {
  const rules = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
    '-A FORWARD -m set --match-set lis-n dst -j DROP',
    '-A FORWARD -m set --match-set lis-ipport dst,dst -j REJECT',
    '-A FORWARD -m set ! --match-set lis-list dst -j ACCEPT',
    '-A FORWARD -m set --match-set lis-absent dst -j DROP',
    'COMMIT', ''].join('\n')
  const ipsets = ['create lis-n hash:net', 'add lis-n 10.1.0.0/24', 'add lis-n 10.1.0.5 nomatch', 'add lis-n 10.1.0.64/26',
    'create lis-ipport hash:ip,port', 'add lis-ipport 10.1.0.7,tcp:80', 'add lis-ipport 10.1.0.200,udp:80',
    'create lis-bip bitmap:ip range 10.1.0.0/16 netmask 28', 'add lis-bip 10.1.0.96',
    'create lis-list list:set', 'add lis-list lis-bip', ''].join('\n')
  const scope: Scope = {hooks: ['FORWARD'], nat: false}
  const v4 = (n: number): IpAddr => ({family: 4, value: BigInt(n >>> 0)})
  const addr = fc.integer({min: 0, max: 300}).map((o) => v4(0x0a010000 + o))

  test('two destinations of one class meet the same fate at FORWARD; the set entries tell them apart', () => {
    const h = new HostView(hostFromFiles('h', 'test', new Map([['iptables-save.txt', rules], ['ipset-save.txt', ipsets]])))
    const run = (dst: IpAddr) => {
      const r = h.fw!.runHook('FORWARD', flowPacket({src: parseIp(CLIENT)!, sport: 40000, dst, dport: 80, proto: 'tcp'}, 'SYN'), h.env({iif: 'eth0', oif: 'eth1', ct: ctView('NEW')}), false)
      return `${r.verdict}|${r.decision?.loc.line ?? ''}|${r.assumptions.length}`
    }
    fc.assert(
      fc.property(addr, addr, (a, b) => {
        if (addrClass(h, scope, 'dst', a) === addrClass(h, scope, 'dst', b)) expect(run(a)).toBe(run(b))
      }),
      {numRuns: 400, seed: 11},
    )
    // the nomatch host, the /26, the listed host:port and the bitmap's /28 network each make their own class
    const cls = (o: number) => addrClass(h, scope, 'dst', v4(0x0a010000 + o))
    expect(new Set([cls(1), cls(5), cls(65), cls(7), cls(97)]).size).toBe(5)
    expect(cls(97)).toBe(cls(100))
    expect(run(v4(0x0a010005))).not.toBe(run(v4(0x0a010001)))
  })

  test('without ipset-save.txt no rule reads the address: one class', () => {
    const h = new HostView(hostFromFiles('h', 'test', new Map([['iptables-save.txt', rules]])))
    expect(addrClass(h, scope, 'dst', v4(0x0a010005))).toBe(addrClass(h, scope, 'dst', v4(0x0a010001)))
  })
})
