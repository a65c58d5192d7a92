// -m rpfilter's reverse path check (dataplane/rpfilter.ts, after ipt_rpfilter.c) on a host with two interfaces:
// eth0 10.0.0.2/24 (default route) and eth1 192.168.1.2/24, a host route back to 203.0.113.10 via eth1, and a
// fwmark rule sending mark 1 to a table with an unreachable default. Kernel agreement: test/kernel/rpfilter.kernel.test.ts.
import {describe, expect, it} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import {parseIpAddr, parseIpRoute, parseIpRule} from '../../src/snapshot/parsers/ip-json.js'
import {rpfilterPasses, rpfilterText} from '../../src/dataplane/rpfilter.js'
import {evalMatch, ruleMatches, type Assumption, type MatchEnv} from '../../src/dataplane/netfilter.js'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import type {RoutingTables} from '../../src/dataplane/routing.js'
import type {Packet} from '../../src/dataplane/packet.js'
import type {Match} from '../../src/model/iptables.js'

const iface = (index: number, name: string, ip: string) => ({ifindex: index, ifname: name, flags: ['UP'], mtu: 1500, operstate: 'UP', link_type: 'ether', addr_info: [{family: 'inet', local: ip, prefixlen: 24, scope: 'global', label: name}]})
const interfaces = parseIpAddr(JSON.stringify([
  {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', addr_info: [{family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo'}]},
  iface(2, 'eth0', '10.0.0.2'),
  iface(3, 'eth1', '192.168.1.2'),
]), 'ip-addr.json')
const routes = parseIpRoute(JSON.stringify([
  {dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: []},
  {dst: '203.0.113.10', gateway: '192.168.1.1', dev: 'eth1', flags: []},
  {dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.2', flags: []},
  {dst: '192.168.1.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.2', flags: []},
  {type: 'unreachable', dst: 'default', table: '100', flags: []},
  {type: 'local', dst: '10.0.0.2', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '10.0.0.2', flags: []},
  {type: 'local', dst: '192.168.1.2', dev: 'eth1', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '192.168.1.2', flags: []},
  {type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: []},
]), 'ip-route.json')
const rules = parseIpRule(JSON.stringify([
  {priority: 0, src: 'all', table: 'local'},
  {priority: 100, src: 'all', fwmark: '0x1', table: '100'},
  {priority: 32766, src: 'all', table: 'main'},
  {priority: 32767, src: 'all', table: 'default'},
]), 'ip-rule.json')
const rt: RoutingTables = {interfaces, routes, rules}

const rpf = (o: Partial<Omit<Extract<Match, {kind: 'rpfilter'}>, 'kind'>> = {}): Extract<Match, {kind: 'rpfilter'}> => ({kind: 'rpfilter', loose: false, validMark: false, acceptLocal: false, invert: false, ...o})
const pkt = (src: string, mark = 0): Packet => ({family: 4, src: parseIp(src)!, dst: parseIp('10.0.0.2')!, proto: 6, sport: 40000, dport: 80, mark} as Packet)

describe('rpfilterPasses', () => {
  it('passes a source whose route back leaves by the input device (strict)', () => {
    expect(rpfilterPasses(rt, rpf(), pkt('198.51.100.7'), 'eth0')).toBe(true)
  })
  it('fails a source whose route back leaves by another device, unless --loose', () => {
    expect(rpfilterPasses(rt, rpf(), pkt('203.0.113.10'), 'eth0')).toBe(false)
    expect(rpfilterPasses(rt, rpf({loose: true}), pkt('203.0.113.10'), 'eth0')).toBe(true)
    expect(rpfilterPasses(rt, rpf(), pkt('203.0.113.10'), 'eth1')).toBe(true)
  })
  it('uses the mark only with --validmark', () => {
    expect(rpfilterPasses(rt, rpf(), pkt('198.51.100.7', 1), 'eth0')).toBe(true)
    expect(rpfilterPasses(rt, rpf({validMark: true}), pkt('198.51.100.7', 1), 'eth0')).toBe(false)
    expect(rpfilterPasses(rt, rpf({validMark: true}), pkt('198.51.100.7', 0), 'eth0')).toBe(true)
  })
  it('takes a local source only with --accept-local (and still on its device unless --loose)', () => {
    expect(rpfilterPasses(rt, rpf(), pkt('192.168.1.2'), 'eth1')).toBe(false)
    expect(rpfilterPasses(rt, rpf({acceptLocal: true}), pkt('192.168.1.2'), 'eth1')).toBe(true)
    expect(rpfilterPasses(rt, rpf({acceptLocal: true}), pkt('192.168.1.2'), 'eth0')).toBe(false)
  })
  it('passes packets received on lo and broadcasts from 0.0.0.0', () => {
    expect(rpfilterPasses(rt, rpf(), pkt('203.0.113.10'), 'lo')).toBe(true)
    expect(rpfilterPasses(rt, rpf(), {...pkt('0.0.0.0'), dst: parseIp('255.255.255.255')!}, 'eth0')).toBe(true)
    // a unicast destination: 0.0.0.0 is looked up like any source (the default route leaves by eth0)
    expect(rpfilterPasses(rt, rpf(), {...pkt('0.0.0.0'), dst: parseIp('10.0.0.2')!}, 'eth1')).toBe(false)
    expect(rpfilterPasses(rt, rpf(), {...pkt('0.0.0.0'), dst: parseIp('255.255.255.255')!}, 'eth1')).toBe(true)
  })
  it('prints the match as iptables-save does', () => {
    expect(rpfilterText(rpf({loose: true, invert: true}))).toBe('-m rpfilter --loose --invert')
  })
})

describe('the interpreter decides -m rpfilter', () => {
  const ruleset = parseIptablesSave('*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m rpfilter --invert -j DROP\n-A PREROUTING -m rpfilter -j ACCEPT\nCOMMIT\n', 'iptables-save.txt', 4)
  const [dropRule, acceptRule] = ruleset.tables.get('raw')!.chains.get('PREROUTING')!.rules
  const env = (o: Partial<MatchEnv>): MatchEnv => ({addrType: () => 'UNICAST', random: () => 0, ...o})
  it('from the routes: --invert matches the packet that fails the check', () => {
    const a: Assumption[] = []
    expect(ruleMatches(dropRule!, pkt('203.0.113.10'), env({iif: 'eth0', reverseRoutes: rt}), a)).toBe(true)
    expect(ruleMatches(dropRule!, pkt('198.51.100.7'), env({iif: 'eth0', reverseRoutes: rt}), a)).toBe(false)
    expect(a).toEqual([])
    expect(evalMatch(acceptRule!.matches[0]!, pkt('203.0.113.10'), env({iif: 'eth1', reverseRoutes: rt}))).toBe('match')
  })
  it('an input device the host does not have, or an IPv6 packet, is undecided: taken to pass, and said', () => {
    const a: Assumption[] = []
    expect(ruleMatches(dropRule!, pkt('203.0.113.10'), env({iif: '(unknown)', reverseRoutes: rt}), a)).toBe(false)
    const v6 = {...pkt('203.0.113.10'), family: 6, src: parseIp('2001:db8::10')!, dst: parseIp('2001:db8::2')!} as Packet
    expect(ruleMatches(dropRule!, v6, env({iif: 'eth0', reverseRoutes: rt}), a)).toBe(false)
    expect(a.map((x) => x.what)).toEqual([
      "assumed to pass the reverse path check of -m rpfilter --invert: the input device (unknown) is not one of the host's",
      'assumed to pass the reverse path check of -m rpfilter --invert: the IPv6 reverse path check is not modelled',
    ])
  })
  it('without routes the packet is taken to pass, and that is said', () => {
    const a: Assumption[] = []
    expect(ruleMatches(dropRule!, pkt('203.0.113.10'), env({iif: 'eth0'}), a)).toBe(false)
    expect(ruleMatches(acceptRule!, pkt('203.0.113.10'), env({iif: 'eth0'}), a)).toBe(true)
    expect(a.map((x) => x.what)).toEqual([
      'assumed to pass the reverse path check of -m rpfilter --invert: the snapshot has no routes (ip-route.json)',
      'assumed to pass the reverse path check of -m rpfilter: the snapshot has no routes (ip-route.json)',
    ])
  })
})
