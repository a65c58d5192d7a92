// Frame → headers. One reusable DecodedPacket is filled per frame (no allocation on the hot path); every
// header goes through its checked constructor in wire.ts first, so no byte outside the frame is ever read
// and nothing here throws on hostile input.
//
// Tunnels (LVS-TUN and hand-built ones): IP in IP (protocol 4 / 41 over IPv4 or IPv6), GRE (protocol 47, with
// or without checksum, key and sequence number, carrying IPv4, IPv6 or Ethernet) and GUE (UDP: variant 0 with
// the inner protocol, variant 1 direct IP) are unwrapped: the inner packet is what the flow analysis sees and
// the outer addresses are kept (`tunnel`, `t*`). IPVS writes exactly these headers (ip_vs_xmit.c
// ip_vs_tunnel_xmit(): the outer IPv4 header copies the inner DF and TTL, protocol IPPROTO_IPIP/IPV6;
// ipvs_gue_encap(): UDP to the destination's --tun-port, GUE variant 0, hlen 0 or 2 with --tun-remcsum;
// ipvs_gre_encap(): gre_build_header() with the checksum flag only). A GUE packet is recognised by its port
// (6080, IANA's, and the ports given in DecodeConfig) or, on any other port, by a GUE header followed by an
// IPv4 header whose checksum and length agree (or an IPv6 header whose length does).
// Linux cooked captures of tunl0/gre0 (or `any`) already show the unwrapped packets: they decode as plain IP.
import {
  ETHERTYPE, Ethernet, GUE_PORT, Gre, Gue, IPPROTO, Icmp, Ipv4, Ipv6, LINKTYPE, LinuxSll, LinuxSll2, Tcp, Udp, VlanTag,
  icmpQuotes, loopbackFamily, plausibleIpv4, plausibleIpv6, walkIpv6Ext, type Bytes, type Ipv6Upper,
} from './wire.js'

export const DECODE = {
  OK: 0,
  /** a well-formed frame that carries no IP (ARP, LLDP, 802.3 LLC...) */
  NOT_IP: 1,
  /** bytes that are not what their header says */
  MALFORMED: 2,
  /** a link type this reader does not decode */
  UNSUPPORTED_LINK: 3,
} as const

export type DecodeStatus = (typeof DECODE)[keyof typeof DECODE]

const MAX_VLAN_TAGS = 8
/** tunnels inside tunnels unwrapped at most */
const MAX_TUNNEL_DEPTH = 4

/** What carried a packet. */
export const TUNNEL = {NONE: 0, IPIP: 1, GRE: 2, GUE: 3} as const
export type TunnelKind = (typeof TUNNEL)[keyof typeof TUNNEL]
export const TUNNEL_NAMES: readonly string[] = ['', 'ipip', 'gre', 'gue']

export interface DecodeConfig {
  /** UDP destination ports whose datagrams are GUE (besides 6080, IANA's GUE port) */
  readonly guePorts: ReadonlySet<number>
}

export const DEFAULT_DECODE: DecodeConfig = {guePorts: new Set([GUE_PORT])}

/** A DecodeConfig that also takes these GUE ports (ipvsadm --tun-port of the snapshot's destinations). */
export function decodeConfig(guePorts: Iterable<number> = []): DecodeConfig {
  return {guePorts: new Set([GUE_PORT, ...guePorts])}
}

/**
 * The headers of one frame. Addresses are four 32-bit words (IPv4 in word 3, words 0..2 zero) so that
 * flows of both families share one key and one code path. Words, sequence and acknowledgement numbers are
 * stored as signed 32-bit integers (`x | 0`); `>>> 0` gives the unsigned value back.
 */
export class DecodedPacket {
  /** 4 or 6; 0 when no IP header was decoded */
  family = 0
  s0 = 0
  s1 = 0
  s2 = 0
  s3 = 0
  d0 = 0
  d1 = 0
  d2 = 0
  d3 = 0
  /** IP protocol of the transport header (after IPv6 extension headers) */
  proto = -1
  /** transport header decoded (ports, TCP flags, ICMP type) */
  l4 = false
  sport = 0
  dport = 0
  /** TCP */
  flags = 0
  seq = 0
  ack = 0
  /** TCP/UDP payload bytes as the IP length says (the capture may hold fewer) */
  payloadLen = 0
  icmpType = -1
  icmpCode = -1
  /** an ICMP error quoting a datagram whose addresses (and ports, when quoted) were decoded */
  inner = false
  iFamily = 0
  is0 = 0
  is1 = 0
  is2 = 0
  is3 = 0
  id0 = 0
  id1 = 0
  id2 = 0
  id3 = 0
  iProto = -1
  /** quoted transport ports present */
  iPorts = false
  iSport = 0
  iDport = 0
  /** quoted TCP sequence number present */
  iHasSeq = false
  iSeq = 0
  /** the quoted datagram is a tunnel packet (TUNNEL.*): i* above are its inner packet, it* its outer addresses */
  iTunnel = 0
  /** GUE: the quoted outer UDP destination port */
  iTunPort = 0
  itFamily = 0
  its0 = 0
  its1 = 0
  its2 = 0
  its3 = 0
  itd0 = 0
  itd1 = 0
  itd2 = 0
  itd3 = 0
  /** length of the quoted (outermost) datagram as its IP header gives it: the packet that was too big */
  iLen = 0
  /** ICMP fragmentation needed (type 3 code 4) / ICMPv6 packet too big: the MTU it announces */
  icmpMtu = 0
  /** DF bit and total length of the (innermost) IP header; IPv6: false and 40 + payload length */
  df = false
  ipLen = 0
  /** the tunnel that carried the packet (TUNNEL.*), 0 when none; t*: the outermost tunnel's addresses */
  tunnel: number = TUNNEL.NONE
  tFamily = 0
  ts0 = 0
  ts1 = 0
  ts2 = 0
  ts3 = 0
  td0 = 0
  td1 = 0
  td2 = 0
  td3 = 0
  /** GUE: the UDP destination port; GRE: 0 */
  tunPort = 0
  /** GRE key, -1 without one */
  tunKey = -1
  /** the outer packet's DF bit and length */
  tunDf = false
  tunLen = 0
  /** tunnels unwrapped (more than 1: nested) */
  depth = 0
  /** outermost 802.1Q VLAN id, -1 if untagged */
  vlan = -1
  /** 1-based packet number and time (seconds since the epoch): set by the caller, read by the detector */
  index = 0
  time = 0
  /** why decoding stopped short (set with MALFORMED/NOT_IP/UNSUPPORTED_LINK, or for a partial decode) */
  problem: string | undefined = undefined

  reset(): void {
    this.family = 0
    this.proto = -1
    this.l4 = false
    this.flags = 0
    this.payloadLen = 0
    this.icmpType = -1
    this.icmpCode = -1
    this.inner = false
    this.iProto = -1
    this.iPorts = false
    this.iHasSeq = false
    this.iTunnel = 0
    this.iTunPort = 0
    this.iLen = 0
    this.icmpMtu = 0
    this.df = false
    this.ipLen = 0
    this.tunnel = TUNNEL.NONE
    this.tunPort = 0
    this.tunKey = -1
    this.depth = 0
    this.vlan = -1
    this.problem = undefined
  }
}

const upper: Ipv6Upper = {proto: 0, offset: 0, fragment: false}

let cfg: DecodeConfig = DEFAULT_DECODE

/** Decodes the frame b[o..end) captured on a link of type `linkType` into `out`. */
export function decodeFrame(linkType: number, b: Bytes, o: number, end: number, out: DecodedPacket, config: DecodeConfig = DEFAULT_DECODE): DecodeStatus {
  out.reset()
  cfg = config
  if (end <= o) {
    out.problem = 'empty frame (0 captured bytes)'
    return DECODE.MALFORMED
  }
  let etherType: number
  let p = o
  switch (linkType) {
    case LINKTYPE.ETHERNET: {
      const pr = Ethernet.check(b, p, end)
      if (pr) return malformed(out, pr)
      etherType = Ethernet.etherType(b, p)
      p += Ethernet.HEADER_LEN
      break
    }
    case LINKTYPE.LINUX_SLL: {
      const pr = LinuxSll.check(b, p, end)
      if (pr) return malformed(out, pr)
      etherType = LinuxSll.protocol(b, p)
      p += LinuxSll.HEADER_LEN
      break
    }
    case LINKTYPE.LINUX_SLL2: {
      const pr = LinuxSll2.check(b, p, end)
      if (pr) return malformed(out, pr)
      etherType = LinuxSll2.protocol(b, p)
      p += LinuxSll2.HEADER_LEN
      break
    }
    case LINKTYPE.RAW:
    case LINKTYPE.DLT_RAW_12:
    case LINKTYPE.DLT_RAW_14: {
      const v = b[p]! >> 4
      etherType = v === 4 ? ETHERTYPE.IPV4 : v === 6 ? ETHERTYPE.IPV6 : 0
      if (etherType === 0) return malformed(out, `IP version 4 or 6 in a raw IP frame, found ${v}`)
      break
    }
    case LINKTYPE.IPV4:
      etherType = ETHERTYPE.IPV4
      break
    case LINKTYPE.IPV6:
      etherType = ETHERTYPE.IPV6
      break
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      if (end - p < 4) return malformed(out, 'loopback header (4 bytes)')
      etherType = loopbackFamily(b, p)
      p += 4
      if (etherType === 0) {
        out.problem = 'loopback frame of an address family other than IPv4/IPv6'
        return DECODE.NOT_IP
      }
      break
    }
    default:
      out.problem = `link type ${linkType} is not supported`
      return DECODE.UNSUPPORTED_LINK
  }
  // 802.1Q / 802.1ad (QinQ) tags, possibly stacked
  for (let n = 0; etherType === ETHERTYPE.VLAN || etherType === ETHERTYPE.QINQ || etherType === ETHERTYPE.QINQ_OLD; n++) {
    if (n === MAX_VLAN_TAGS) return malformed(out, `at most ${MAX_VLAN_TAGS} VLAN tags`)
    const pr = VlanTag.check(b, p, end)
    if (pr) return malformed(out, pr)
    if (out.vlan < 0) out.vlan = VlanTag.vid(b, p)
    etherType = VlanTag.innerType(b, p)
    p += VlanTag.LEN
  }
  if (etherType === ETHERTYPE.IPV4) return decodeIpv4(b, p, end, out)
  if (etherType === ETHERTYPE.IPV6) return decodeIpv6(b, p, end, out)
  out.problem = `not IP (EtherType 0x${etherType.toString(16).padStart(4, '0')})`
  return DECODE.NOT_IP
}

function malformed(out: DecodedPacket, expected: string): DecodeStatus {
  out.problem = `expected ${expected}`
  return DECODE.MALFORMED
}

function decodeIpv4(b: Bytes, o: number, end: number, out: DecodedPacket): DecodeStatus {
  const pr = Ipv4.check(b, o, end)
  if (pr) return malformed(out, out.depth ? `${pr} inside the ${tunnelName(out)} tunnel` : pr)
  const hl = Ipv4.headerLen(b, o)
  const total = Ipv4.totalLen(b, o)
  out.family = 4
  out.s0 = out.s1 = out.s2 = 0
  out.d0 = out.d1 = out.d2 = 0
  out.s3 = Ipv4.src(b, o) | 0
  out.d3 = Ipv4.dst(b, o) | 0
  out.proto = Ipv4.protocol(b, o)
  out.df = Ipv4.dontFragment(b, o)
  out.ipLen = total === 0 ? end - o : total
  // Ethernet pads short frames: the IP length, not the frame, says where the datagram ends.
  const ipEnd = total === 0 ? end : o + total
  const l4end = ipEnd < end ? ipEnd : end
  if (Ipv4.fragOffset(b, o) !== 0) {
    out.problem = 'IPv4 fragment without the transport header'
    return DECODE.OK
  }
  const proto = out.proto
  if (proto === IPPROTO.IPIP || proto === IPPROTO.IPV6) return unwrap(b, o + hl, l4end, ipEnd, proto === IPPROTO.IPIP ? 4 : 6, TUNNEL.IPIP, out)
  if (proto === IPPROTO.GRE) return decodeGre(b, o + hl, l4end, ipEnd, out)
  return decodeL4(b, o + hl, l4end, ipEnd - (o + hl), false, out)
}

function decodeIpv6(b: Bytes, o: number, end: number, out: DecodedPacket): DecodeStatus {
  const pr = Ipv6.check(b, o, end)
  if (pr) return malformed(out, out.depth ? `${pr} inside the ${tunnelName(out)} tunnel` : pr)
  out.family = 6
  out.s0 = Ipv6.srcWord(b, o, 0) | 0
  out.s1 = Ipv6.srcWord(b, o, 1) | 0
  out.s2 = Ipv6.srcWord(b, o, 2) | 0
  out.s3 = Ipv6.srcWord(b, o, 3) | 0
  out.d0 = Ipv6.dstWord(b, o, 0) | 0
  out.d1 = Ipv6.dstWord(b, o, 1) | 0
  out.d2 = Ipv6.dstWord(b, o, 2) | 0
  out.d3 = Ipv6.dstWord(b, o, 3) | 0
  const plen = Ipv6.payloadLen(b, o)
  out.df = false
  out.ipLen = plen === 0 ? end - o : 40 + plen
  const ipEnd = plen === 0 ? end : o + 40 + plen
  const l4end = ipEnd < end ? ipEnd : end
  const ep = walkIpv6Ext(b, o, l4end, upper)
  if (ep) return malformed(out, ep)
  out.proto = upper.proto
  if (upper.fragment) {
    out.problem = 'IPv6 fragment without the transport header'
    return DECODE.OK
  }
  const proto = out.proto
  const at = upper.offset
  if (proto === IPPROTO.IPIP || proto === IPPROTO.IPV6) return unwrap(b, at, l4end, ipEnd, proto === IPPROTO.IPIP ? 4 : 6, TUNNEL.IPIP, out)
  if (proto === IPPROTO.GRE) return decodeGre(b, at, l4end, ipEnd, out)
  return decodeL4(b, at, l4end, ipEnd - at, true, out)
}

function tunnelName(out: DecodedPacket): string {
  return (TUNNEL_NAMES[out.tunnel] ?? '').toUpperCase() || 'IP'
}

/**
 * A tunnel header that is not what it should be. A header the capture cut short (the outer IP length says
 * more bytes follow than were captured) leaves the outer packet as the decoded one, with a note; anything
 * else is malformed.
 */
function tunnelProblem(out: DecodedPacket, what: string, pr: string, end: number, ipEnd: number): DecodeStatus {
  if (end < ipEnd) {
    out.problem = `${what} cut by the capture (expected ${pr})`
    return DECODE.OK
  }
  return malformed(out, `${pr} in ${what}`)
}

/** Records the outer header (the outermost tunnel's) before the inner packet overwrites the fields. */
function enterTunnel(out: DecodedPacket, kind: number, port: number, key: number): void {
  if (out.depth === 0) {
    out.tunnel = kind
    out.tFamily = out.family
    out.ts0 = out.s0
    out.ts1 = out.s1
    out.ts2 = out.s2
    out.ts3 = out.s3
    out.td0 = out.d0
    out.td1 = out.d1
    out.td2 = out.d2
    out.td3 = out.d3
    out.tunDf = out.df
    out.tunLen = out.ipLen
    out.tunPort = port
    out.tunKey = key
  }
  out.depth++
  out.l4 = false
  out.flags = 0
  out.payloadLen = 0
  out.sport = 0
  out.dport = 0
}

/** The inner IPv4/IPv6 packet at b[o..end) of a tunnel of `kind` (`ipEnd`: where the outer datagram ends). */
function unwrap(b: Bytes, o: number, end: number, ipEnd: number, family: 4 | 6, kind: number, out: DecodedPacket, port = 0, key = -1): DecodeStatus {
  const what = kind === TUNNEL.IPIP ? `the ${family === 4 ? 'IPIP' : 'IPv6-in-IP'} packet` : kind === TUNNEL.GRE ? 'the GRE packet' : 'the GUE packet'
  if (out.depth >= MAX_TUNNEL_DEPTH) {
    out.problem = `${what}: tunnels nested deeper than ${MAX_TUNNEL_DEPTH} are not unwrapped`
    return DECODE.OK
  }
  const pr = family === 4 ? Ipv4.check(b, o, end) : Ipv6.check(b, o, end)
  if (pr) return tunnelProblem(out, `${what}'s inner packet`, pr, end, ipEnd)
  enterTunnel(out, kind, port, key)
  return family === 4 ? decodeIpv4(b, o, end, out) : decodeIpv6(b, o, end, out)
}

const ETHERTYPE_TEB = 0x6558

function decodeGre(b: Bytes, o: number, end: number, ipEnd: number, out: DecodedPacket): DecodeStatus {
  const pr = Gre.check(b, o, end)
  if (pr) return tunnelProblem(out, 'the GRE header', pr, end, ipEnd)
  let et = Gre.protocol(b, o)
  let p = o + Gre.headerLen(b, o)
  const key = Gre.flags(b, o) & Gre.F_KEY ? Gre.key(b, o) : -1
  if (et === ETHERTYPE_TEB) {
    // gretap: an Ethernet frame inside
    if (end - p < Ethernet.HEADER_LEN) return tunnelProblem(out, 'the GRE packet\'s inner Ethernet frame', 'Ethernet header (14 bytes)', end, ipEnd)
    et = Ethernet.etherType(b, p)
    p += Ethernet.HEADER_LEN
  }
  if (et === ETHERTYPE.IPV4 || et === ETHERTYPE.IPV6) return unwrap(b, p, end, ipEnd, et === ETHERTYPE.IPV4 ? 4 : 6, TUNNEL.GRE, out, 0, key)
  out.problem = `GRE carrying EtherType 0x${et.toString(16).padStart(4, '0')} is not unwrapped`
  return DECODE.OK
}

/**
 * Does the UDP payload b[o..end), `len` bytes long by the IP header (0: unknown), look like GUE on a port not
 * known for it? An IPv6 header has no checksum: without a length to check it is not taken.
 */
function looksLikeGue(b: Bytes, o: number, end: number, len: number): boolean {
  if (end - o < 4) return false
  const v = b[o]! >> 6
  if (v === 1) {
    const n = b[o]! >> 4
    return n === 4 ? plausibleIpv4(b, o, end, len) : n === 6 ? len !== 0 && plausibleIpv6(b, o, end, len) : false
  }
  if (v !== 0 || Gue.control(b, o)) return false
  const hl = Gue.headerLen(b, o)
  if (end - o < hl) return false
  const pr = Gue.protocol(b, o)
  // len 0: the length is unknown (an ICMP quote), the inner header's checksum alone decides
  const inner = len === 0 ? 0 : len - hl
  return pr === IPPROTO.IPIP ? plausibleIpv4(b, o + hl, end, inner) : pr === IPPROTO.IPV6 ? inner !== 0 && plausibleIpv6(b, o + hl, end, inner) : false
}

/** GUE at b[o..end) after the UDP header; `port` is the UDP destination port. Not GUE after all: plain UDP with a note. */
function decodeGue(b: Bytes, o: number, end: number, ipEnd: number, port: number, out: DecodedPacket): DecodeStatus {
  const pr = Gue.check(b, o, end)
  if (pr) {
    out.problem = end < ipEnd ? `the GUE header on UDP port ${port} cut by the capture (expected ${pr})` : `UDP port ${port} (GUE): expected ${pr}`
    return DECODE.OK
  }
  if (Gue.variant(b, o) === 1) {
    const n = b[o]! >> 4
    if (n === 4 || n === 6) return unwrap(b, o, end, ipEnd, n, TUNNEL.GUE, out, port)
    out.problem = `UDP port ${port} (GUE variant 1): expected IP version 4 or 6, found ${n}`
    return DECODE.OK
  }
  if (Gue.control(b, o)) {
    out.problem = `GUE control message on UDP port ${port}`
    return DECODE.OK
  }
  const ip = Gue.protocol(b, o)
  if (ip === IPPROTO.IPIP || ip === IPPROTO.IPV6) return unwrap(b, o + Gue.headerLen(b, o), end, ipEnd, ip === IPPROTO.IPIP ? 4 : 6, TUNNEL.GUE, out, port)
  out.problem = `GUE on UDP port ${port} carrying IP protocol ${ip} is not unwrapped`
  return DECODE.OK
}

/** Transport header at b[o..end); `ipLen` is the length the IP header gives it (the capture may be shorter). */
function decodeL4(b: Bytes, o: number, end: number, ipLen: number, v6: boolean, out: DecodedPacket): DecodeStatus {
  const proto = out.proto
  if (proto === IPPROTO.TCP) {
    const pr = Tcp.check(b, o, end)
    if (pr) {
      // a snaplen cut inside the TCP header is a partial decode, a header that lies is malformed
      if (end - o < 20 || Tcp.headerLen(b, o) >= 20) {
        out.problem = `transport header cut by the capture (${pr})`
        return DECODE.OK
      }
      return malformed(out, pr)
    }
    out.l4 = true
    out.sport = Tcp.srcPort(b, o)
    out.dport = Tcp.dstPort(b, o)
    out.seq = Tcp.seq(b, o) | 0
    out.ack = Tcp.ack(b, o) | 0
    out.flags = Tcp.flags(b, o)
    const pl = ipLen - Tcp.headerLen(b, o)
    out.payloadLen = pl > 0 ? pl : 0
    return DECODE.OK
  }
  if (proto === IPPROTO.UDP) {
    const pr = Udp.check(b, o, end)
    if (pr) {
      out.problem = `transport header cut by the capture (${pr})`
      return DECODE.OK
    }
    out.l4 = true
    out.sport = Udp.srcPort(b, o)
    out.dport = Udp.dstPort(b, o)
    const pl = ipLen - 8
    out.payloadLen = pl > 0 ? pl : 0
    if (pl >= 1 && out.depth < MAX_TUNNEL_DEPTH) {
      const g = o + 8
      const ipEnd = o + ipLen
      if (cfg.guePorts.has(out.dport)) return decodeGue(b, g, end, ipEnd, out.dport, out)
      if (looksLikeGue(b, g, end, pl)) return decodeGue(b, g, end, ipEnd, out.dport, out)
    }
    return DECODE.OK
  }
  if ((proto === IPPROTO.ICMP && !v6) || (proto === IPPROTO.ICMPV6 && v6)) {
    const pr = Icmp.check(b, o, end)
    if (pr) {
      out.problem = `transport header cut by the capture (${pr})`
      return DECODE.OK
    }
    out.l4 = true
    out.icmpType = Icmp.type(b, o)
    out.icmpCode = Icmp.code(b, o)
    if (!v6 && out.icmpType === 3 && out.icmpCode === 4) out.icmpMtu = Icmp.nextHopMtu(b, o)
    else if (v6 && out.icmpType === 2) out.icmpMtu = Icmp.mtu6(b, o)
    if (icmpQuotes(v6, out.icmpType)) decodeQuoted(b, o + Icmp.QUOTE_OFFSET, end, v6, out)
    return DECODE.OK
  }
  return DECODE.OK
}

/**
 * The datagram quoted inside an ICMP error: its IP header and at least the first 8 bytes of its transport
 * header (RFC 792; RFC 1812 4.3.2.3 asks routers for as much as fits; Linux quotes up to 576 bytes). A short
 * or broken quote leaves `inner` false and says why in `problem`; the outer packet still counts. A quoted
 * tunnel packet (IPIP, GRE, GUE) whose inner IP header is in the quote gives that inner packet as the quoted
 * one (`i*`) and its outer addresses in `it*`.
 */
function decodeQuoted(b: Bytes, o: number, end: number, v6: boolean, out: DecodedPacket): void {
  const l4 = quotedHeader(b, o, end, v6 ? 6 : 4, out)
  if (!out.inner) return
  out.iLen = v6 ? 40 + Ipv6.payloadLen(b, o) : Ipv4.totalLen(b, o)
  if (l4 < 0) return
  const ip = out.iProto
  let inner = -1
  let fam: 4 | 6 = 4
  let kind = 0
  let port = 0
  if (ip === IPPROTO.IPIP || ip === IPPROTO.IPV6) {
    inner = l4
    fam = ip === IPPROTO.IPIP ? 4 : 6
    kind = TUNNEL.IPIP
  } else if (ip === IPPROTO.GRE) {
    if (!Gre.check(b, l4, end)) {
      const et = Gre.protocol(b, l4)
      if (et === ETHERTYPE.IPV4 || et === ETHERTYPE.IPV6) {
        inner = l4 + Gre.headerLen(b, l4)
        fam = et === ETHERTYPE.IPV4 ? 4 : 6
        kind = TUNNEL.GRE
      }
    }
  } else if (ip === IPPROTO.UDP && out.iPorts && end - l4 >= 12) {
    const g = l4 + 8
    port = out.iDport
    // the quote may be cut anywhere: the length of the quoted datagram is not checked, the inner header is
    const len = 0
    const known = cfg.guePorts.has(port)
    if (!Gue.check(b, g, end) && (known || looksLikeGue(b, g, end, len))) {
      if (Gue.variant(b, g) === 1) {
        inner = g
        fam = b[g]! >> 4 === 6 ? 6 : 4
      } else if (!Gue.control(b, g)) {
        const pr = Gue.protocol(b, g)
        if (pr === IPPROTO.IPIP || pr === IPPROTO.IPV6) {
          inner = g + Gue.headerLen(b, g)
          fam = pr === IPPROTO.IPIP ? 4 : 6
        }
      }
      kind = TUNNEL.GUE
    }
  }
  if (inner < 0 || (fam === 4 ? Ipv4.check(b, inner, end) : Ipv6.check(b, inner, end))) return
  out.iTunnel = kind
  out.iTunPort = kind === TUNNEL.GUE ? port : 0
  out.itFamily = out.iFamily
  out.its0 = out.is0
  out.its1 = out.is1
  out.its2 = out.is2
  out.its3 = out.is3
  out.itd0 = out.id0
  out.itd1 = out.id1
  out.itd2 = out.id2
  out.itd3 = out.id3
  quotedHeader(b, inner, end, fam, out)
}

/**
 * The quoted IP header at b[o..end) and the ports/sequence behind it into the i* fields. Returns where its
 * transport header starts, or -1 (no IP header: `problem` says why; a fragment or IPv6 extension trouble: no
 * transport header).
 */
function quotedHeader(b: Bytes, o: number, end: number, family: 4 | 6, out: DecodedPacket): number {
  let l4: number
  out.iPorts = false
  out.iHasSeq = false
  if (family === 4) {
    const pr = Ipv4.check(b, o, end)
    if (pr) {
      out.problem = `ICMP quote: expected ${pr}`
      return -1
    }
    out.iFamily = 4
    out.is0 = out.is1 = out.is2 = 0
    out.id0 = out.id1 = out.id2 = 0
    out.is3 = Ipv4.src(b, o) | 0
    out.id3 = Ipv4.dst(b, o) | 0
    out.iProto = Ipv4.protocol(b, o)
    l4 = o + Ipv4.headerLen(b, o)
    if (Ipv4.fragOffset(b, o) !== 0) {
      out.inner = true
      return -1
    }
  } else {
    const pr = Ipv6.check(b, o, end)
    if (pr) {
      out.problem = `ICMPv6 quote: expected ${pr}`
      return -1
    }
    out.iFamily = 6
    out.is0 = Ipv6.srcWord(b, o, 0) | 0
    out.is1 = Ipv6.srcWord(b, o, 1) | 0
    out.is2 = Ipv6.srcWord(b, o, 2) | 0
    out.is3 = Ipv6.srcWord(b, o, 3) | 0
    out.id0 = Ipv6.dstWord(b, o, 0) | 0
    out.id1 = Ipv6.dstWord(b, o, 1) | 0
    out.id2 = Ipv6.dstWord(b, o, 2) | 0
    out.id3 = Ipv6.dstWord(b, o, 3) | 0
    const ep = walkIpv6Ext(b, o, end, upper)
    out.iProto = upper.proto
    out.inner = true
    if (ep || upper.fragment) return -1
    l4 = upper.offset
  }
  out.inner = true
  const ip = out.iProto
  if ((ip === IPPROTO.TCP || ip === IPPROTO.UDP) && end - l4 >= 4) {
    out.iPorts = true
    out.iSport = Tcp.srcPort(b, l4)
    out.iDport = Tcp.dstPort(b, l4)
    if (ip === IPPROTO.TCP && end - l4 >= 8) {
      out.iHasSeq = true
      out.iSeq = Tcp.seq(b, l4) | 0
    }
  }
  return l4
}
