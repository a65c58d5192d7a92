// -m connmark and CONNMARK without a conntrack entry (raw before conntrack, or a NOTRACKed packet): xt_connmark finds
// no entry, so the match is false whatever its `!` and the target does nothing. Kernel (a namespace, raw OUTPUT rules
// for a UDP packet to 127.0.0.1:9, in this order: MARK 5; connmark --mark 0; connmark ! --mark 1; CONNMARK
// --restore-mark; mark --mark 5): counters 1, 0, 0, 1, 1; mangle OUTPUT's `connmark --mark 0` (after conntrack): 1.
import {describe, expect, it} from 'vitest'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {runChain, type MatchEnv} from '../../src/dataplane/netfilter.js'
import {parseIp} from '../../src/model/ip.js'
import type {Packet} from '../../src/dataplane/packet.js'
import type {CtView} from '../../src/dataplane/packet.js'

const rules = ['-j MARK --set-xmark 0x5/0xffffffff', '-m connmark --mark 0x0 -j ACCEPT', '-m connmark ! --mark 0x1 -j ACCEPT', '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff', '-m mark --mark 0x5 -j DROP']
const table = parseIptablesSave(`*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules.map((r) => `-A OUTPUT -p udp -m udp --dport 9 ${r}\n`).join('')}COMMIT\n`, 'iptables-save.txt', 4).tables.get('raw')!
const pkt = {family: 4, src: parseIp('127.0.0.1')!, dst: parseIp('127.0.0.1')!, proto: 17, sport: 40000, dport: 9, mark: 0} as Packet
const env = (ct?: CtView): MatchEnv => ({oif: 'lo', ct, addrType: () => 'LOCAL', random: () => 0})

describe('connmark without a conntrack entry', () => {
  it('matches nothing (not even negated) and restores nothing: the MARK stays and decides', () => {
    const r = runChain(table, 'OUTPUT', pkt, env(undefined))
    expect(r.verdict).toBe('DROP')
    expect(r.rule?.loc.line).toBe(8)
    expect(r.packet.mark).toBe(5)
  })
  it('an UNTRACKED (NOTRACK) packet likewise', () => {
    const r = runChain(table, 'OUTPUT', pkt, env({state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set(), mark: 0}))
    expect(r.verdict).toBe('DROP')
  })
  it('with an entry (mark 0) the first connmark match takes the packet', () => {
    const r = runChain(table, 'OUTPUT', pkt, env({state: 'NEW', dir: 'ORIGINAL', status: new Set(), mark: 0}))
    expect(r.verdict).toBe('ACCEPT')
    expect(r.rule?.loc.line).toBe(5)
  })
})

// The rules after a NOTRACK in the same raw chain see the packet UNTRACKED (kernel, raw OUTPUT, a UDP packet to
// 127.0.0.1:9: --ctstate INVALID 1; CT --notrack 1; --ctstate UNTRACKED 1; --ctstate INVALID 0; MARK 1; --ctstate UNTRACKED 1).
describe('a NOTRACK in the walk', () => {
  const rs = ['-m conntrack --ctstate INVALID -j MARK --set-xmark 0x1/0xffffffff', '-j CT --notrack', '-m conntrack --ctstate INVALID -j DROP', '-j MARK --set-xmark 0x3/0xffffffff', '-m conntrack --ctstate UNTRACKED -j ACCEPT', '-j DROP']
  const t = parseIptablesSave(`*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rs.map((r) => `-A OUTPUT -p udp -m udp --dport 9 ${r}\n`).join('')}COMMIT\n`, 'iptables-save.txt', 4).tables.get('raw')!
  it('makes the later rules see it untracked (a MARK in between changes nothing of that)', () => {
    const r = runChain(t, 'OUTPUT', pkt, env(undefined))
    expect(r.verdict).toBe('ACCEPT')
    expect(r.rule?.loc.line).toBe(8)
    expect(r.packet.mark).toBe(3)
    expect(r.notrack).toBe(true)
  })
  it('leaves a packet that has an entry as it is (a looped-back packet)', () => {
    const r = runChain(t, 'OUTPUT', pkt, env({state: 'NEW', dir: 'ORIGINAL', status: new Set(), mark: 0}))
    expect(r.verdict).toBe('DROP')
    expect(r.rule?.loc.line).toBe(9)
  })
})
