// The iptables-save parser on real output: fixtures/parsers/iptables/*.iptables-save were printed by the real
// iptables-save / ip6tables-save (nf_tables and legacy backends) after loading input/*.rules with the real
// iptables-restore in a network namespace (fixtures/parsers/iptables/make.sh). Every rule is asserted field by field.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseIp, parsePrefix} from '../../src/model/ip.js'
import type {IptablesRuleset, IptRule, Match, Target} from '../../src/model/iptables.js'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'

const DIR = fileURLToPath(new URL('../../fixtures/parsers/iptables/', import.meta.url))
const read = (name: string): string => readFileSync(join(DIR, name), 'utf8')
const load = (name: string, family: 4 | 6 = 4): IptablesRuleset => parseIptablesSave(read(name), name, family)

const pfx = (s: string) => parsePrefix(s)!
const ip = (s: string) => parseIp(s)!

// expected-value helpers, in the model's own shapes
const addr = (dir: 'src' | 'dst', p: string, neg = false): Match => ({kind: 'addr', dir, neg, prefix: pfx(p)})
const iface = (dir: 'in' | 'out', name: string, neg = false): Match => ({kind: 'iface', dir, neg, name})
const proto = (name: string, n: number | 'all', neg = false): Match => ({kind: 'proto', neg, proto: n, name})
const port = (module: string, dir: 'src' | 'dst' | 'any', ranges: Array<[number, number]>, neg = false): Match => ({kind: 'port', module, dir, neg, ranges})
const flags = (mask: string[], comp: string[], neg = false): Match => ({kind: 'tcpflags', neg, mask, comp})
const state = (module: 'state' | 'conntrack', states: string[], neg = false): Match => ({kind: 'ctstate', module, neg, states} as Match)
const unknown = (module: string, ...args: string[]): Match => ({kind: 'unknown', module, args})
const jump = (chain: string): Target => ({kind: 'jump', chain})
const T = (kind: 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE' | 'NOTRACK' | 'TRACE'): Target => ({kind})

function rules(rs: IptablesRuleset, table: string, chain: string): IptRule[] {
  const c = rs.tables.get(table)?.chains.get(chain)
  if (!c) throw new Error(`no chain ${table}/${chain}`)
  return c.rules
}

/** Asserts a chain rule by rule: matches, target, 1-based index and the loc of every rule. */
function expectChain(rs: IptablesRuleset, text: string, table: string, chain: string, expected: Array<[Match[], Target | undefined]>): void {
  const got = rules(rs, table, chain)
  const lines = text.split('\n')
  expect(got.length).toBe(expected.length)
  got.forEach((r, i) => {
    const [matches, target] = expected[i]!
    expect({i, matches: r.matches, target: r.target}).toEqual({i, matches, target})
    expect(r.index).toBe(i + 1)
    expect(r.table).toBe(table)
    expect(r.chain).toBe(chain)
    expect(r.loc.file).toBe(rs.file)
    expect(r.loc.text).toBe(lines[r.loc.line - 1])
    expect(r.loc.text.startsWith(`-A ${chain} `) || r.loc.text.startsWith('[')).toBe(true)
  })
}

const tcp = proto('tcp', 6)
const udp = proto('udp', 17)

/** filter INPUT of filter-matches, as printed by the nf_tables backend (rule 9 differs in legacy) */
function filterInput(nft: boolean): Array<[Match[], Target | undefined]> {
  return [
    [[iface('in', 'lo')], T('ACCEPT')],
    [[addr('src', '10.0.0.0/8'), addr('dst', '192.168.1.1/32'), iface('in', 'eth0', true)], T('ACCEPT')],
    [[addr('src', '203.0.113.0/24', true), addr('dst', '198.51.100.7/32', true)], T('DROP')],
    [[{kind: 'fragment', neg: false}], T('DROP')],
    [[udp, {kind: 'fragment', neg: true}], T('ACCEPT')],
    [[proto('tcp', 6, true)], T('ACCEPT')],
    [[proto('gre', 47)], T('ACCEPT')],
    [[tcp, port('tcp', 'src', [[1024, 65535]]), port('tcp', 'dst', [[22, 22]])], T('ACCEPT')],
    // iptables-nft-save prints `! --dport 0:1023` as the equivalent `--dport 1024:65535`
    [[tcp, nft ? port('tcp', 'dst', [[1024, 65535]]) : port('tcp', 'dst', [[0, 1023]], true)], T('ACCEPT')],
    [[tcp, port('tcp', 'dst', [[0, 1023]])], T('DROP')],
    [[tcp, port('tcp', 'src', [[1024, 65535]])], T('ACCEPT')],
    [[tcp, flags(['FIN', 'SYN', 'RST', 'ACK'], ['SYN'])], T('ACCEPT')],
    [[tcp, flags(['FIN', 'SYN', 'RST', 'ACK'], ['SYN'], true)], T('ACCEPT')],
    [[tcp, flags(['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'], ['NONE'])], T('DROP')],
    [[tcp, flags(['SYN', 'ACK'], ['SYN'], true)], T('DROP')],
    [[udp, port('udp', 'src', [[53, 53]]), port('udp', 'dst', [[1024, 65535]])], T('ACCEPT')],
    [[proto('sctp', 132), port('sctp', 'dst', [[9000, 9000]])], T('ACCEPT')],
    [[tcp, port('multiport', 'dst', [[80, 80], [443, 443], [8000, 8080]])], jump('ldi-web')],
    [[udp, port('multiport', 'src', [[53, 53], [123, 123]], true)], T('DROP')],
    [[tcp, port('multiport', 'any', [[25, 25], [587, 587]])], T('ACCEPT')],
    [[state('state', ['RELATED', 'ESTABLISHED'])], T('ACCEPT')],
    [[state('state', ['INVALID'], true)], T('ACCEPT')],
    [[state('conntrack', ['NEW', 'UNTRACKED', 'DNAT'])], T('ACCEPT')],
    [[state('conntrack', ['SNAT'], true)], T('ACCEPT')],
    [[
      {kind: 'ctaddr', which: 'origsrc', neg: false, prefix: pfx('10.1.0.0/16')},
      {kind: 'ctaddr', which: 'origdst', neg: false, prefix: pfx('203.0.113.100')},
      {kind: 'ctaddr', which: 'replsrc', neg: false, prefix: pfx('10.1.0.10')},
      {kind: 'ctaddr', which: 'repldst', neg: true, prefix: pfx('203.0.113.0/24')},
    ], T('ACCEPT')],
    [[
      {kind: 'ctproto', neg: false, proto: 6},
      {kind: 'ctport', which: 'origsrc', neg: false, range: [1024, 65535]},
      {kind: 'ctport', which: 'origdst', neg: false, range: [80, 80]},
      {kind: 'ctport', which: 'replsrc', neg: true, range: [8080, 8080]},
      {kind: 'ctport', which: 'repldst', neg: false, range: [40000, 40100]},
    ], T('ACCEPT')],
    [[{kind: 'ctstatus', neg: false, statuses: ['SEEN_REPLY', 'ASSURED']}, {kind: 'ctdir', dir: 'REPLY'}], T('ACCEPT')],
    [[{kind: 'ctstatus', neg: true, statuses: ['EXPECTED']}, {kind: 'ctdir', dir: 'ORIGINAL'}], T('ACCEPT')],
    [[{kind: 'ctproto', neg: true, proto: 17}], T('ACCEPT')],
    [[unknown('conntrack', '--ctexpire', '10:100')], T('ACCEPT')],
    [[{kind: 'mark', module: 'mark', neg: false, value: 1, mask: 0xffffffff}], T('ACCEPT')],
    [[{kind: 'mark', module: 'mark', neg: true, value: 0x4000, mask: 0x4000}], T('ACCEPT')],
    [[{kind: 'mark', module: 'connmark', neg: false, value: 0x10, mask: 0xf0}], T('ACCEPT')],
    [[{kind: 'statistic', neg: false, mode: 'random', probability: 0.25}], T('ACCEPT')],
    [[{kind: 'statistic', neg: true, mode: 'random', probability: 0.5}], T('DROP')],
    [[{kind: 'statistic', neg: false, mode: 'nth', every: 3, packet: 1}], T('ACCEPT')],
    [[{kind: 'statistic', neg: true, mode: 'nth', every: 2, packet: 0}], T('ACCEPT')],
    [[{kind: 'comment', text: 'ldi: a "quoted" comment'}], T('ACCEPT')],
    [[{kind: 'comment', text: 'single'}], T('ACCEPT')],
    [[{kind: 'addrtype', dst: {neg: false, types: ['LOCAL']}, limitIface: 'in'}], T('ACCEPT')],
    [[{kind: 'addrtype', src: {neg: true, types: ['BROADCAST', 'MULTICAST']}}], T('ACCEPT')],
    [[
      {kind: 'iprange', dir: 'src', neg: false, from: ip('10.0.0.1'), to: ip('10.0.0.50')},
      {kind: 'iprange', dir: 'dst', neg: true, from: ip('192.168.0.1'), to: ip('192.168.0.9')},
    ], T('ACCEPT')],
    [[proto('icmp', 1), {kind: 'icmp', family: 4, neg: false, type: 8, name: '8'}], T('ACCEPT')],
    [[proto('icmp', 1), {kind: 'icmp', family: 4, neg: false, type: 3, code: 4, name: '3/4'}], T('ACCEPT')],
    [[proto('icmp', 1), {kind: 'icmp', family: 4, neg: true, type: 3, code: 3, name: '3/3'}], T('ACCEPT')],
    [[proto('icmp', 1), {kind: 'icmp', family: 4, neg: false, type: 'any', name: 'any'}], T('ACCEPT')],
    [[{kind: 'mac', neg: false, mac: '00:11:22:aa:bb:cc'}], T('ACCEPT')],
    [[{kind: 'mac', neg: true, mac: '02:00:00:00:00:01'}], T('DROP')],
    [[{kind: 'set', neg: false, name: 'ldi-set', flags: ['src']}], T('ACCEPT')],
    [[{kind: 'set', neg: true, name: 'ldi-set2', flags: ['src', 'dst']}], T('DROP')],
    [[{kind: 'set', neg: false, name: 'ldi-set', flags: ['dst']}, unknown('set', '--return-nomatch'), unknown('set', '!', '--update-counters')], T('ACCEPT')],
    [[{kind: 'limit', rate: '3/min', burst: 10}], jump('ldi-log')],
    [[{kind: 'limit', rate: '1/sec'}], T('ACCEPT')],
    [[{kind: 'recent', args: ['--set', '--name', 'ldi-ssh', '--mask', '255.255.255.255', '--rsource']}], undefined],
    [[{kind: 'recent', args: ['--update', '--seconds', '60', '--hitcount', '4', '--name', 'ldi-ssh', '--mask', '255.255.255.255', '--rsource']}], T('DROP')],
    [[{kind: 'recent', args: ['!', '--rcheck', '--seconds', '10', '--name', 'ldi-x', '--mask', '255.255.255.255', '--rdest']}], T('ACCEPT')],
    [[unknown('hashlimit', '--hashlimit-above', '10/sec', '--hashlimit-burst', '20', '--hashlimit-mode', 'srcip', '--hashlimit-name', 'ldi-h')], T('DROP')],
    [[unknown('pkttype', '--pkt-type', 'broadcast')], T('DROP')],
    [[unknown('length', '--length', '0:64')], T('ACCEPT')],
    [[unknown('ttl', '--ttl-lt', '5')], T('DROP')],
    [[unknown('tos', '--tos', '0x10/0xff')], T('ACCEPT')],
    [[unknown('u32', '--u32', '0x0>>0x16&0x3c@0xc>>0x1a&0x3f=0x10')], T('ACCEPT')],
    [[unknown('string', '--string', 'GET /x y', '--algo', 'bm')], T('DROP')],
    [[tcp, port('tcp', 'dst', [[113, 113]])], {kind: 'REJECT', with: 'tcp-reset'}],
    [[udp], {kind: 'REJECT', with: 'icmp-port-unreachable'}],
    [[], {kind: 'REJECT', with: 'icmp-host-prohibited'}],
    [[], {kind: 'REJECT', with: 'icmp-admin-prohibited'}],
    // --log-level 4 (warning) is the default: iptables-save leaves it out
    [[], {kind: 'LOG', prefix: 'ldi drop: ', flags: ['tcp-options', 'ip-options', 'uid']}],
    [[], {kind: 'LOG'}],
    [[], {kind: 'unknown', name: 'NFLOG', args: ['--nflog-group', '5']}],
    [[{kind: 'comment', text: 'count only'}], undefined],
    [[], {kind: 'goto', chain: 'ldi-web'}],
  ]
}

describe('filter table: every typed match (real iptables-save output)', () => {
  for (const backend of ['nft', 'legacy'] as const) {
    const name = `filter-matches.${backend}.iptables-save`
    const text = read(name)
    const rs = load(name)

    it(`${backend}: header, tables, chains, policies and counters`, () => {
      expect(rs.family).toBe(4)
      expect(rs.file).toBe(name)
      expect(rs.backend).toBe(backend === 'nft' ? 'nf_tables' : 'legacy')
      expect([...rs.tables.keys()]).toEqual(['filter'])
      const filter = rs.tables.get('filter')!
      expect(filter.loc.line).toBe(2)
      expect(filter.loc.text).toBe('*filter')
      expect([...filter.chains.keys()]).toEqual(['INPUT', 'FORWARD', 'OUTPUT', 'ldi-log', 'ldi-web'])
      const fwd = filter.chains.get('FORWARD')!
      expect(fwd).toMatchObject({name: 'FORWARD', table: 'filter', builtin: true, policy: 'DROP', counters: {packets: 0, bytes: 0}})
      expect(fwd.loc).toEqual({file: name, line: 4, text: ':FORWARD DROP [0:0]'})
      expect(filter.chains.get('INPUT')!.policy).toBe('ACCEPT')
      const web = filter.chains.get('ldi-web')!
      expect(web.builtin).toBe(false)
      expect(web.policy).toBeUndefined()
      expect(web.counters).toEqual({packets: 0, bytes: 0})
      expect(rs.ruleCount).toBe(text.split('\n').filter((l) => l.startsWith('-A ')).length)
      expect(rs.ruleCount).toBe(80)
    })

    it(`${backend}: filter INPUT rule by rule`, () => {
      expectChain(rs, text, 'filter', 'INPUT', filterInput(backend === 'nft'))
    })

    it(`${backend}: FORWARD, OUTPUT and the user chains`, () => {
      expectChain(rs, text, 'filter', 'FORWARD', [
        [[iface('in', 'eth0+'), iface('out', 'eth1', true)], T('ACCEPT')],
        [[unknown('physdev', '--physdev-in', 'veth0')], T('ACCEPT')],
      ])
      expectChain(rs, text, 'filter', 'OUTPUT', [
        [[{kind: 'addrtype', src: {neg: false, types: ['LOCAL']}, limitIface: 'out'}], T('ACCEPT')],
        [[unknown('owner', '--uid-owner', '0')], T('ACCEPT')],
      ])
      expectChain(rs, text, 'filter', 'ldi-log', [
        [[], {kind: 'LOG', prefix: 'ldi: ', level: '7'}],
        [[], T('DROP')],
      ])
      expectChain(rs, text, 'filter', 'ldi-web', [
        [[tcp, port('tcp', 'dst', [[80, 80]])], T('ACCEPT')],
        [[], T('RETURN')],
      ])
    })

    it(`${backend}: lists every unmodelled module, option and target with its line`, () => {
      const line = (needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1
      expect(rs.notModelled).toEqual(
        expect.arrayContaining([
          {file: name, line: line('--ctexpire'), what: '-m conntrack --ctexpire'},
          {file: name, line: line('--return-nomatch'), what: '-m set --return-nomatch'},
          {file: name, line: line('--update-counters'), what: '-m set --update-counters'},
          {file: name, line: line('-m hashlimit'), what: '-m hashlimit'},
          {file: name, line: line('-m owner'), what: '-m owner'},
          {file: name, line: line('-m physdev'), what: '-m physdev'},
          {file: name, line: line('-m u32'), what: '-m u32'},
          {file: name, line: line('-j NFLOG'), what: '-j NFLOG'},
        ]),
      )
      expect(rs.notModelled.map((n) => n.what).sort()).toEqual(
        ['-j NFLOG', '-m conntrack --ctexpire', '-m hashlimit', '-m length', '-m owner', '-m physdev', '-m pkttype',
          '-m set --return-nomatch', '-m set --update-counters', '-m string', '-m tos', '-m ttl', '-m u32'].sort(),
      )
    })
  }

  it('the input file (what was loaded) has the same chains, rules and target kinds as what iptables-save printed', () => {
    const input = load('input/filter-matches.rules')
    const saved = load('filter-matches.legacy.iptables-save')
    expect(input.ruleCount).toBe(saved.ruleCount)
    for (const chain of ['INPUT', 'FORWARD', 'OUTPUT', 'ldi-log', 'ldi-web']) {
      expect(rules(input, 'filter', chain).map((r) => r.target?.kind)).toEqual(rules(saved, 'filter', chain).map((r) => r.target?.kind))
    }
    // names as written: --icmp-type echo-request, --log-level debug
    expect(rules(input, 'filter', 'INPUT')[42]!.matches[1]).toEqual({kind: 'icmp', family: 4, neg: false, type: 8, name: 'echo-request'})
    expect(rules(input, 'filter', 'INPUT')[44]!.matches[1]).toEqual({kind: 'icmp', family: 4, neg: true, type: 3, code: 3, name: 'port-unreachable'})
    expect(rules(input, 'filter', 'ldi-log')[0]!.target).toEqual({kind: 'LOG', prefix: 'ldi: ', level: 'debug'})
  })
})

describe('nat table: DNAT, SNAT, MASQUERADE, REDIRECT (real output)', () => {
  for (const file of ['nat.nft.iptables-save', 'nat.legacy.iptables-save']) {
    it(file, () => {
      const text = read(file)
      const rs = load(file)
      expect(rs.ruleCount).toBe(17)
      expect(rs.notModelled).toEqual([])
      const vip = (p: string, n: 'tcp' | 'udp', dport?: number): Match[] =>
        [addr('dst', p), n === 'tcp' ? tcp : udp, ...(dport ? [port(n, 'dst', [[dport, dport]])] : [])]
      expectChain(rs, text, 'nat', 'PREROUTING', [
        [vip('203.0.113.100/32', 'tcp', 80), jump('ldi-lb')],
        [vip('203.0.113.101/32', 'udp'), {kind: 'DNAT', to: [{from: ip('10.1.0.20'), to: ip('10.1.0.29'), portFrom: 5000, portTo: 5009}], random: true, persistent: true}],
        [vip('203.0.113.102/32', 'tcp'), {kind: 'DNAT', to: [{portFrom: 8443, portTo: 8443}], random: false, persistent: false}],
        [[iface('in', 'eth0'), tcp, port('tcp', 'dst', [[8080, 8080]])], {kind: 'REDIRECT', ports: [3128, 3128], random: false}],
        [[iface('in', 'eth0'), tcp, port('tcp', 'dst', [[8081, 8081]])], {kind: 'REDIRECT', ports: [3128, 3130], random: true}],
        [[iface('in', 'eth0'), tcp, port('tcp', 'dst', [[8082, 8082]])], {kind: 'REDIRECT', random: false}],
      ])
      const to = (a: string, p?: number) => ({from: ip(a), to: ip(a), ...(p ? {portFrom: p, portTo: p} : {})})
      expectChain(rs, text, 'nat', 'OUTPUT', [
        [vip('203.0.113.100/32', 'tcp', 80), {kind: 'DNAT', to: [to('10.1.0.10', 8080)], random: false, persistent: false}],
        [[addr('dst', '127.0.0.1/32'), udp], undefined],
      ])
      expectChain(rs, text, 'nat', 'POSTROUTING', [
        [[addr('src', '10.1.0.0/24'), iface('out', 'eth0')], {kind: 'SNAT', to: [to('203.0.113.100')], random: false, persistent: false}],
        [[addr('src', '10.2.0.0/24'), iface('out', 'eth0'), tcp], {kind: 'SNAT', to: [{from: ip('203.0.113.100'), to: ip('203.0.113.104'), portFrom: 1024, portTo: 65535}], random: false, persistent: true}],
        [[addr('src', '10.3.0.0/24'), iface('out', 'eth0')], {kind: 'SNAT', to: [to('203.0.113.105')], random: false, persistent: false, randomFully: true}],
        [[addr('src', '10.4.0.0/24'), iface('out', 'eth0')], {kind: 'MASQUERADE', random: false}],
        [[addr('src', '10.5.0.0/24'), iface('out', 'eth0'), tcp], {kind: 'MASQUERADE', ports: [1024, 65535], random: true}],
        [[addr('src', '10.6.0.0/24'), iface('out', 'eth0')], {kind: 'MASQUERADE', random: false, randomFully: true}],
      ])
      expectChain(rs, text, 'nat', 'ldi-lb', [
        [[tcp, {kind: 'statistic', neg: false, mode: 'random', probability: 0.33333333349}], {kind: 'DNAT', to: [to('10.1.0.10', 8080)], random: false, persistent: false}],
        [[tcp, {kind: 'statistic', neg: false, mode: 'nth', every: 2, packet: 0}], {kind: 'DNAT', to: [to('10.1.0.11', 8080)], random: false, persistent: false}],
        [[], {kind: 'DNAT', to: [to('10.1.0.12')], random: false, persistent: false}],
      ])
    })
  }

  it('iptables-save -c: [packets:bytes] before each rule and on chain lines', () => {
    for (const file of ['nat.nft.counters.iptables-save', 'nat.legacy.counters.iptables-save']) {
      const rs = load(file)
      expect(rs.ruleCount).toBe(17)
      const nat = rs.tables.get('nat')!
      expect(nat.chains.get('OUTPUT')!.counters).toEqual({packets: 3, bytes: 96})
      expect(nat.chains.get('POSTROUTING')!.counters).toEqual({packets: 3, bytes: 96})
      const counted = rules(rs, 'nat', 'OUTPUT')[1]!
      expect(counted.counters).toEqual({packets: 3, bytes: 96})
      expect(counted.target).toBeUndefined()
      expect(counted.loc.text).toBe('[3:96] -A OUTPUT -d 127.0.0.1/32 -p udp')
      expect(rules(rs, 'nat', 'PREROUTING')[0]!.counters).toEqual({packets: 0, bytes: 0})
    }
  })
})

describe('raw and mangle: MARK, CONNMARK, CT, NOTRACK, TRACE (real output)', () => {
  const mark = (op: string, value: number, mask: number): Target => ({kind: 'MARK', op, value, mask} as Target)
  const cmark = (op: string, value: number, mask: number): Target => ({kind: 'CONNMARK', op, value, mask} as Target)
  const tcpd = (p: number): Match[] => [tcp, port('tcp', 'dst', [[p, p]])]
  for (const file of ['mangle-raw.nft.iptables-save', 'mangle-raw.legacy.iptables-save']) {
    it(file, () => {
      const text = read(file)
      const rs = load(file)
      expect(rs.ruleCount).toBe(23)
      expect([...rs.tables.keys()].sort()).toEqual(['mangle', 'raw'])
      expectChain(rs, text, 'raw', 'PREROUTING', [
        [[iface('in', 'lo')], {kind: 'CT', notrack: true, args: ['--notrack']}],
        [[udp, port('udp', 'dst', [[53, 53]])], T('NOTRACK')],
        [tcpd(21), {kind: 'CT', notrack: false, args: ['--helper', 'ftp']}],
        [[iface('in', 'eth1')], {kind: 'CT', notrack: false, args: ['--zone', '7']}],
      ])
      expectChain(rs, text, 'raw', 'OUTPUT', [[[addr('dst', '203.0.113.100/32')], T('TRACE')]])
      // iptables-save prints every MARK / CONNMARK op as --set-xmark value/mask (the kernel's form)
      expectChain(rs, text, 'mangle', 'PREROUTING', [
        [[], {kind: 'CONNMARK', op: 'restore', nfmask: 0xffffffff, ctmask: 0xffffffff}],
        [[{kind: 'mark', module: 'mark', neg: true, value: 0, mask: 0xffffffff}], T('ACCEPT')],
        [[addr('dst', '203.0.113.100/32'), ...tcpd(80), {kind: 'statistic', neg: false, mode: 'random', probability: 0.5}], mark('xset', 1, 0xffffffff)],
        [[addr('dst', '203.0.113.100/32'), ...tcpd(80), {kind: 'mark', module: 'mark', neg: false, value: 0, mask: 0xffffffff}], mark('xset', 2, 0xffffffff)],
        [tcpd(81), mark('xset', 0x10, 0xf0)],
        [tcpd(82), mark('xset', 0, 0xffffff00)],
        [tcpd(83), mark('xset', 0x4000, 0x4000)],
        [tcpd(84), mark('xset', 3, 0)],
        [[], {kind: 'CONNMARK', op: 'save', nfmask: 0xffffffff, ctmask: 0xffffffff}],
        [[udp], {kind: 'CONNMARK', op: 'save', nfmask: 0xff, ctmask: 0xff00}],
        [[proto('icmp', 1)], {kind: 'CONNMARK', op: 'restore', nfmask: 0xf, ctmask: 0xf}],
        [[iface('in', 'eth2')], cmark('xset', 5, 0xffffffff)],
        [[iface('in', 'eth3')], cmark('xset', 6, 0xf)],
        [[iface('in', 'eth4')], cmark('xset', 0, 0xffffff0f)],
        [[iface('in', 'eth5')], cmark('xset', 0x100, 0x100)],
        [[iface('in', 'eth6')], cmark('xset', 7, 0)],
      ])
      expectChain(rs, text, 'mangle', 'FORWARD', [[[tcp, flags(['SYN', 'RST'], ['SYN'])], {kind: 'unknown', name: 'TCPMSS', args: ['--clamp-mss-to-pmtu']}]])
      expectChain(rs, text, 'mangle', 'POSTROUTING', [[[iface('out', 'eth0')], {kind: 'unknown', name: 'DSCP', args: ['--set-dscp', '0x2e']}]])
      expect(rs.notModelled.map((n) => n.what)).toEqual(['-j TCPMSS', '-j DSCP', "-j CT --zone 7: conntrack zones are not modelled (every entry is taken as zone 0's)"])
    })
  }

  it('the ops as written (input file): --set-mark, --and-mark, --or-mark, --xor-mark, --mask', () => {
    const rs = load('input/mangle-raw.rules')
    const t = rules(rs, 'mangle', 'PREROUTING').map((r) => r.target)
    expect(t[2]).toEqual(mark('set', 1, 0xffffffff))
    expect(t[4]).toEqual(mark('set', 0x10, 0xf0))
    expect(t[5]).toEqual(mark('and', 0xff, 0xffffff00))
    expect(t[6]).toEqual(mark('or', 0x4000, 0x4000))
    expect(t[7]).toEqual(mark('xor', 3, 0))
    expect(t[8]).toEqual({kind: 'CONNMARK', op: 'save', nfmask: 0xffffffff, ctmask: 0xffffffff})
    expect(t[10]).toEqual({kind: 'CONNMARK', op: 'restore', nfmask: 0xf, ctmask: 0xf})
    expect(t[11]).toEqual(cmark('set', 5, 0xffffffff))
    expect(t[13]).toEqual(cmark('and', 0xf0, 0xffffff0f))
    expect(t[14]).toEqual(cmark('or', 0x100, 0x100))
    expect(t[15]).toEqual(cmark('xor', 7, 0))
  })
})

describe('ip6tables-save (real output)', () => {
  for (const file of ['filter6.nft.ip6tables-save', 'filter6.legacy.ip6tables-save']) {
    it(file, () => {
      const text = read(file)
      const rs = load(file, 6)
      expect(rs.family).toBe(6)
      expect(rs.ruleCount).toBe(21)
      const icmp6 = proto('ipv6-icmp', 58)
      expectChain(rs, text, 'filter', 'INPUT', [
        [[iface('in', 'lo')], T('ACCEPT')],
        [[addr('src', '2001:db8::/32'), addr('dst', '2001:db8:0:1::10/128'), tcp, port('tcp', 'dst', [[443, 443]])], T('ACCEPT')],
        [[addr('src', 'fe80::/10', true), udp, port('udp', 'src', [[547, 547]])], T('DROP')],
        [[icmp6], jump('ldi-icmp6')],
        [[state('conntrack', ['RELATED', 'ESTABLISHED']), {kind: 'ctaddr', which: 'origdst', neg: false, prefix: pfx('2001:db8::1')}], T('ACCEPT')],
        [[{kind: 'iprange', dir: 'src', neg: false, from: ip('2001:db8::1'), to: ip('2001:db8::ff')}], T('ACCEPT')],
        [[tcp, port('multiport', 'dst', [[80, 80], [443, 443]])], {kind: 'REJECT', with: 'tcp-reset'}],
        [[unknown('frag', '--fragid', '5')], T('DROP')],
        [[], {kind: 'REJECT', with: 'icmp6-port-unreachable'}],
        [[], {kind: 'REJECT', with: 'icmp6-adm-prohibited'}],
        [[], {kind: 'LOG', prefix: 'ldi6: '}],
      ])
      expectChain(rs, text, 'filter', 'ldi-icmp6', [
        [[icmp6, {kind: 'icmp', family: 6, neg: false, type: 128, name: '128'}], T('ACCEPT')],
        [[icmp6, {kind: 'icmp', family: 6, neg: false, type: 135, name: '135'}], T('ACCEPT')],
        [[icmp6, {kind: 'icmp', family: 6, neg: false, type: 1, code: 4, name: '1/4'}], T('ACCEPT')],
        [[icmp6, {kind: 'icmp', family: 6, neg: true, type: 136, name: '136'}], T('RETURN')],
        [[icmp6], T('ACCEPT')],
      ])
      const dnat = (to: object[]): Target => ({kind: 'DNAT', to, random: false, persistent: false} as Target)
      expectChain(rs, text, 'nat', 'PREROUTING', [
        [[addr('dst', '2001:db8::100/128'), tcp, port('tcp', 'dst', [[80, 80]])], dnat([{from: ip('2001:db8:1::10'), to: ip('2001:db8:1::10'), portFrom: 8080, portTo: 8080}])],
        [[addr('dst', '2001:db8::101/128'), tcp, port('tcp', 'dst', [[80, 80]])], dnat([{from: ip('2001:db8:1::20'), to: ip('2001:db8:1::29'), portFrom: 8080, portTo: 8089}])],
        [[addr('dst', '2001:db8::102/128')], dnat([{from: ip('2001:db8:1::30'), to: ip('2001:db8:1::30')}])],
      ])
      expectChain(rs, text, 'nat', 'POSTROUTING', [
        [[addr('src', '2001:db8:1::/64'), iface('out', 'eth0')], {kind: 'SNAT', to: [{from: ip('2001:db8::100'), to: ip('2001:db8::100')}], random: false, persistent: false}],
        [[addr('src', '2001:db8:2::/64'), iface('out', 'eth0')], {kind: 'MASQUERADE', random: false}],
      ])
      expect(rs.notModelled.map((n) => n.what)).toEqual(['-m frag'])
    })
  }

  it('icmpv6 type names (input file)', () => {
    const rs = load('input/filter6.rules', 6)
    const [echo, , , na] = rules(rs, 'filter', 'ldi-icmp6').map((r) => r.matches[1])
    expect(echo).toEqual({kind: 'icmp', family: 6, neg: false, type: 128, name: 'echo-request'})
    expect(na).toEqual({kind: 'icmp', family: 6, neg: true, type: 136, name: 'neighbour-advertisement'})
  })
})

describe('targets and matches the kernel here refused', () => {
  it('QUEUE: the legacy backend loads it (nf_tables refused it: queue.nft.refused.txt)', () => {
    const rs = load('queue.legacy.iptables-save')
    expect(rules(rs, 'filter', 'INPUT')[0]!.target).toEqual({kind: 'QUEUE'})
    expect(read('queue.nft.refused.txt')).toContain('RULE_APPEND failed')
  })

  it('-m ipvs: no IP_VS in this kernel, so the input is parsed (format of libxt_ipvs save)', () => {
    expect(read('ipvs.nft.refused.txt')).toContain('Extension ipvs revision 0 not supported')
    const rs = load('input/ipvs.rules')
    expect(rules(rs, 'filter', 'INPUT')[0]!.matches).toEqual([{kind: 'ipvs', neg: false, ipvs: true}])
    expect(rules(rs, 'filter', 'FORWARD').map((r) => r.matches)).toEqual([
      [{kind: 'ipvs', neg: false, ipvs: true, vproto: 6, vaddr: {neg: false, prefix: pfx('203.0.113.100/32')}, vport: {neg: false, port: 80}, vdir: 'ORIGINAL', vmethod: {neg: false, method: 'MASQ'}}],
      [{kind: 'ipvs', neg: false, ipvs: true, vaddr: {neg: true, prefix: pfx('203.0.113.0/24')}, vport: {neg: true, port: 443}, vdir: 'REPLY', vmethod: {neg: true, method: 'GATE'}, vportctl: 21, vportctlNeg: true}],
    ])
    const neg = parseIptablesSave('*filter\n-A INPUT -m ipvs ! --ipvs ! --vproto udp\nCOMMIT\n', 'x', 4)
    expect(rules(neg, 'filter', 'INPUT')[0]!.matches).toEqual([{kind: 'ipvs', neg: true, ipvs: true, vproto: 17, vprotoNeg: true}])
  })
})
