// Building frames from small values (the emit side of wire.ts): tests, fuzz seeds and the bench generator.
import {parseIp, type IpAddr} from '../model/ip.js'
import {
  ETHERTYPE, IPPROTO, LINKTYPE, emitEthernet, emitIcmp, emitIpv4, emitIpv6, emitSll, emitTcp, emitUdp, ethernetLen,
  finishL4Checksum, put16, put32, type Bytes,
} from './wire.js'

export type LinkKind = 'ethernet' | 'sll' | 'sll2' | 'raw' | 'null' | 'loop' | 'ipv4' | 'ipv6'

export const LINK_TYPE_OF: Readonly<Record<LinkKind, number>> = {
  ethernet: LINKTYPE.ETHERNET, sll: LINKTYPE.LINUX_SLL, sll2: LINKTYPE.LINUX_SLL2, raw: LINKTYPE.RAW,
  null: LINKTYPE.NULL, loop: LINKTYPE.LOOP, ipv4: LINKTYPE.IPV4, ipv6: LINKTYPE.IPV6,
}

function ip(text: string): IpAddr {
  const a = parseIp(text)
  if (!a) throw new Error(`craft: not an IP address: ${text}`)
  return a
}

function v6bytes(a: IpAddr): Uint8Array {
  const b = new Uint8Array(16)
  let v = a.value
  for (let i = 15; i >= 0; i--) {
    b[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return b
}

export interface TcpSpec {
  readonly src: string
  readonly dst: string
  readonly sport: number
  readonly dport: number
  /** TCP_FLAG bits */
  readonly flags: number
  readonly seq?: number
  readonly ack?: number
  readonly payload?: number
}

/** An IP packet (IPv4 or IPv6 as the addresses say) around an L4 segment, checksums filled in. */
export function ipPacket(src: string, dst: string, proto: number, l4: Uint8Array, ttl = 64): Uint8Array {
  const s = ip(src)
  const d = ip(dst)
  if (s.family === 4) {
    const b = new Uint8Array(20 + l4.length)
    emitIpv4({src: Number(s.value), dst: Number(d.value), protocol: proto, ttl, payloadLen: l4.length}, b, 0)
    b.set(l4, 20)
    finishL4Checksum(b, 0, 20, l4.length, proto)
    return b
  }
  const b = new Uint8Array(40 + l4.length)
  emitIpv6({src: v6bytes(s), dst: v6bytes(d), nextHeader: proto, hopLimit: ttl, payloadLen: l4.length}, b, 0)
  b.set(l4, 40)
  finishL4Checksum(b, 0, 40, l4.length, proto)
  return b
}

export function tcpPacket(t: TcpSpec): Uint8Array {
  const seg = new Uint8Array(20 + (t.payload ?? 0))
  emitTcp({srcPort: t.sport, dstPort: t.dport, seq: t.seq ?? 0, ack: t.ack ?? 0, flags: t.flags}, seg, 0)
  for (let i = 20; i < seg.length; i++) seg[i] = 0x61
  return ipPacket(t.src, t.dst, IPPROTO.TCP, seg)
}

export function udpPacket(src: string, dst: string, sport: number, dport: number, payload = 0): Uint8Array {
  const seg = new Uint8Array(8 + payload)
  emitUdp({srcPort: sport, dstPort: dport, payloadLen: payload}, seg, 0)
  return ipPacket(src, dst, IPPROTO.UDP, seg)
}

/** An outer IPv4/IPv6 header (protocol `proto`) around `payload`, no transport checksum touched (tunnels). */
export function outerPacket(src: string, dst: string, proto: number, payload: Uint8Array, ttl = 63): Uint8Array {
  const s = ip(src)
  const d = ip(dst)
  const hl = s.family === 4 ? 20 : 40
  const b = new Uint8Array(hl + payload.length)
  if (s.family === 4) emitIpv4({src: Number(s.value), dst: Number(d.value), protocol: proto, ttl, payloadLen: payload.length}, b, 0)
  else emitIpv6({src: v6bytes(s), dst: v6bytes(d), nextHeader: proto, hopLimit: ttl, payloadLen: payload.length}, b, 0)
  b.set(payload, hl)
  return b
}

/** LVS-TUN's default: the IP packet `inner` inside IPIP (protocol 4, or 41 for IPv6 inside) from `src` to `dst`. */
export function ipipPacket(src: string, dst: string, inner: Uint8Array): Uint8Array {
  return outerPacket(src, dst, inner[0]! >> 4 === 6 ? IPPROTO.IPV6 : IPPROTO.IPIP, inner)
}

/** `inner` inside GRE (RFC 2784/2890) with the optional checksum (left 0), key and sequence number. */
export function grePacket(src: string, dst: string, inner: Uint8Array, o: {csum?: boolean; key?: number; seq?: number} = {}): Uint8Array {
  const hl = 4 + (o.csum ? 4 : 0) + (o.key !== undefined ? 4 : 0) + (o.seq !== undefined ? 4 : 0)
  const g = new Uint8Array(hl + inner.length)
  put16(g, 0, (o.csum ? 0x8000 : 0) | (o.key !== undefined ? 0x2000 : 0) | (o.seq !== undefined ? 0x1000 : 0))
  put16(g, 2, inner[0]! >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4)
  let p = 4 + (o.csum ? 4 : 0)
  if (o.key !== undefined) {
    put32(g, p, o.key)
    p += 4
  }
  if (o.seq !== undefined) put32(g, p, o.seq)
  g.set(inner, hl)
  return outerPacket(src, dst, IPPROTO.GRE, g)
}

/** `inner` inside GUE over UDP to `port` (variant 0, as IPVS sends it; `variant1`: direct IP), UDP checksum 0. */
export function guePacket(src: string, dst: string, inner: Uint8Array, port = 6080, o: {variant1?: boolean} = {}): Uint8Array {
  const gl = o.variant1 ? 0 : 4
  const u = new Uint8Array(8 + gl + inner.length)
  emitUdp({srcPort: 40000, dstPort: port, payloadLen: gl + inner.length}, u, 0)
  if (!o.variant1) u[9] = inner[0]! >> 4 === 6 ? IPPROTO.IPV6 : IPPROTO.IPIP
  u.set(inner, 8 + gl)
  return outerPacket(src, dst, IPPROTO.UDP, u)
}

/** An ICMP/ICMPv6 error from `src` to `dst` quoting (the start of) the IP packet `quoted`. */
export function icmpError(src: string, dst: string, type: number, code: number, quoted: Uint8Array, quoteLen = 548): Uint8Array {
  const v6 = ip(src).family === 6
  const q = quoted.subarray(0, Math.min(quoted.length, quoteLen))
  const seg = new Uint8Array(8 + q.length)
  emitIcmp({type, code}, seg, 0)
  seg.set(q, 8)
  return ipPacket(src, dst, v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP, seg)
}

const MAC_A = Uint8Array.from([0x02, 0, 0, 0, 0, 0x0a])
const MAC_B = Uint8Array.from([0x02, 0, 0, 0, 0, 0x0b])

/** Wraps an IP packet in the link-layer header of `link`. */
export function frame(link: LinkKind, packet: Uint8Array, opts: {vlans?: readonly number[]} = {}): Uint8Array {
  const v6 = packet[0]! >> 4 === 6
  const et = v6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4
  let head: Bytes
  switch (link) {
    case 'ethernet': {
      const r = {dst: MAC_B, src: MAC_A, etherType: et, ...(opts.vlans ? {vlans: opts.vlans} : {})}
      head = new Uint8Array(ethernetLen(r))
      emitEthernet(r, head, 0)
      break
    }
    case 'sll':
    case 'sll2':
      head = new Uint8Array(link === 'sll' ? 16 : 20)
      emitSll({version: link === 'sll' ? 1 : 2, packetType: 0, protocol: et, ifindex: 2}, head, 0)
      break
    case 'null':
      head = Uint8Array.from([v6 ? 24 : 2, 0, 0, 0]) // host (little-endian) order
      break
    case 'loop':
      head = Uint8Array.from([0, 0, 0, v6 ? 24 : 2])
      break
    default:
      head = new Uint8Array(0)
  }
  const out = new Uint8Array(head.length + packet.length)
  out.set(head, 0)
  out.set(packet, head.length)
  return out
}
