import {expect, test} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import {ConntrackTable} from '../../src/dataplane/conntrack.js'
import {applyNat, bindNat, natInitialized, nullBinding} from '../../src/dataplane/nat.js'
import {PROTO, tcpFlags, type Packet} from '../../src/dataplane/packet.js'

const ip = (s: string) => parseIp(s)!
const pkt = (src: string, sp: number, dst: string, dp: number, f: string): Packet => ({family: 4, src: ip(src), dst: ip(dst), proto: PROTO.tcp, sport: sp, dport: dp, flags: tcpFlags(f), mark: 0})

test('DNAT is bound on the first packet and applied to later packets both ways', () => {
  const t = new ConntrackTable()
  const syn = pkt('203.0.113.10', 40000, '198.51.100.100', 80, 'S')
  const a = t.packetIn(syn, 0)
  const e = a.entry!
  expect(natInitialized(e, 'dst')).toBe(false)
  const r = bindNat(e, 'dst', {kind: 'DNAT', to: [{from: ip('10.1.0.10'), portFrom: 8080}], random: false, persistent: false}, {})
  expect(r.ok).toBe(true)
  expect(natInitialized(e, 'dst')).toBe(true)
  const out = applyNat(syn, e, 'ORIGINAL', 'dst')
  expect([out.dst, out.dport]).toEqual([ip('10.1.0.10'), 8080])
  nullBinding(e, 'src')
  t.confirm(e)
  // the reply from the realserver finds the entry by the rewritten reply tuple and is un-DNATed at a source hook
  const synack = pkt('10.1.0.10', 8080, '203.0.113.10', 40000, 'SA')
  const b = t.packetIn(synack, 1)
  expect(b.dir).toBe('REPLY')
  expect(b.state).toBe('ESTABLISHED')
  const back = applyNat(synack, b.entry!, 'REPLY', 'src')
  expect([back.src, back.sport]).toEqual([ip('198.51.100.100'), 80])
  // ... and not at a destination hook
  expect(applyNat(synack, b.entry!, 'REPLY', 'dst')).toEqual(synack)
})

test('SNAT / MASQUERADE rewrite the source one way and the destination of replies', () => {
  const t = new ConntrackTable()
  const syn = pkt('127.0.0.1', 40000, '10.1.0.10', 3197, 'S')
  const e = t.packetIn(syn, 0).entry!
  const r = bindNat(e, 'src', {kind: 'MASQUERADE', random: false}, {masqAddr: ip('10.1.0.1')})
  expect(r).toMatchObject({ok: true})
  expect(applyNat(syn, e, 'ORIGINAL', 'src').src).toEqual(ip('10.1.0.1'))
  t.confirm(e)
  const reply = pkt('10.1.0.10', 3197, '10.1.0.1', 40000, 'SA')
  const b = t.packetIn(reply, 1)
  expect(b.dir).toBe('REPLY')
  expect(applyNat(reply, b.entry!, 'REPLY', 'dst').dst).toEqual(ip('127.0.0.1'))
})

test('MASQUERADE without an address on the out device cannot bind', () => {
  const e = new ConntrackTable().packetIn(pkt('10.0.0.1', 1, '10.0.0.2', 2, 'S'), 0).entry!
  expect(bindNat(e, 'src', {kind: 'MASQUERADE', random: false}, {}).ok).toBe(false)
})
