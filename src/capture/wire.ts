// Wire formats of the headers a capture holds, in the smoltcp shape (src/wire/mod.rs):
// - `check*(b, o, end)` is the checked constructor: it says whether a header of that kind fits in the
//   untrusted bytes b[o..end) and is self-consistent, and returns the reason when it does not;
// - raw accessors (`Tcp.seq(b, o)`...) read fields of a header that passed its check, nothing else;
// - `parse*` turns a checked header into a small value (a Repr) and `emit*` writes a Repr back.
// The decoder's hot path uses check + accessors (no allocation); tests, the bench generator and our own
// capture writer use Repr + emit.
//
// References: IEEE 802.3/802.1Q; Linux cooked capture v1/v2 (tcpdump.org/linktypes/LINKTYPE_LINUX_SLL*.html);
// RFC 791 (IPv4), RFC 8200 (IPv6 and its extension headers), RFC 9293 (TCP), RFC 768 (UDP),
// RFC 792 / RFC 1812 4.3.2.3 (ICMP, quoted datagram), RFC 4443 (ICMPv6); tunnels: RFC 2003 (IP in IP),
// RFC 2784/2890 (GRE with checksum, key, sequence), draft-ietf-intarea-gue-09 (GUE variants 0 and 1, as the
// kernel's include/net/gue.h lays it out and IPVS's ipvs_gue_encap() writes it).

export type Bytes = Uint8Array

/** A reason why bytes are not the header they should be; undefined when they are. */
export type WireProblem = string | undefined

export const u16 = (b: Bytes, o: number): number => (b[o]! << 8) | b[o + 1]!
export const u32 = (b: Bytes, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
export const u16le = (b: Bytes, o: number): number => b[o]! | (b[o + 1]! << 8)
export const u32le = (b: Bytes, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0

export function put16(b: Bytes, o: number, v: number): void {
  b[o] = (v >>> 8) & 255
  b[o + 1] = v & 255
}

export function put32(b: Bytes, o: number, v: number): void {
  b[o] = (v >>> 24) & 255
  b[o + 1] = (v >>> 16) & 255
  b[o + 2] = (v >>> 8) & 255
  b[o + 3] = v & 255
}

// ---- link types (tcpdump.org/linktypes.html) --------------------------------------------------------------

export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW as most systems define it, and OpenBSD's */
  DLT_RAW_12: 12,
  DLT_RAW_14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const

export const ETHERTYPE = {IPV4: 0x0800, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8, QINQ_OLD: 0x9100, ARP: 0x0806} as const

export const IPPROTO = {HOPOPTS: 0, ICMP: 1, IPIP: 4, TCP: 6, IPV6: 41, GRE: 47, UDP: 17, ROUTING: 43, FRAGMENT: 44, ESP: 50, AH: 51, ICMPV6: 58, NONE: 59, DSTOPTS: 60} as const

export const TCP_FLAG = {FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80} as const

// ---- Ethernet II and 802.1Q / 802.1ad tags ------------------------------------------------------------------

export const Ethernet = {
  HEADER_LEN: 14,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 14 ? 'Ethernet header (14 bytes)' : undefined),
  etherType: (b: Bytes, o: number): number => u16(b, o + 12),
}

/** An 802.1Q/802.1ad tag as it follows the outer EtherType: TCI (2 bytes) and the inner EtherType. */
export const VlanTag = {
  LEN: 4,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 4 ? '802.1Q tag (4 bytes)' : undefined),
  vid: (b: Bytes, o: number): number => u16(b, o) & 0x0fff,
  innerType: (b: Bytes, o: number): number => u16(b, o + 2),
}

export interface EthernetRepr {
  readonly dst: Bytes
  readonly src: Bytes
  readonly etherType: number
  /** 802.1Q VLAN ids, outermost first (each with TPID 0x8100; the outer one 0x88a8 when there are two) */
  readonly vlans?: readonly number[]
}

export function ethernetLen(r: EthernetRepr): number {
  return 14 + 4 * (r.vlans?.length ?? 0)
}

export function emitEthernet(r: EthernetRepr, b: Bytes, o: number): number {
  b.set(r.dst.subarray(0, 6), o)
  b.set(r.src.subarray(0, 6), o + 6)
  let p = o + 12
  const vlans = r.vlans ?? []
  vlans.forEach((vid, i) => {
    put16(b, p, vlans.length > 1 && i === 0 ? ETHERTYPE.QINQ : ETHERTYPE.VLAN)
    put16(b, p + 2, vid & 0x0fff)
    p += 4
  })
  put16(b, p, r.etherType)
  return p + 2 - o
}

// ---- Linux cooked capture v1 (16 bytes) and v2 (20 bytes) ---------------------------------------------------

export const LinuxSll = {
  HEADER_LEN: 16,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 16 ? 'Linux cooked (SLL) header (16 bytes)' : undefined),
  packetType: (b: Bytes, o: number): number => u16(b, o),
  arphrd: (b: Bytes, o: number): number => u16(b, o + 2),
  protocol: (b: Bytes, o: number): number => u16(b, o + 14),
}

export const LinuxSll2 = {
  HEADER_LEN: 20,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 20 ? 'Linux cooked v2 (SLL2) header (20 bytes)' : undefined),
  protocol: (b: Bytes, o: number): number => u16(b, o),
  ifindex: (b: Bytes, o: number): number => u32(b, o + 4),
  arphrd: (b: Bytes, o: number): number => u16(b, o + 8),
  packetType: (b: Bytes, o: number): number => b[o + 10]!,
}

export interface SllRepr {
  readonly version: 1 | 2
  /** 0 to us, 1 broadcast, 2 multicast, 3 to someone else, 4 outgoing */
  readonly packetType: number
  readonly protocol: number
  readonly ifindex?: number
}

export function emitSll(r: SllRepr, b: Bytes, o: number): number {
  if (r.version === 1) {
    b.fill(0, o, o + 16)
    put16(b, o, r.packetType)
    put16(b, o + 2, 1) // ARPHRD_ETHER
    put16(b, o + 4, 6)
    put16(b, o + 14, r.protocol)
    return 16
  }
  b.fill(0, o, o + 20)
  put16(b, o, r.protocol)
  put32(b, o + 4, r.ifindex ?? 0)
  put16(b, o + 8, 1)
  b[o + 10] = r.packetType
  b[o + 11] = 6
  return 20
}

// ---- BSD loopback (DLT_NULL: host byte order; DLT_LOOP: network byte order) --------------------------------

/** Address-family values a loopback header carries for IPv6 on the BSDs, macOS and Linux. */
const AF_INET6_VALUES = new Set([10, 24, 28, 30])

/** The EtherType equivalent of a loopback header's family word (either byte order), or 0. */
export function loopbackFamily(b: Bytes, o: number): number {
  let v = u32le(b, o)
  if (v > 0xffff) v = u32(b, o)
  if (v === 2) return ETHERTYPE.IPV4
  if (AF_INET6_VALUES.has(v)) return ETHERTYPE.IPV6
  return 0
}

// ---- IPv4 ------------------------------------------------------------------------------------------------------

export const Ipv4 = {
  MIN_LEN: 20,
  check(b: Bytes, o: number, end: number): WireProblem {
    if (end - o < 20) return 'IPv4 header (20 bytes)'
    const v = b[o]!
    if (v >> 4 !== 4) return 'IP version 4'
    const ihl = (v & 15) * 4
    if (ihl < 20) return 'IPv4 header length >= 20'
    if (end - o < ihl) return `IPv4 header with options (${ihl} bytes)`
    const total = u16(b, o + 2)
    if (total !== 0 && total < ihl) return 'IPv4 total length >= header length'
    return undefined
  },
  headerLen: (b: Bytes, o: number): number => (b[o]! & 15) * 4,
  /** 0 on TSO/BIG TCP packets captured before segmentation */
  totalLen: (b: Bytes, o: number): number => u16(b, o + 2),
  ident: (b: Bytes, o: number): number => u16(b, o + 4),
  dontFragment: (b: Bytes, o: number): boolean => (b[o + 6]! & 0x40) !== 0,
  moreFragments: (b: Bytes, o: number): boolean => (b[o + 6]! & 0x20) !== 0,
  /** fragment offset in bytes */
  fragOffset: (b: Bytes, o: number): number => (u16(b, o + 6) & 0x1fff) * 8,
  ttl: (b: Bytes, o: number): number => b[o + 8]!,
  protocol: (b: Bytes, o: number): number => b[o + 9]!,
  src: (b: Bytes, o: number): number => u32(b, o + 12),
  dst: (b: Bytes, o: number): number => u32(b, o + 16),
}

export interface Ipv4Repr {
  /** addresses as unsigned 32-bit numbers */
  readonly src: number
  readonly dst: number
  readonly protocol: number
  readonly ttl: number
  /** bytes after the header */
  readonly payloadLen: number
  readonly ident?: number
  readonly dontFragment?: boolean
  readonly fragOffset?: number
  readonly moreFragments?: boolean
}

export function parseIpv4(b: Bytes, o: number, end: number): Ipv4Repr | WireProblem {
  const p = Ipv4.check(b, o, end)
  if (p) return p
  const hl = Ipv4.headerLen(b, o)
  const total = Ipv4.totalLen(b, o)
  return {
    src: Ipv4.src(b, o),
    dst: Ipv4.dst(b, o),
    protocol: Ipv4.protocol(b, o),
    ttl: Ipv4.ttl(b, o),
    payloadLen: (total === 0 ? end - o : total) - hl,
    ident: Ipv4.ident(b, o),
    dontFragment: (b[o + 6]! & 0x40) !== 0,
    fragOffset: Ipv4.fragOffset(b, o),
    moreFragments: Ipv4.moreFragments(b, o),
  }
}

export function checksum(b: Bytes, o: number, len: number, initial = 0): number {
  let sum = initial
  let i = o
  const end = o + len
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!
  if (i < end) sum += b[i]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return sum
}

export function emitIpv4(r: Ipv4Repr, b: Bytes, o: number): number {
  b[o] = 0x45
  b[o + 1] = 0
  put16(b, o + 2, 20 + r.payloadLen)
  put16(b, o + 4, r.ident ?? 0)
  put16(b, o + 6, ((r.dontFragment ?? true) ? 0x4000 : 0) | ((r.moreFragments ?? false) ? 0x2000 : 0) | ((r.fragOffset ?? 0) >>> 3))
  b[o + 8] = r.ttl
  b[o + 9] = r.protocol
  put16(b, o + 10, 0)
  put32(b, o + 12, r.src)
  put32(b, o + 16, r.dst)
  put16(b, o + 10, ~checksum(b, o, 20) & 0xffff)
  return 20
}

// ---- IPv6 and its extension headers ------------------------------------------------------------------------

export const Ipv6 = {
  HEADER_LEN: 40,
  check(b: Bytes, o: number, end: number): WireProblem {
    if (end - o < 40) return 'IPv6 header (40 bytes)'
    if (b[o]! >> 4 !== 6) return 'IP version 6'
    return undefined
  },
  /** 0 for jumbograms and BIG TCP */
  payloadLen: (b: Bytes, o: number): number => u16(b, o + 4),
  nextHeader: (b: Bytes, o: number): number => b[o + 6]!,
  hopLimit: (b: Bytes, o: number): number => b[o + 7]!,
  /** the n-th 32-bit word (0..3) of the source address */
  srcWord: (b: Bytes, o: number, n: number): number => u32(b, o + 8 + 4 * n),
  dstWord: (b: Bytes, o: number, n: number): number => u32(b, o + 24 + 4 * n),
}

/** Where the upper-layer header of an IPv6 packet starts, after the extension headers. */
export interface Ipv6Upper {
  /** upper-layer protocol (IPPROTO), or IPPROTO.NONE */
  proto: number
  /** offset of the upper-layer header */
  offset: number
  /** a non-first fragment: the upper-layer header is not in this packet */
  fragment: boolean
}

const MAX_EXT_HEADERS = 16

/**
 * Walks the extension headers (hop-by-hop, routing, fragment, destination options, AH) from the fixed
 * header at `o`. Returns a problem when an extension header does not fit; stops at ESP (encrypted).
 */
export function walkIpv6Ext(b: Bytes, o: number, end: number, out: Ipv6Upper): WireProblem {
  let next = Ipv6.nextHeader(b, o)
  let p = o + 40
  out.fragment = false
  for (let n = 0; n < MAX_EXT_HEADERS; n++) {
    if (next === IPPROTO.HOPOPTS || next === IPPROTO.ROUTING || next === IPPROTO.DSTOPTS) {
      if (end - p < 8) return 'IPv6 extension header (8 bytes)'
      const len = (b[p + 1]! + 1) * 8
      if (end - p < len) return `IPv6 extension header (${len} bytes)`
      next = b[p]!
      p += len
    } else if (next === IPPROTO.FRAGMENT) {
      if (end - p < 8) return 'IPv6 fragment header (8 bytes)'
      if ((u16(b, p + 2) & 0xfff8) !== 0) out.fragment = true
      next = b[p]!
      p += 8
      if (out.fragment) break
    } else if (next === IPPROTO.AH) {
      if (end - p < 8) return 'IPv6 authentication header (8 bytes)'
      const len = (b[p + 1]! + 2) * 4
      if (end - p < len) return `IPv6 authentication header (${len} bytes)`
      next = b[p]!
      p += len
    } else break
  }
  out.proto = next
  out.offset = p
  return undefined
}

export interface Ipv6Repr {
  /** 16 bytes each */
  readonly src: Bytes
  readonly dst: Bytes
  readonly nextHeader: number
  readonly hopLimit: number
  readonly payloadLen: number
}

export function parseIpv6(b: Bytes, o: number, end: number): Ipv6Repr | WireProblem {
  const p = Ipv6.check(b, o, end)
  if (p) return p
  return {
    src: b.slice(o + 8, o + 24),
    dst: b.slice(o + 24, o + 40),
    nextHeader: Ipv6.nextHeader(b, o),
    hopLimit: Ipv6.hopLimit(b, o),
    payloadLen: Ipv6.payloadLen(b, o),
  }
}

export function emitIpv6(r: Ipv6Repr, b: Bytes, o: number): number {
  put32(b, o, 0x60000000)
  put16(b, o + 4, r.payloadLen)
  b[o + 6] = r.nextHeader
  b[o + 7] = r.hopLimit
  b.set(r.src.subarray(0, 16), o + 8)
  b.set(r.dst.subarray(0, 16), o + 24)
  return 40
}

// ---- TCP ---------------------------------------------------------------------------------------------------------

export const Tcp = {
  MIN_LEN: 20,
  check(b: Bytes, o: number, end: number): WireProblem {
    if (end - o < 20) return 'TCP header (20 bytes)'
    const doff = (b[o + 12]! >> 4) * 4
    if (doff < 20) return 'TCP data offset >= 20 bytes'
    if (end - o < doff) return `TCP header with options (${doff} bytes)`
    return undefined
  },
  srcPort: (b: Bytes, o: number): number => u16(b, o),
  dstPort: (b: Bytes, o: number): number => u16(b, o + 2),
  seq: (b: Bytes, o: number): number => u32(b, o + 4),
  ack: (b: Bytes, o: number): number => u32(b, o + 8),
  headerLen: (b: Bytes, o: number): number => (b[o + 12]! >> 4) * 4,
  flags: (b: Bytes, o: number): number => b[o + 13]!,
  window: (b: Bytes, o: number): number => u16(b, o + 14),
}

export interface TcpRepr {
  readonly srcPort: number
  readonly dstPort: number
  readonly seq: number
  readonly ack: number
  /** TCP_FLAG bits */
  readonly flags: number
  readonly window?: number
  readonly payloadLen?: number
}

export function parseTcp(b: Bytes, o: number, end: number): TcpRepr | WireProblem {
  const p = Tcp.check(b, o, end)
  if (p) return p
  return {
    srcPort: Tcp.srcPort(b, o),
    dstPort: Tcp.dstPort(b, o),
    seq: Tcp.seq(b, o),
    ack: Tcp.ack(b, o),
    flags: Tcp.flags(b, o),
    window: Tcp.window(b, o),
    payloadLen: end - o - Tcp.headerLen(b, o),
  }
}

/** Writes a 20-byte TCP header (checksum left 0; see `finishL4Checksum`). */
export function emitTcp(r: TcpRepr, b: Bytes, o: number): number {
  put16(b, o, r.srcPort)
  put16(b, o + 2, r.dstPort)
  put32(b, o + 4, r.seq)
  put32(b, o + 8, r.ack)
  b[o + 12] = 5 << 4
  b[o + 13] = r.flags
  put16(b, o + 14, r.window ?? 64240)
  put32(b, o + 16, 0)
  return 20
}

// ---- UDP ---------------------------------------------------------------------------------------------------------

export const Udp = {
  HEADER_LEN: 8,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 8 ? 'UDP header (8 bytes)' : undefined),
  srcPort: (b: Bytes, o: number): number => u16(b, o),
  dstPort: (b: Bytes, o: number): number => u16(b, o + 2),
  length: (b: Bytes, o: number): number => u16(b, o + 4),
}

export interface UdpRepr {
  readonly srcPort: number
  readonly dstPort: number
  readonly payloadLen: number
}

export function emitUdp(r: UdpRepr, b: Bytes, o: number): number {
  put16(b, o, r.srcPort)
  put16(b, o + 2, r.dstPort)
  put16(b, o + 4, 8 + r.payloadLen)
  put16(b, o + 6, 0)
  return 8
}

// ---- tunnels: GRE and GUE -------------------------------------------------------------------------------------

/** GRE (RFC 2784, keys and sequence numbers RFC 2890): flags/version word, protocol, then the optional fields. */
export const Gre = {
  MIN_LEN: 4,
  F_CSUM: 0x8000,
  F_ROUTING: 0x4000,
  F_KEY: 0x2000,
  F_SEQ: 0x1000,
  flags: (b: Bytes, o: number): number => u16(b, o),
  version: (b: Bytes, o: number): number => b[o + 1]! & 7,
  protocol: (b: Bytes, o: number): number => u16(b, o + 2),
  /** header length the flags ask for (checksum+reserved, key, sequence: 4 bytes each) */
  headerLen(b: Bytes, o: number): number {
    const f = u16(b, o)
    return 4 + (f & 0xc000 ? 4 : 0) + (f & 0x2000 ? 4 : 0) + (f & 0x1000 ? 4 : 0)
  },
  check(b: Bytes, o: number, end: number): WireProblem {
    if (end - o < 4) return 'GRE header (4 bytes)'
    const v = b[o + 1]! & 7
    if (v !== 0) return `GRE version 0 (version ${v} is PPTP's enhanced GRE)`
    if (u16(b, o) & 0x4000) return 'GRE without source routing (the R bit of RFC 1701 is set)'
    const hl = Gre.headerLen(b, o)
    if (end - o < hl) return `GRE header with its optional fields (${hl} bytes)`
    return undefined
  },
  /** the key (RFC 2890), when the K bit is set */
  key: (b: Bytes, o: number): number => u32(b, o + 4 + (u16(b, o) & 0xc000 ? 4 : 0)),
}

/**
 * Generic UDP Encapsulation after the UDP header. Variant 0: `ver(2)=0 C(1) hlen(5) | proto/ctype(8) | flags(16)`
 * and hlen 32-bit words of extension fields (IPVS's --tun-remcsum adds the private flags and the remote
 * checksum offload field: hlen 2). Variant 1: the IPv4/IPv6 header itself (its first two bits are 01).
 */
export const Gue = {
  MIN_LEN: 4,
  variant: (b: Bytes, o: number): number => b[o]! >> 6,
  control: (b: Bytes, o: number): boolean => (b[o]! & 0x20) !== 0,
  /** header length in bytes (variant 0) */
  headerLen: (b: Bytes, o: number): number => 4 + (b[o]! & 0x1f) * 4,
  protocol: (b: Bytes, o: number): number => b[o + 1]!,
  check(b: Bytes, o: number, end: number): WireProblem {
    if (end - o < 1) return 'GUE header (at least 1 byte)'
    const v = b[o]! >> 6
    if (v === 1) return undefined
    if (v !== 0) return `GUE variant 0 or 1, found ${v}`
    if (end - o < 4) return 'GUE header (4 bytes)'
    const hl = Gue.headerLen(b, o)
    if (end - o < hl) return `GUE header with its extension fields (${hl} bytes)`
    return undefined
  },
}

/** The UDP port IANA assigned to GUE (ipvsadm's --tun-port examples use it too). */
export const GUE_PORT = 6080

/** Is b[o..end) an IPv4 header with a valid header checksum and exactly `len` bytes long (0: any length)? */
export function plausibleIpv4(b: Bytes, o: number, end: number, len: number): boolean {
  if (Ipv4.check(b, o, end)) return false
  const hl = Ipv4.headerLen(b, o)
  if (len !== 0 && Ipv4.totalLen(b, o) !== len) return false
  return checksum(b, o, hl) === 0xffff
}

/** Is b[o..end) an IPv6 header whose payload length makes it exactly `len` bytes long? */
export function plausibleIpv6(b: Bytes, o: number, end: number, len: number): boolean {
  if (Ipv6.check(b, o, end)) return false
  return Ipv6.payloadLen(b, o) + 40 === len
}

// ---- ICMP and ICMPv6 -------------------------------------------------------------------------------------------

export const Icmp = {
  HEADER_LEN: 8,
  check: (b: Bytes, o: number, end: number): WireProblem => (end - o < 8 ? 'ICMP header (8 bytes)' : undefined),
  type: (b: Bytes, o: number): number => b[o]!,
  code: (b: Bytes, o: number): number => b[o + 1]!,
  /** the quoted datagram of an error message starts here (RFC 792, RFC 4443 2.1) */
  QUOTE_OFFSET: 8,
  /** ICMP fragmentation needed (type 3 code 4): the next-hop MTU (RFC 1191), 0 from old routers */
  nextHopMtu: (b: Bytes, o: number): number => u16(b, o + 6),
  /** ICMPv6 packet too big (type 2): the MTU (RFC 4443 3.2) */
  mtu6: (b: Bytes, o: number): number => u32(b, o + 4),
}

export const ICMP4 = {ECHO_REPLY: 0, DEST_UNREACH: 3, SOURCE_QUENCH: 4, REDIRECT: 5, ECHO: 8, TIME_EXCEEDED: 11, PARAM_PROBLEM: 12} as const
export const ICMP6 = {DEST_UNREACH: 1, PACKET_TOO_BIG: 2, TIME_EXCEEDED: 3, PARAM_PROBLEM: 4, ECHO: 128, ECHO_REPLY: 129} as const

/** ICMP types whose body quotes the offending datagram. */
export function icmpQuotes(v6: boolean, type: number): boolean {
  if (v6) return type >= 1 && type <= 4
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12
}

export interface IcmpRepr {
  readonly type: number
  readonly code: number
  /** bytes 4..7 (identifier/sequence, next-hop MTU, gateway...) */
  readonly rest?: number
}

export function emitIcmp(r: IcmpRepr, b: Bytes, o: number): number {
  b[o] = r.type
  b[o + 1] = r.code
  put16(b, o + 2, 0)
  put32(b, o + 4, r.rest ?? 0)
  return 8
}

/**
 * Fills in the checksum of an emitted TCP/UDP/ICMP/ICMPv6 segment at `l4` (length `len`) inside the IP
 * packet at `ip` (ICMPv4 has no pseudo-header).
 */
export function finishL4Checksum(b: Bytes, ip: number, l4: number, len: number, proto: number): void {
  const at = proto === IPPROTO.TCP ? 16 : proto === IPPROTO.UDP ? 6 : 2
  put16(b, l4 + at, 0)
  let pseudo = 0
  const v6 = b[ip]! >> 4 === 6
  if (proto !== IPPROTO.ICMP) {
    if (v6) pseudo = checksum(b, ip + 8, 32) + (len >>> 16) + (len & 0xffff) + proto
    else pseudo = checksum(b, ip + 12, 8) + len + proto
  }
  let sum = ~checksum(b, l4, len, pseudo) & 0xffff
  if (sum === 0 && proto === IPPROTO.UDP) sum = 0xffff
  put16(b, l4 + at, sum)
}
