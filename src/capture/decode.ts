// Frame → headers. One reusable DecodedPacket is filled per frame (no allocation on the hot path); every
// header goes through its checked constructor in wire.ts first, so no byte outside the frame is ever read
// and nothing here throws on hostile input.
import {
  ETHERTYPE, Ethernet, IPPROTO, Icmp, Ipv4, Ipv6, LINKTYPE, LinuxSll, LinuxSll2, Tcp, Udp, VlanTag,
  icmpQuotes, loopbackFamily, walkIpv6Ext, type Bytes, type Ipv6Upper,
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
    this.vlan = -1
    this.problem = undefined
  }
}

const upper: Ipv6Upper = {proto: 0, offset: 0, fragment: false}

/** Decodes the frame b[o..end) captured on a link of type `linkType` into `out`. */
export function decodeFrame(linkType: number, b: Bytes, o: number, end: number, out: DecodedPacket): DecodeStatus {
  out.reset()
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
  if (pr) return malformed(out, pr)
  const hl = Ipv4.headerLen(b, o)
  const total = Ipv4.totalLen(b, o)
  out.family = 4
  out.s0 = out.s1 = out.s2 = 0
  out.d0 = out.d1 = out.d2 = 0
  out.s3 = Ipv4.src(b, o) | 0
  out.d3 = Ipv4.dst(b, o) | 0
  out.proto = Ipv4.protocol(b, o)
  // Ethernet pads short frames: the IP length, not the frame, says where the datagram ends.
  const ipEnd = total === 0 ? end : o + total
  const l4end = ipEnd < end ? ipEnd : end
  if (Ipv4.fragOffset(b, o) !== 0) {
    out.problem = 'IPv4 fragment without the transport header'
    return DECODE.OK
  }
  return decodeL4(b, o + hl, l4end, ipEnd - (o + hl), false, out)
}

function decodeIpv6(b: Bytes, o: number, end: number, out: DecodedPacket): DecodeStatus {
  const pr = Ipv6.check(b, o, end)
  if (pr) return malformed(out, pr)
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
  const ipEnd = plen === 0 ? end : o + 40 + plen
  const l4end = ipEnd < end ? ipEnd : end
  const ep = walkIpv6Ext(b, o, l4end, upper)
  if (ep) return malformed(out, ep)
  out.proto = upper.proto
  if (upper.fragment) {
    out.problem = 'IPv6 fragment without the transport header'
    return DECODE.OK
  }
  return decodeL4(b, upper.offset, l4end, ipEnd - upper.offset, true, out)
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
    if (icmpQuotes(v6, out.icmpType)) decodeQuoted(b, o + Icmp.QUOTE_OFFSET, end, v6, out)
    return DECODE.OK
  }
  return DECODE.OK
}

/**
 * The datagram quoted inside an ICMP error: its IP header and at least the first 8 bytes of its transport
 * header (RFC 792; RFC 1812 4.3.2.3 asks routers for as much as fits). A short or broken quote leaves
 * `inner` false and says why in `problem`; the outer packet still counts.
 */
function decodeQuoted(b: Bytes, o: number, end: number, v6: boolean, out: DecodedPacket): void {
  let l4: number
  if (!v6) {
    const pr = Ipv4.check(b, o, end)
    if (pr) {
      out.problem = `ICMP quote: expected ${pr}`
      return
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
      return
    }
  } else {
    const pr = Ipv6.check(b, o, end)
    if (pr) {
      out.problem = `ICMPv6 quote: expected ${pr}`
      return
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
    if (ep || upper.fragment) return
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
}

