// The detectors on synthetic flows: each symptom and the near misses that must stay quiet.
import {describe, expect, it} from 'vitest'
import {icmpError, tcpPacket, type TcpSpec} from '../../src/capture/craft.js'
import {DECODE, DecodedPacket, decodeFrame} from '../../src/capture/decode.js'
import {SymptomDetector, type Symptom} from '../../src/capture/symptoms.js'
import {parseEndpoint, type Endpoint} from '../../src/model/ip.js'
import {ACK, conversation, FIN, PSH, RST, SYN} from './helpers.js'

type Step = {t: number; p: Uint8Array}

function run(steps: Step[], vips: Endpoint[] = []): Symptom[] {
  const det = new SymptomDetector({vips})
  const d = new DecodedPacket()
  steps.forEach((s, i) => {
    expect(decodeFrame(101, s.p, 0, s.p.length, d)).toBe(DECODE.OK)
    d.index = i + 1
    d.time = s.t
    det.packet(d)
  })
  return det.finish()
}

const C = '192.0.2.1'
const V = '198.51.100.10'
const R = '10.0.0.5'
const tcp = (t: number, s: TcpSpec): Step => ({t, p: tcpPacket(s)})
const cv = (t: number, flags: number, seq: number, ack = 0, payload = 0): Step => tcp(t, {src: C, dst: V, sport: 40000, dport: 80, flags, seq, ack, payload})
const vc = (t: number, flags: number, seq: number, ack = 0, payload = 0): Step => tcp(t, {src: V, dst: C, sport: 80, dport: 40000, flags, seq, ack, payload})
const kinds = (s: Symptom[]): string[] => s.map((x) => x.kind)
const vip = [parseEndpoint(`${V}:80`)!]

describe('symptoms', () => {
  it('a healthy conversation, twice on the same tuple, is quiet', () => {
    const a = conversation(C, V, 40000, 80, 1000).map((x) => ({t: x.time, p: x.packet}))
    const b = conversation(C, V, 40000, 80, 1010).map((x) => ({t: x.time, p: x.packet}))
    expect(run([...a, ...b])).toEqual([])
  })

  it('reply-bypasses-director: SYN/ACK from the realserver acknowledging the SYN to the VIP', () => {
    const s = run([cv(0, SYN, 100), tcp(0.001, {src: R, dst: C, sport: 8080, dport: 40000, flags: SYN | ACK, seq: 7, ack: 101}),
      tcp(0.002, {src: C, dst: R, sport: 40000, dport: 8080, flags: RST, seq: 101}), cv(1, SYN, 100)], vip)
    expect(kinds(s)).toEqual(['reply-bypasses-director'])
    expect(s[0]).toMatchObject({from: `${R}:8080`, vip: `${V}:80`, flow: {client: `${C}:40000`, server: `${V}:80`}})
    expect(s[0]!.packets.map((p) => p.n)).toEqual([1, 2, 3])
  })

  it('does not call an unrelated SYN/ACK a bypass when neither the ack nor a VIP says so', () => {
    const steps = [cv(0, SYN, 100), tcp(0.001, {src: R, dst: C, sport: 8080, dport: 40000, flags: SYN | ACK, seq: 7, ack: 555})]
    expect(kinds(run(steps))).not.toContain('reply-bypasses-director')
    expect(kinds(run(steps, vip))).toContain('reply-bypasses-director')
  })

  it('syn-unanswered: retransmitted, or the capture went on; a last lone SYN is not judged', () => {
    expect(kinds(run([cv(0, SYN, 1), cv(1, SYN, 1)]))).toEqual(['syn-unanswered'])
    expect(kinds(run([cv(0, SYN, 1), tcp(1.5, {src: C, dst: '192.0.2.99', sport: 1, dport: 2, flags: ACK, seq: 1})]))).toEqual(['syn-unanswered'])
    expect(run([cv(0, SYN, 1)])).toEqual([])
  })

  it('a DR director sees SYN and the client ACKs but never the SYN/ACK: not unanswered', () => {
    expect(run([cv(0, SYN, 1), cv(0.01, ACK, 2, 501), cv(0.02, PSH | ACK, 2, 501, 10), cv(2, FIN | ACK, 12, 520)])).toEqual([])
  })

  it('a SYN refused with RST is not unanswered', () => {
    expect(run([cv(0, SYN, 1), vc(0.001, RST | ACK, 0, 2), cv(3, SYN, 1)])).toEqual([])
  })

  it('synack-unacked', () => {
    expect(kinds(run([cv(0, SYN, 1), vc(0.001, SYN | ACK, 500, 2), vc(1, SYN | ACK, 500, 2)]))).toEqual(['synack-unacked'])
    expect(run([cv(0, SYN, 1), vc(0.001, SYN | ACK, 500, 2), cv(0.002, ACK, 2, 501)])).toEqual([])
  })

  it('fin-unanswered needs three retransmissions never acknowledged', () => {
    const est = [cv(0, SYN, 1), vc(0.001, SYN | ACK, 500, 2), cv(0.002, ACK, 2, 501)]
    const fins = (n: number): Step[] => Array.from({length: n}, (_, i) => cv(1 + i * 0.4, FIN | ACK, 2, 501))
    expect(kinds(run([...est, ...fins(4)]))).toEqual(['fin-unanswered'])
    expect(run([...est, ...fins(3)])).toEqual([])
    expect(run([...est, ...fins(4), vc(3, ACK, 501, 3)])).toEqual([])
    const s = run([...est, ...fins(5)])
    expect(s[0]!.packets.map((p) => p.n)).toEqual([4, 8])
    expect(s[0]!.message).toMatch(/client's FIN was sent 5 times/)
  })

  it('icmp-unreachable-established and -new, with the rules of each code', () => {
    const est = [cv(0, SYN, 1), vc(0.001, SYN | ACK, 500, 2), cv(0.002, ACK, 2, 501)]
    const data = tcpPacket({src: C, dst: V, sport: 40000, dport: 80, flags: PSH | ACK, seq: 2, ack: 501, payload: 10})
    const s = run([...est, {t: 0.003, p: data}, {t: 0.004, p: icmpError('203.0.113.1', C, 3, 13, data)}])
    expect(kinds(s)).toEqual(['icmp-unreachable-established'])
    expect(s[0]).toMatchObject({icmp: 'admin-prohibited', from: '203.0.113.1', rules: ['reject-on-one-way-flow', 'dr-stateful-filter', 'nat-stateful-output']})
    const host = run([...est, {t: 0.004, p: icmpError('203.0.113.1', C, 3, 1, data)}])
    expect(host[0]).toMatchObject({icmp: 'host-unreachable', rules: []})
    // PMTU (fragmentation needed) is not a failure
    expect(run([...est, {t: 0.004, p: icmpError('203.0.113.1', C, 3, 4, data)}])).toEqual([])
    const syn = tcpPacket({src: C, dst: V, sport: 40000, dport: 80, flags: SYN, seq: 1})
    const refused = run([{t: 0, p: syn}, {t: 0.001, p: icmpError(V, C, 3, 3, syn)}, {t: 1, p: syn}], vip)
    expect(kinds(refused)).toEqual(['icmp-unreachable-new'])
    expect(refused[0]).toMatchObject({rules: ['filter-blocks-vip'], vip: `${V}:80`})
  })

  it('ICMPv6 admin-prohibited on an established IPv6 flow', () => {
    const c6 = '2001:db8::1'
    const v6 = '2001:db8::10'
    const t = (time: number, s: Partial<TcpSpec> & {flags: number}, back = false): Step =>
      tcp(time, {src: back ? v6 : c6, dst: back ? c6 : v6, sport: back ? 443 : 5000, dport: back ? 5000 : 443, seq: 1, ...s})
    const data = tcpPacket({src: c6, dst: v6, sport: 5000, dport: 443, flags: PSH | ACK, seq: 2, ack: 9, payload: 5})
    const s = run([t(0, {flags: SYN}), t(0.001, {flags: SYN | ACK, seq: 8, ack: 2}, true), t(0.002, {flags: ACK, seq: 2, ack: 9}),
      {t: 0.01, p: icmpError('2001:db8::fe', c6, 1, 1, data)}])
    expect(kinds(s)).toEqual(['icmp-unreachable-established'])
    expect(s[0]!.flow).toEqual({proto: 'tcp', client: '[2001:db8::1]:5000', server: '[2001:db8::10]:443'})
  })

  it('rst-after-handshake from the server side only', () => {
    const est = [cv(0, SYN, 1), vc(0.001, SYN | ACK, 500, 2), cv(0.002, ACK, 2, 501)]
    expect(kinds(run([...est, cv(0.003, PSH | ACK, 2, 501, 10), vc(0.004, RST, 501)]))).toEqual(['rst-after-handshake'])
    // a health check closing with SO_LINGER 0 resets from the client side
    expect(run([...est, cv(0.003, RST | ACK, 2, 501)])).toEqual([])
    // after the server answered, a reset is the application's business
    expect(run([...est, cv(0.003, PSH | ACK, 2, 501, 10), vc(0.004, PSH | ACK, 501, 12, 100), vc(0.005, RST, 601)])).toEqual([])
    // long after the handshake it is not "right after"
    expect(run([...est, vc(10, RST, 501)])).toEqual([])
  })

  it('frees connections that closed cleanly', () => {
    const det = new SymptomDetector()
    const d = new DecodedPacket()
    let n = 0
    for (let f = 0; f < 2000; f++) {
      for (const x of conversation(`10.1.${f >> 8}.${f & 255}`, V, 1024 + f, 80, 1000 + f * 0.001, 0.0001)) {
        decodeFrame(101, x.packet, 0, x.packet.length, d)
        d.index = ++n
        d.time = x.time
        det.packet(d)
      }
    }
    expect(det.flows).toBe(2000)
    expect(det.live).toBe(0)
    expect(det.finish()).toEqual([])
  })
})
