// The packet the dataplane moves around, and what conntrack and IPVS attach to it (the skb's metadata).
import {formatIp, type Family, type IpAddr} from '../model/ip.js'
import type {CtState} from '../model/iptables.js'

export const PROTO = {icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132} as const

export interface TcpFlags {
  readonly syn: boolean
  readonly ack: boolean
  readonly fin: boolean
  readonly rst: boolean
  readonly psh: boolean
  readonly urg: boolean
}

export const NO_FLAGS: TcpFlags = {syn: false, ack: false, fin: false, rst: false, psh: false, urg: false}

export function tcpFlags(spec: string): TcpFlags {
  // 'S', 'SA', 'A', 'PA', 'FA', 'R', 'RA' as tcpdump prints them ('.' is ACK)
  const s = spec.toUpperCase()
  return {
    syn: s.includes('S'),
    ack: s.includes('A') || s.includes('.'),
    fin: s.includes('F'),
    rst: s.includes('R'),
    psh: s.includes('P'),
    urg: s.includes('U'),
  }
}

export function formatFlags(f: TcpFlags): string {
  let s = ''
  if (f.syn) s += 'S'
  if (f.fin) s += 'F'
  if (f.rst) s += 'R'
  if (f.psh) s += 'P'
  if (f.urg) s += 'U'
  if (f.ack) s += '.'
  return s || 'none'
}

/** A packet's headers and the metadata netfilter matches on. Values, never mutated in place by callers. */
export interface Packet {
  readonly family: Family
  readonly src: IpAddr
  readonly dst: IpAddr
  /** IP protocol number */
  readonly proto: number
  readonly sport?: number
  readonly dport?: number
  readonly flags?: TcpFlags
  /** payload bytes (request/response data) */
  readonly payload?: number
  readonly icmpType?: number
  readonly icmpCode?: number
  /** the headers quoted inside an ICMP error */
  readonly inner?: Packet
  /** skb->mark */
  readonly mark: number
}

export function withPacket(p: Packet, change: Partial<Packet>): Packet {
  return {...p, ...change}
}

export function formatPacket(p: Packet): string {
  const ep = (ip: IpAddr, port?: number) =>
    port === undefined ? formatIp(ip) : ip.family === 6 ? `[${formatIp(ip)}]:${port}` : `${formatIp(ip)}:${port}`
  let s = `${ep(p.src, p.sport)} > ${ep(p.dst, p.dport)}`
  if (p.proto === PROTO.tcp && p.flags) s += ` ${formatFlags(p.flags)}`
  else if (p.proto === PROTO.udp) s += ' udp'
  else if (p.proto === PROTO.icmp || p.proto === PROTO.icmpv6) s += ` icmp ${p.icmpType ?? '?'}/${p.icmpCode ?? '?'}`
  else if (p.proto === 4 && p.inner) s += ` ipip [${formatPacket(p.inner)}]`
  if (p.mark) s += ` mark 0x${p.mark.toString(16)}`
  return s
}

/** A conntrack tuple: what conntrack keys a connection by in one direction. */
export interface Tuple {
  readonly src: IpAddr
  readonly dst: IpAddr
  readonly proto: number
  readonly sport: number
  readonly dport: number
}

export function tupleOf(p: Packet): Tuple {
  return {src: p.src, dst: p.dst, proto: p.proto, sport: p.sport ?? p.icmpType ?? 0, dport: p.dport ?? p.icmpCode ?? 0}
}

export function invertTuple(t: Tuple): Tuple {
  return {src: t.dst, dst: t.src, proto: t.proto, sport: t.dport, dport: t.sport}
}

export function tupleKey(t: Tuple): string {
  return `${t.proto}|${t.src.family}|${t.src.value}|${t.sport}|${t.dst.value}|${t.dport}`
}

/**
 * What a netfilter match sees of the packet's conntrack entry (nf_ct_get): its state relative to this
 * packet, the entry's status bits and tuples, and the connection mark.
 */
export interface CtView {
  readonly state: CtState
  /** 'ORIGINAL' when the packet travels in the direction of the first packet */
  readonly dir: 'ORIGINAL' | 'REPLY'
  /** EXPECTED SEEN_REPLY ASSURED CONFIRMED SNAT DNAT */
  readonly status: ReadonlySet<string>
  readonly orig?: Tuple
  readonly reply?: Tuple
  /** ct mark (the CONNMARK target writes through `setMark`) */
  readonly mark: number
}

/** What IPVS attached to the skb (matched by `-m ipvs`). */
export interface IpvsView {
  readonly vaddr: IpAddr
  readonly vport: number
  readonly vproto: number
  readonly method: 'GATE' | 'IPIP' | 'MASQ'
  readonly dir: 'ORIGINAL' | 'REPLY'
}
