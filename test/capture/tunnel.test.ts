// Tunnelled traffic (LVS-TUN): the real captures of fixtures/captures/tunnel (test/capture/make-tun-fixtures.sh)
// and crafted packets for what the namespaces cannot make here (IPv6 inside IPv4, IPv4 inside IPv6, nested
// tunnels, broken and cut headers).
import {describe, expect, it} from 'vitest'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {icmpError, tcpPacket, udpPacket} from '../../src/capture/craft.js'
import {DECODE, DecodedPacket, TUNNEL, decodeConfig, decodeFrame} from '../../src/capture/decode.js'
import {SymptomDetector, describe as describePacket, type Symptom} from '../../src/capture/symptoms.js'
import {IPPROTO, emitIpv4, emitIpv6, put16, put32} from '../../src/capture/wire.js'
import {parseEndpoint, parseIp, type Endpoint} from '../../src/model/ip.js'
import {ACK, FIN, PSH, SYN} from './helpers.js'

const DIR = join(import.meta.dirname, '../../fixtures/captures/tunnel')
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {vip: string; captures: Record<string, {symptoms: string[]; tunnel: string}>}
const vip = parseEndpoint(expected.vip)!

describe('LVS-TUN captures taken here', () => {
  it('lists every capture file in expected.json', () => {
    expect(readdirSync(DIR).filter((f) => /\.pcap(ng)?$/.test(f)).sort()).toEqual(Object.keys(expected.captures).sort())
  })

  for (const [file, exp] of Object.entries(expected.captures)) {
    it(`${file}: ${exp.symptoms.length ? exp.symptoms.join(', ') : 'healthy'}`, async () => {
      const r = await analyseCaptureFile(join(DIR, file), {vips: [vip]})
      expect(r.skipped).toBe(0)
      expect(r.symptoms.map((s) => s.kind)).toEqual(exp.symptoms)
      for (const s of r.symptoms) {
        expect(s.tunnel).toMatchObject({type: exp.tunnel, from: '10.73.2.1', to: '10.73.2.10'})
        expect(s.flow).toMatchObject({proto: 'tcp', server: '10.73.9.100:80'})
        expect(s.vip).toBe('10.73.9.100:80')
      }
      expect((await analyseCaptureFile(join(DIR, file))).symptoms.map((s) => s.kind)).toEqual(exp.symptoms)
    })
  }

  it('every TCP packet of the tunnel captures is the client flow, not the tunnel', async () => {
    for (const file of Object.keys(expected.captures)) {
      const d = new DecodedPacket()
      const {readCapture} = await import('../../src/capture/reader.js')
      const kinds = new Set<number>()
      await readCapture(join(DIR, file), (r) => {
        if (decodeFrame(r.linkType, r.data, r.start, r.start + r.caplen, d) !== DECODE.OK || !d.l4) return
        if (d.proto === IPPROTO.TCP) {
          expect(describePacket(d)).toMatch(/^(10\.73\.1\.2:\d+ > 10\.73\.9\.100:80|10\.73\.9\.100:80 > 10\.73\.1\.2:\d+|\[fd73:1::2\]:\d+ > \[fd73:9::100\]:81|\[fd73:9::100\]:81 > \[fd73:1::2\]:\d+)$/)
          if (d.tunnel) expect(d.tFamily).toBe(4)
          if (file.startsWith('ipip6in4')) expect(d.family).toBe(6)
        }
        kinds.add(d.tunnel)
      })
      expect([...kinds].sort()).toContain(TUNNEL[expected.captures[file]!.tunnel.toUpperCase() as 'IPIP'])
    }
  })

  it('the realserver refusing IPIP: protocol unreachable, named, linked to dr-realserver-no-vip', async () => {
    const s = (await analyseCaptureFile(join(DIR, 'ipip-no-decap-director.pcap'), {vips: [vip]})).symptoms[0]!
    expect(s).toMatchObject({kind: 'tunnel-unreachable', icmp: 'protocol-unreachable', from: '10.73.2.10', rules: ['dr-realserver-no-vip']})
    expect(s.message).toMatch(/no handler for IP protocol 4: the ipip module is not loaded/)
    expect(s.packets.some((p) => /^ICMP protocol-unreachable from 10\.73\.2\.10 quoting IPIP 10\.73\.2\.1 > 10\.73\.2\.10 carrying tcp 10\.73\.1\.2:\d+ > 10\.73\.9\.100:80/.test(p.what))).toBe(true)
    const g = (await analyseCaptureFile(join(DIR, 'gue-no-listener-rs.pcap'))).symptoms[0]!
    expect(g).toMatchObject({icmp: 'port-unreachable', tunnel: {type: 'gue', port: 6080}})
    expect(g.message).toMatch(/ip fou add port 6080 gue/)
  })

  it('the MTU black hole: repeated frag-needed for the same segment of a tunnelled flow; working PMTUD is quiet', async () => {
    const s = (await analyseCaptureFile(join(DIR, 'ipip-mtu-blackhole-director.pcap'))).symptoms[0]!
    expect(s).toMatchObject({kind: 'tunnel-mtu', mtu: 1480, from: '10.73.1.1', severity: 'error'})
    expect(s.message).toMatch(/IPIP adds 20 bytes/)
    expect(s.packets.filter((p) => p.what.startsWith('ICMP frag-needed (mtu 1480)')).length).toBeGreaterThanOrEqual(2)
    expect((await analyseCaptureFile(join(DIR, 'ipip-mtu-pmtud-director.pcap'))).symptoms).toEqual([])
  })

  it('rp_filter on the realserver: the tunnelled SYN is named with both tunnel ends, on the director and on the realserver', async () => {
    for (const f of ['ipip-rpfilter-director.pcap', 'ipip-rpfilter-rs.pcap']) {
      const s = (await analyseCaptureFile(join(DIR, f), {vips: [vip]})).symptoms[0]!
      expect(s.rules[0]).toBe('rp-filter-asymmetric')
      expect(s.packets.some((p) => / inside IPIP 10\.73\.2\.1 > 10\.73\.2\.10$/.test(p.what))).toBe(true)
      expect(s.message).toMatch(/rp_filter 0 or 2 on the tunnel device/)
    }
  })
})

// ---- crafted packets ------------------------------------------------------------------------------------------

const CL = '192.0.2.1'
const VIP = '198.51.100.10'
const DIRECTOR = '10.0.0.1'
const RS = '10.0.0.5'

/** an outer IPv4/IPv6 packet of protocol `proto` around `inner` (UDP: its checksum left 0, as IPVS's --tun-nocsum) */
function wrap(src: string, dst: string, proto: number, inner: Uint8Array): Uint8Array {
  const s = parseIp(src)!
  const d = parseIp(dst)!
  const hl = s.family === 4 ? 20 : 40
  const b = new Uint8Array(hl + inner.length)
  if (s.family === 4) emitIpv4({src: Number(s.value), dst: Number(d.value), protocol: proto, ttl: 63, payloadLen: inner.length}, b, 0)
  else emitIpv6({src: v6(s.value), dst: v6(d.value), nextHeader: proto, hopLimit: 63, payloadLen: inner.length}, b, 0)
  b.set(inner, hl)
  return b
}

function v6(v: bigint): Uint8Array {
  const b = new Uint8Array(16)
  for (let i = 15; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn)
  return b
}

function gre(inner: Uint8Array, opts: {csum?: boolean; key?: number; seq?: number; proto?: number} = {}): Uint8Array {
  const len = 4 + (opts.csum ? 4 : 0) + (opts.key !== undefined ? 4 : 0) + (opts.seq !== undefined ? 4 : 0)
  const b = new Uint8Array(len + inner.length)
  put16(b, 0, (opts.csum ? 0x8000 : 0) | (opts.key !== undefined ? 0x2000 : 0) | (opts.seq !== undefined ? 0x1000 : 0))
  put16(b, 2, opts.proto ?? (inner[0]! >> 4 === 6 ? 0x86dd : 0x0800))
  let p = 4 + (opts.csum ? 4 : 0)
  if (opts.key !== undefined) {
    put32(b, p, opts.key)
    p += 4
  }
  if (opts.seq !== undefined) put32(b, p, opts.seq)
  b.set(inner, len)
  return b
}

function gueUdp(inner: Uint8Array, port = 6080, opts: {variant1?: boolean; remcsum?: boolean} = {}): Uint8Array {
  const h = opts.variant1 ? new Uint8Array(0) : new Uint8Array(opts.remcsum ? 12 : 4)
  if (!opts.variant1) {
    h[0] = opts.remcsum ? 2 : 0
    h[1] = inner[0]! >> 4 === 6 ? 41 : 4
    if (opts.remcsum) h[3] = 1
  }
  const b = new Uint8Array(8 + h.length + inner.length)
  put16(b, 0, 40000)
  put16(b, 2, port)
  put16(b, 4, b.length)
  b.set(h, 8)
  b.set(inner, 8 + h.length)
  return b
}

function decode(p: Uint8Array, cfg = decodeConfig()): {st: number; d: DecodedPacket} {
  const d = new DecodedPacket()
  const st = decodeFrame(101, p, 0, p.length, d, cfg)
  return {st, d}
}

const syn = (src = CL, dst = VIP, sport = 40000) => tcpPacket({src, dst, sport, dport: 80, flags: SYN, seq: 100})

describe('tunnel decoding (crafted)', () => {
  it('IPIP, IPv6 in IPv4 (41), IPv4 in IPv6 (4in6), IPv6 in IPv6: the inner flow, the outer ends kept', () => {
    const v4 = decode(wrap(DIRECTOR, RS, 4, syn()))
    expect(v4.st).toBe(DECODE.OK)
    expect(describePacket(v4.d)).toBe(`${CL}:40000 > ${VIP}:80`)
    expect(v4.d).toMatchObject({tunnel: TUNNEL.IPIP, tFamily: 4, ts3: 0x0a000001, td3: 0x0a000005, l4: true, flags: SYN, depth: 1})
    const s6 = syn('2001:db8::1', '2001:db8::10')
    const sixIn4 = decode(wrap(DIRECTOR, RS, 41, s6))
    expect(describePacket(sixIn4.d)).toBe('[2001:db8::1]:40000 > [2001:db8::10]:80')
    expect(sixIn4.d).toMatchObject({family: 6, tunnel: TUNNEL.IPIP, tFamily: 4})
    const fourIn6 = decode(wrap('2001:db8:1::1', '2001:db8:1::5', 4, syn()))
    expect(fourIn6.d).toMatchObject({family: 4, tunnel: TUNNEL.IPIP, tFamily: 6, l4: true})
    expect(decode(wrap('2001:db8:1::1', '2001:db8:1::5', 41, s6)).d).toMatchObject({family: 6, tFamily: 6, l4: true})
  })

  it('GRE with checksum, key and sequence number; gretap (Ethernet inside); another payload is a note', () => {
    for (const o of [{}, {csum: true}, {key: 7}, {seq: 9}, {csum: true, key: 7, seq: 9}]) {
      const {st, d} = decode(wrap(DIRECTOR, RS, 47, gre(syn(), o)))
      expect(st).toBe(DECODE.OK)
      expect(describePacket(d)).toBe(`${CL}:40000 > ${VIP}:80`)
      expect(d.tunnel).toBe(TUNNEL.GRE)
      expect(d.tunKey).toBe('key' in o ? 7 : -1)
    }
    const eth = new Uint8Array(14 + syn().length)
    put16(eth, 12, 0x0800)
    eth.set(syn(), 14)
    expect(describePacket(decode(wrap(DIRECTOR, RS, 47, gre(eth, {proto: 0x6558}))).d)).toBe(`${CL}:40000 > ${VIP}:80`)
    const ppp = decode(wrap(DIRECTOR, RS, 47, gre(syn(), {proto: 0x880b})))
    expect(ppp.st).toBe(DECODE.OK)
    expect(ppp.d).toMatchObject({tunnel: 0, proto: 47, l4: false, problem: 'GRE carrying EtherType 0x880b is not unwrapped'})
  })

  it('GUE: variant 0 on 6080 and on configured ports, remcsum extension, variant 1; found elsewhere only by a valid inner header', () => {
    const v0 = decode(wrap(DIRECTOR, RS, 17, gueUdp(syn())))
    expect(v0.d).toMatchObject({tunnel: TUNNEL.GUE, tunPort: 6080, proto: IPPROTO.TCP, sport: 40000, dport: 80})
    expect(decode(wrap(DIRECTOR, RS, 17, gueUdp(syn(), 6080, {remcsum: true}))).d).toMatchObject({tunnel: TUNNEL.GUE, dport: 80})
    expect(decode(wrap(DIRECTOR, RS, 17, gueUdp(syn(), 7000, {variant1: true}))).d).toMatchObject({tunnel: TUNNEL.GUE, tunPort: 7000, dport: 80})
    expect(decode(wrap(DIRECTOR, RS, 17, gueUdp(syn(), 7000))).d).toMatchObject({tunnel: TUNNEL.GUE, tunPort: 7000})
    // a GUE-looking header before bytes that are no valid IPv4 header (checksum broken): plain UDP
    const bad = gueUdp(syn(), 7000)
    bad[8 + 4 + 10] ^= 0xff
    expect(decode(wrap(DIRECTOR, RS, 17, bad)).d).toMatchObject({tunnel: 0, proto: IPPROTO.UDP, dport: 7000})
    // the same on a configured GUE port: unwrapped (the port says GUE)
    expect(decode(wrap(DIRECTOR, RS, 17, bad), decodeConfig([7000])).d).toMatchObject({tunnel: TUNNEL.GUE})
    // ordinary UDP (DNS) stays UDP
    expect(decode(udpPacket(CL, '192.0.2.53', 5353, 53, 30)).d).toMatchObject({tunnel: 0, proto: IPPROTO.UDP, dport: 53})
  })

  it('nested tunnels: the outermost ends are kept, the innermost packet decoded', () => {
    const {d} = decode(wrap('10.9.9.1', '10.9.9.2', 47, gre(wrap(DIRECTOR, RS, 4, syn()))))
    expect(d).toMatchObject({tunnel: TUNNEL.GRE, ts3: 0x0a090901, depth: 2, l4: true})
    expect(describePacket(d)).toBe(`${CL}:40000 > ${VIP}:80`)
  })

  it('broken or cut tunnel headers: a clear note, never a throw', () => {
    // inner header of the wrong version: malformed, the reason names the tunnel
    const v = syn()
    v[0] = 0x55
    const bad = decode(wrap(DIRECTOR, RS, 4, v))
    expect(bad.st).toBe(DECODE.MALFORMED)
    expect(bad.d.problem).toBe("expected IP version 4 in the IPIP packet's inner packet")
    // GRE version 1 (PPTP) and the routing bit
    const pptp = gre(syn())
    pptp[1] = 1
    expect(decode(wrap(DIRECTOR, RS, 47, pptp)).d.problem).toMatch(/^expected GRE version 0 \(version 1 is PPTP's enhanced GRE\) in the GRE header$/)
    const routed = gre(syn())
    routed[0] = 0x40
    expect(decode(wrap(DIRECTOR, RS, 47, routed)).st).toBe(DECODE.MALFORMED)
    // the capture cut inside the inner header: the outer packet counts, with a note
    const full = wrap(DIRECTOR, RS, 4, syn())
    const cut = decode(full.subarray(0, 30))
    expect(cut.st).toBe(DECODE.OK)
    expect(cut.d).toMatchObject({tunnel: 0, proto: 4, l4: false, problem: "the IPIP packet's inner packet cut by the capture (expected IPv4 header (20 bytes))"})
    const gcut = wrap(DIRECTOR, RS, 47, gre(syn(), {key: 1}))
    expect(decode(gcut.subarray(0, 26)).d.problem).toBe('the GRE header cut by the capture (expected GRE header with its optional fields (8 bytes))')
    const ucut = wrap(DIRECTOR, RS, 17, gueUdp(syn(), 6080, {remcsum: true}))
    expect(decode(ucut.subarray(0, 32)).d.problem).toBe('the GUE header on UDP port 6080 cut by the capture (expected GUE header with its extension fields (12 bytes))')
    // every prefix and every single-byte corruption of tunnel packets decodes without throwing
    for (const p of [full, gcut, ucut, wrap(DIRECTOR, RS, 41, syn('2001:db8::1', '2001:db8::10'))]) {
      for (let n = 0; n <= p.length; n++) expect(() => decode(p.subarray(0, n))).not.toThrow()
      for (let i = 0; i < p.length; i++) {
        const q = p.slice()
        q[i] ^= 0xa5
        expect(() => decode(q)).not.toThrow()
      }
    }
  })

  it('an ICMP error quoting a tunnel packet gives the inner flow and the tunnel ends', () => {
    const t = wrap(DIRECTOR, RS, 17, gueUdp(syn(), 6080))
    const {d} = decode(icmpError(RS, DIRECTOR, 3, 3, t))
    expect(d).toMatchObject({inner: true, iTunnel: TUNNEL.GUE, iTunPort: 6080, iProto: IPPROTO.TCP, iSport: 40000, iDport: 80, itd3: 0x0a000005})
    // GUE on a port lvsdoctor was not told about, quoted: found by the inner header's checksum
    expect(decode(icmpError(RS, DIRECTOR, 3, 3, wrap(DIRECTOR, RS, 17, gueUdp(syn(), 7000)))).d).toMatchObject({iTunnel: TUNNEL.GUE, iTunPort: 7000, iDport: 80})
    expect(decode(icmpError(RS, DIRECTOR, 3, 3, wrap(DIRECTOR, RS, 17, gueUdp(syn(), 7000, {variant1: true})))).d).toMatchObject({iTunnel: TUNNEL.GUE, iDport: 80})
    // a quote too short for the inner header: the tunnel packet itself
    const short = decode(icmpError(RS, DIRECTOR, 3, 2, wrap(DIRECTOR, RS, 4, syn()), 28)).d
    expect(short).toMatchObject({inner: true, iTunnel: 0, iProto: 4})
  })
})

// ---- crafted symptoms -----------------------------------------------------------------------------------------

function run(pkts: {t: number; p: Uint8Array}[], vips: Endpoint[] = []): Symptom[] {
  const det = new SymptomDetector({vips})
  const d = new DecodedPacket()
  pkts.forEach((x, i) => {
    expect(decodeFrame(101, x.p, 0, x.p.length, d)).toBe(DECODE.OK)
    d.index = i + 1
    d.time = x.t
    det.packet(d)
  })
  return det.finish()
}

const inTun = (p: Uint8Array) => wrap(DIRECTOR, RS, 4, p)
const c2v = (flags: number, seq: number, ack = 0, payload = 0) => tcpPacket({src: CL, dst: VIP, sport: 40000, dport: 80, flags, seq, ack, payload})
const v2c = (flags: number, seq: number, ack = 0, payload = 0) => tcpPacket({src: VIP, dst: CL, sport: 80, dport: 40000, flags, seq, ack, payload})

describe('tunnel symptoms (crafted)', () => {
  it('a packet seen outside and inside the tunnel counts once: a healthy TUN flow on the director is quiet', () => {
    const steps = [c2v(SYN, 100), c2v(ACK, 101, 501), c2v(PSH | ACK, 101, 501, 10), c2v(ACK, 111, 600)]
    const both = steps.flatMap((p, i) => [{t: i, p}, {t: i + 0.001, p: inTun(p)}])
    expect(run(both)).toEqual([])
  })

  it('copies of one SYN or FIN a few ms apart (a router\'s `any`) are one transmission, not retransmissions', () => {
    // SYN in on one interface, out on the other, and the capture ends: one transmission, too recent to judge
    expect(run([{t: 0, p: c2v(SYN, 100)}, {t: 0.0002, p: c2v(SYN, 100)}])).toEqual([])
    expect(run([{t: 0, p: c2v(SYN, 100)}, {t: 0.3, p: c2v(SYN, 100)}]).map((x) => x.kind)).toEqual(['syn-unanswered'])
    // a FIN sent twice, each seen twice: not the 4 transmissions fin-unanswered needs
    const est = [{t: 0, p: c2v(SYN, 100)}, {t: 0.01, p: v2c(SYN | ACK, 500, 101)}, {t: 0.02, p: c2v(ACK, 101, 501)}]
    const fin = (t: number) => [{t, p: c2v(FIN | ACK, 101, 501)}, {t: t + 0.0003, p: c2v(FIN | ACK, 101, 501)}]
    expect(run([...est, ...fin(1), ...fin(1.4)])).toEqual([])
    expect(run([...est, ...fin(1), ...fin(1.4), ...fin(2.2), ...fin(3.8)]).map((x) => x.kind)).toEqual(['fin-unanswered'])
  })

  it('tunnel-syn-unanswered fires on a SYN tunnelled and retransmitted; the same SYN answered is quiet', () => {
    const s = run([{t: 0, p: inTun(c2v(SYN, 100))}, {t: 1, p: inTun(c2v(SYN, 100))}])
    expect(s.map((x) => x.kind)).toEqual(['tunnel-syn-unanswered'])
    expect(s[0]!.tunnel).toEqual({type: 'ipip', from: DIRECTOR, to: RS})
    expect(run([{t: 0, p: inTun(c2v(SYN, 100))}, {t: 0.01, p: v2c(SYN | ACK, 500, 101)}, {t: 1, p: inTun(c2v(ACK, 101, 501))}])).toEqual([])
  })

  it('tunnel-unreachable groups the errors of one realserver; an unrelated ICMP error is no tunnel symptom', () => {
    const t1 = inTun(c2v(SYN, 100))
    const t2 = inTun(tcpPacket({src: CL, dst: VIP, sport: 40001, dport: 80, flags: SYN, seq: 7}))
    const s = run([{t: 0, p: t1}, {t: 0.001, p: icmpError(RS, DIRECTOR, 3, 2, t1)}, {t: 0.5, p: t2}, {t: 0.501, p: icmpError(RS, DIRECTOR, 3, 2, t2)}])
    expect(s.map((x) => x.kind)).toEqual(['tunnel-unreachable'])
    expect(s[0]!.packets.filter((p) => p.what.startsWith('ICMP'))).toHaveLength(2)
    expect(run([{t: 0, p: c2v(SYN, 100)}, {t: 0.001, p: icmpError('192.0.2.254', CL, 3, 10, c2v(SYN, 100))}]).map((x) => x.kind)).toEqual(['icmp-unreachable-new'])
    // a router that cannot reach the realserver: the same symptom, but no rule about unwrapping
    const down = run([{t: 0, p: t1}, {t: 0.001, p: icmpError('10.0.0.254', DIRECTOR, 3, 1, t1)}])
    expect(down[0]).toMatchObject({kind: 'tunnel-unreachable', icmp: 'host-unreachable', rules: []})
    expect(down[0]!.message).toMatch(/the realserver is down or unreachable from there/)
  })

  it('frag-needed quoting the outer tunnel packet (a router between director and realserver), repeated: tunnel-mtu', () => {
    const big = c2v(PSH | ACK, 101, 501, 1460)
    const est = [{t: 0, p: inTun(c2v(SYN, 100))}, {t: 0.01, p: v2c(SYN | ACK, 500, 101)}, {t: 0.02, p: inTun(c2v(ACK, 101, 501))}]
    const tooBig = (t: number) => ({t, p: icmpError('10.0.0.254', DIRECTOR, 3, 4, inTun(big))})
    const withMtu = (x: {t: number; p: Uint8Array}) => {
      // next-hop MTU 1400 in the ICMP header (bytes 6-7 after the 20-byte IP header)
      put16(x.p, 26, 1400)
      return x
    }
    const s = run([...est, {t: 0.03, p: inTun(big)}, withMtu(tooBig(0.031)), {t: 0.3, p: inTun(big)}, withMtu(tooBig(0.301))])
    expect(s.map((x) => x.kind)).toEqual(['tunnel-mtu'])
    expect(s[0]).toMatchObject({mtu: 1400, from: '10.0.0.254', tunnel: {type: 'ipip', from: DIRECTOR, to: RS}})
    // a router's error about the tunnel packet and the director's relayed one to the client: one event, quiet
    expect(run([...est, {t: 0.03, p: inTun(big)}, withMtu(tooBig(0.031)), {t: 0.032, p: icmpError(VIP, CL, 3, 4, big)}])).toEqual([])
    // one frag-needed, then the sender adapts: quiet
    expect(run([...est, {t: 0.03, p: inTun(big)}, withMtu(tooBig(0.031)), {t: 0.05, p: inTun(c2v(PSH | ACK, 101, 501, 1300))}])).toEqual([])
    // no tunnel anywhere: the same repetition is a plain path MTU black hole
    const plain = run([{t: 0, p: c2v(SYN, 100)}, {t: 0.01, p: v2c(SYN | ACK, 500, 101)}, {t: 0.02, p: c2v(ACK, 101, 501)},
      {t: 0.03, p: icmpError('192.0.2.254', CL, 3, 4, big)}, {t: 0.3, p: icmpError('192.0.2.254', CL, 3, 4, big)}])
    expect(plain.map((x) => x.kind)).toEqual(['pmtu-blackhole'])
  })

  it('a tunnelled SYN answered from the realserver address is not blamed on a NAT rule', () => {
    const s = run([{t: 0, p: inTun(c2v(SYN, 100))}, {t: 0.01, p: tcpPacket({src: RS, dst: CL, sport: 80, dport: 40000, flags: SYN | ACK, seq: 5, ack: 101})}],
      [parseEndpoint(`${VIP}:80`)!])
    expect(s[0]).toMatchObject({kind: 'reply-bypasses-director', rules: [], tunnel: {type: 'ipip'}})
    expect(s[0]!.message).toMatch(/must do so from the VIP/)
  })
})

describe('symptom rules', () => {
  it('every rule a symptom names is in the registry', async () => {
    const {RULES} = await import('../../src/capture/symptoms.js')
    const {ruleById} = await import('../../src/rules/index.js')
    for (const [kind, ids] of Object.entries(RULES)) for (const id of ids) expect(ruleById(id), `${kind}: ${id}`).toBeDefined()
  })
})
