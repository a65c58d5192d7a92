import {expect, test} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import type {IpvsDest, IpvsService} from '../../src/model/ipvs.js'
import {IpvsState, hash32} from '../../src/dataplane/ipvs.js'
import {PROTO, tcpFlags, type Packet} from '../../src/dataplane/packet.js'

const ip = (s: string) => parseIp(s)!
const loc = {file: 'ipvsadm-Sn.txt', line: 1, text: ''}
const dest = (a: string, weight = 1, o: Partial<IpvsDest> = {}): IpvsDest => ({ip: ip(a), port: 80, method: 'route', weight, upperThreshold: 0, lowerThreshold: 0, loc, ...o})
const svc = (scheduler: string, dests: IpvsDest[], o: Partial<IpvsService> = {}): IpvsService => ({family: 4, proto: 'tcp', vip: ip('198.51.100.100'), port: 80, scheduler, flags: [], schedFlags: [], ops: false, dests, loc, ...o})
const syn = (client: string, sport: number): Packet => ({family: 4, src: ip(client), dst: ip('198.51.100.100'), proto: PROTO.tcp, sport, dport: 80, flags: tcpFlags('S'), mark: 0})

function picks(s: IpvsService, n: number, client = (i: number) => `203.0.113.${10 + i}`): string[] {
  const st = new IpvsState([s])
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = st.in(syn(client(i), 40000 + i), i)
    out.push(r.kind === 'forward' ? String(Number(r.conn.daddr.value & 0xffn)) : r.kind)
  }
  return out
}

test('rr takes the destinations in list order from the head; weight 0 is skipped', () => {
  expect(picks(svc('rr', [dest('10.0.0.1'), dest('10.0.0.2'), dest('10.0.0.3', 0)]), 4)).toEqual(['1', '2', '1', '2'])
})

test('wrr: the heaviest first, then by stepping the current weight down by the gcd (ip_vs_wrr_schedule)', () => {
  expect(picks(svc('wrr', [dest('10.0.0.1', 1), dest('10.0.0.2', 3)]), 4)).toEqual(['2', '2', '1', '2'])
})

test('lc / wlc use the connection counts of the snapshot and the connections they made', () => {
  const a = dest('10.0.0.1', 1, {activeConns: 5, inactiveConns: 0})
  const b = dest('10.0.0.2', 1, {activeConns: 1, inactiveConns: 0})
  expect(picks(svc('lc', [a, b]), 1)).toEqual(['2'])
  // wlc: 5*256/4 < 1*256/1 makes the heavy one cheaper
  expect(picks(svc('wlc', [{...b}, {...a, weight: 8}]), 1)).toEqual(['1'])
})

test('sh: the same client always gets the same destination', () => {
  const s = svc('sh', [dest('10.0.0.1'), dest('10.0.0.2'), dest('10.0.0.3')])
  const p1 = picks(s, 3, () => '203.0.113.77')
  expect(new Set(p1).size).toBe(1)
  expect(hash32(0xcb00714d, 8)).toBe(Math.imul(0xcb00714d, 0x61c88647) >>> 24)
})

test('persistence keeps a client on its destination across connections', () => {
  const s = svc('rr', [dest('10.0.0.1'), dest('10.0.0.2')], {persistence: 300})
  expect(picks(s, 3, () => '203.0.113.5')).toEqual(['1', '1', '1'])
})

test('a non-SYN segment without a connection is not scheduled (sloppy_tcp=0); no destination: drop', () => {
  const st = new IpvsState([svc('rr', [dest('10.0.0.1')])])
  expect(st.in({...syn('203.0.113.9', 1), flags: tcpFlags('A')}, 0).kind).toBe('pass')
  expect(new IpvsState([svc('rr', [dest('10.0.0.1', 0)])]).in(syn('203.0.113.9', 1), 0).kind).toBe('drop')
})

test('fwmark services are found by the packet mark first', () => {
  const fw = svc('rr', [dest('10.0.0.9')], {proto: 'fwmark', fwmark: 1, vip: undefined, port: undefined})
  const st = new IpvsState([svc('rr', [dest('10.0.0.1')]), fw])
  expect(st.findService({...syn('203.0.113.9', 1), mark: 1})).toBe(fw)
  expect(st.findService(syn('203.0.113.9', 1))).not.toBe(fw)
})
