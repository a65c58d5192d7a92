import {describe, expect, test} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import {ConntrackTable, DEFAULT_CT_SETTINGS, TCP_CONNTRACKS, ctSettingsFrom, tcpTransition} from '../../src/dataplane/conntrack.js'
import {PROTO, tcpFlags, type Packet} from '../../src/dataplane/packet.js'

const C = parseIp('203.0.113.10')!
const S = parseIp('10.1.0.10')!
const tcp = (from: 'c' | 's', flags: string): Packet =>
  from === 'c'
    ? {family: 4, src: C, dst: S, proto: PROTO.tcp, sport: 40000, dport: 80, flags: tcpFlags(flags), mark: 0}
    : {family: 4, src: S, dst: C, proto: PROTO.tcp, sport: 80, dport: 40000, flags: tcpFlags(flags), mark: 0}

/** Runs packets through one table, confirming each entry as the last hook would. */
function run(t: ConntrackTable, pkts: Packet[], now = 0) {
  return pkts.map((p, i) => {
    const a = t.packetIn(p, now + i)
    if (a.entry) t.confirm(a.entry)
    return a
  })
}

describe('the TCP state table (nf_conntrack_proto_tcp.c tcp_conntracks)', () => {
  test('a FIN or a bare ACK in SYN_SENT is invalid; SYN/ACK from the reply side moves to SYN_RECV', () => {
    expect(tcpTransition('ORIGINAL', 'fin', 'SYN_SENT')).toBe('IV')
    expect(tcpTransition('ORIGINAL', 'ack', 'SYN_SENT')).toBe('IV')
    expect(tcpTransition('REPLY', 'synack', 'SYN_SENT')).toBe('SYN_RECV')
    expect(tcpTransition('ORIGINAL', 'synack', 'SYN_SENT')).toBe('IV')
    expect(tcpTransition('REPLY', 'ack', 'SYN_SENT')).toBe('IG')
    expect(tcpTransition('ORIGINAL', 'ack', 'NONE')).toBe('ESTABLISHED')
    expect(tcpTransition('ORIGINAL', 'fin', 'NONE')).toBe('IV')
    expect(tcpTransition('REPLY', 'syn', 'TIME_WAIT')).toBe('SYN_SENT')
  })
  test('every row has ten columns', () => {
    for (const dir of ['ORIGINAL', 'REPLY'] as const) for (const row of Object.values(TCP_CONNTRACKS[dir])) expect(row).toHaveLength(10)
  })
})

describe('ConntrackTable', () => {
  test('a whole connection seen both ways: NEW, ESTABLISHED, through to TIME_WAIT', () => {
    const t = new ConntrackTable()
    const r = run(t, [tcp('c', 'S'), tcp('s', 'SA'), tcp('c', 'A'), tcp('c', 'PA'), tcp('s', 'PA'), tcp('c', 'FA'), tcp('s', 'FA'), tcp('c', 'A')])
    expect(r.map((a) => a.state)).toEqual(['NEW', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED'])
    expect(r.map((a) => a.tcpAfter)).toEqual(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'FIN_WAIT', 'LAST_ACK', 'TIME_WAIT'])
    expect(r[2]!.entry!.status.has('ASSURED')).toBe(true)
    expect(r[1]!.dir).toBe('REPLY')
  })
  test('one direction only (an LVS-DR director): the client ACK after the SYN is INVALID', () => {
    const t = new ConntrackTable()
    const r = run(t, [tcp('c', 'S'), tcp('c', 'A')])
    expect(r[0]!.state).toBe('NEW')
    expect(r[1]!.state).toBe('INVALID')
    expect(r[1]!.reason).toMatch(/SYN_SENT/)
    // the entry stays, unreplied
    const e = t.lookup({src: C, dst: S, proto: PROTO.tcp, sport: 40000, dport: 80}, 2)!.entry
    expect(e.status.has('SEEN_REPLY')).toBe(false)
  })
  test('loose pickup: a mid-stream ACK creates an entry (NEW) with loose=1, is INVALID with loose=0', () => {
    expect(new ConntrackTable().packetIn(tcp('c', 'PA'), 0)).toMatchObject({state: 'NEW', tcpAfter: 'ESTABLISHED'})
    const strict = new ConntrackTable({...DEFAULT_CT_SETTINGS, tcpLoose: false})
    expect(strict.packetIn(tcp('c', 'PA'), 0).state).toBe('INVALID')
  })
  test('a FIN without an entry cannot start one (LVS-HOWTO 29.16: the FIN is not NEW)', () => {
    const a = new ConntrackTable().packetIn(tcp('c', 'FA'), 0)
    expect(a.state).toBe('INVALID')
    expect(a.entry).toBeUndefined()
  })
  test('an unconfirmed entry is not in the table; a confirmed one is found from both tuples', () => {
    const t = new ConntrackTable()
    const a = t.packetIn(tcp('c', 'S'), 0)
    expect(t.lookup({src: C, dst: S, proto: PROTO.tcp, sport: 40000, dport: 80}, 0)).toBeUndefined()
    t.confirm(a.entry!)
    expect(t.lookup({src: S, dst: C, proto: PROTO.tcp, sport: 80, dport: 40000}, 0)?.dir).toBe('REPLY')
  })
  test('timeouts come from the sysctls, with the time passed in', () => {
    const settings = ctSettingsFrom((k) => (k === 'net.netfilter.nf_conntrack_tcp_timeout_syn_sent' ? '5' : undefined))
    expect(settings.tcpTimeouts.SYN_SENT).toBe(5)
    expect(settings.tcpTimeouts.ESTABLISHED).toBe(432000)
    const t = new ConntrackTable(settings)
    run(t, [tcp('c', 'S')], 100)
    expect(t.entries(104)).toHaveLength(1)
    expect(t.entries(105)).toHaveLength(0)
    // after expiry the SYN/ACK finds nothing: INVALID
    expect(t.packetIn(tcp('s', 'SA'), 106).state).toBe('INVALID')
  })
  test('UDP: NEW, then ESTABLISHED once the reply was seen', () => {
    const t = new ConntrackTable()
    const u = (src: typeof C, dst: typeof C, sp: number, dp: number): Packet => ({family: 4, src, dst, proto: PROTO.udp, sport: sp, dport: dp, mark: 0})
    const r = run(t, [u(C, S, 5000, 53), u(S, C, 53, 5000), u(C, S, 5000, 53)])
    expect(r.map((a) => a.state)).toEqual(['NEW', 'ESTABLISHED', 'ESTABLISHED'])
  })
})
