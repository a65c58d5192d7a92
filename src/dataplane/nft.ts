// The nftables interpreter: one packet through one nft base chain, following jump/goto/return through regular
// chains, verdict maps and the chain policy, as nft_do_chain (net/netfilter/nf_tables_core.c) does. Each rule's
// statements run in order; a match that fails ends the rule (NFT_BREAK); a verdict ends the chain (accept, drop,
// queue, reject and the NAT statements are terminal, nft_nat_eval setting NF_ACCEPT). What the snapshot cannot
// decide (a random seed, a socket owner, link-layer addresses, a bare iptables-nft `xt` expression) is an
// assumption, reported with the rule, never a silent guess.
//
// The result has the shape of the iptables interpreter's (netfilter.ts ChainResult): the deciding rule (an
// NftRule here), a Target in iptables terms (ACCEPT/DROP/QUEUE/REJECT with its type/DNAT/SNAT/MASQUERADE/REDIRECT
// with the resolved address), the policy flag, the trail, the assumptions, the packet after marks, the ct mark
// after `ct mark set`, and notrack; so callers treat both alike.
import {formatIp, prefixContains, type IpAddr} from '../model/ip.js'
import type {AddrType, NatRange, Target} from '../model/iptables.js'
import {formatNftExpr, formatNftStmt, type NftChain, type NftExpr, type NftRule, type NftSet, type NftSetElem, type NftStmt, type NftTable, type NftVerdict} from '../model/nft.js'
import type {ChainVerdict, MatchEnv} from './netfilter.js'
import {PROTO, type Packet} from './packet.js'

/** A fib lookup (`fib daddr type`, `fib saddr . iif oif`): the host answers it from its routing tables. */
export interface FibQuery {
  readonly flags: readonly string[]
  readonly result: string
  readonly packet: Packet
  readonly iif?: string
  readonly oif?: string
}

/** 'type': a lower-case route type (local, unicast...); 'oif'/'oifname': the device name, or null when there is no route */
export type FibAnswer = {readonly kind: 'type'; readonly type: string} | {readonly kind: 'oif'; readonly dev: string | null}

export interface NftEnv extends MatchEnv {
  /** per-expression counters of `numgen inc` (state lives with the caller, like nthCounters) */
  readonly numgen?: Map<string, number>
  /** answers fib expressions from the host's routes; undefined: `fib ... type` falls back to addrType, others are assumed */
  readonly fib?: (q: FibQuery) => FibAnswer | undefined
}

export interface NftAssumption {
  readonly rule: NftRule
  readonly what: string
}

export interface NftChainResult {
  readonly verdict: ChainVerdict
  /** the rule whose statement decided (undefined: the base chain's policy decided) */
  readonly rule?: NftRule
  /** the decision in iptables terms: REJECT with its ICMP type, NAT targets with the address they resolved to */
  readonly target?: Target
  /** the deciding statement, in nft syntax */
  readonly stmt?: string
  readonly policy: boolean
  /** every rule whose matches all succeeded, in order */
  readonly trail: readonly NftRule[]
  readonly assumptions: readonly NftAssumption[]
  /** the packet after `meta mark set` */
  readonly packet: Packet
  /** the ct mark after `ct mark set` */
  readonly ctMark: number
  /** `notrack` ran */
  readonly notrack: boolean
}

/** nft_do_chain's jump stack (NFT_JUMP_STACK_SIZE) */
const MAX_DEPTH = 16

// ---- values ---------------------------------------------------------------------------------------------

/** What an expression evaluates to for this packet. */
export type NftValue =
  | {readonly t: 'int'; readonly v: number}
  | {readonly t: 'addr'; readonly v: IpAddr}
  | {readonly t: 'str'; readonly v: string}
  /** bitmask types (ct state, ct status, tcp flags): the names of the bits set */
  | {readonly t: 'flags'; readonly v: ReadonlySet<string>}
  | {readonly t: 'bool'; readonly v: boolean}
  | {readonly t: 'cat'; readonly v: readonly NftValue[]}
  | {readonly t: 'verdict'; readonly v: NftVerdict}

/** An expression the packet does not have (a TCP port of a UDP packet): the rule does not match (NFT_BREAK). */
const ABSENT = {t: 'absent'} as const
/** An expression the snapshot cannot decide: `value` is the stand-in used, `what` says why. */
interface Assumed {
  readonly t: 'assumed'
  readonly what: string
  readonly value?: NftValue
}
type Eval = NftValue | typeof ABSENT | Assumed

const int = (v: number): NftValue => ({t: 'int', v})
const str = (v: string): NftValue => ({t: 'str', v})

// Symbolic constants nft prints for integer types (nftables src/proto.c, src/datatype.c, src/ct.c).
const L4PROTO: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, ipencap: 4, ipip: 4, tcp: 6, egp: 8, udp: 17, ipv6: 41, 'ipv6-route': 43, 'ipv6-frag': 44, gre: 47,
  esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, vrrp: 112, l2tp: 115, sctp: 132,
  udplite: 136, dccp: 33, comp: 108,
}
const NFPROTO: Readonly<Record<string, number>> = {ipv4: 2, ipv6: 10}
const ETHERTYPE: Readonly<Record<string, number>> = {ip: 0x0800, arp: 0x0806, ip6: 0x86dd, ipv6: 0x86dd, vlan: 0x8100, '8021ad': 0x88a8}
const ICMP_TYPE: Readonly<Record<string, number>> = {
  'echo-reply': 0, 'destination-unreachable': 3, 'source-quench': 4, redirect: 5, 'echo-request': 8, 'router-advertisement': 9,
  'router-solicitation': 10, 'time-exceeded': 11, 'parameter-problem': 12, 'timestamp-request': 13, 'timestamp-reply': 14,
  'info-request': 15, 'info-reply': 16, 'address-mask-request': 17, 'address-mask-reply': 18,
}
const ICMPV6_TYPE: Readonly<Record<string, number>> = {
  'destination-unreachable': 1, 'packet-too-big': 2, 'time-exceeded': 3, 'parameter-problem': 4, 'echo-request': 128,
  'echo-reply': 129, 'mld-listener-query': 130, 'mld-listener-report': 131, 'mld-listener-done': 132, 'mld-listener-reduction': 132,
  'nd-router-solicit': 133, 'nd-router-advert': 134, 'nd-neighbor-solicit': 135, 'nd-neighbor-advert': 136, 'nd-redirect': 137,
  'router-renumbering': 138, 'ind-neighbor-solicit': 141, 'ind-neighbor-advert': 142, 'mld2-listener-report': 143,
}
const SERVICES: Readonly<Record<string, number>> = {ssh: 22, smtp: 25, domain: 53, http: 80, https: 443, mysql: 3306, 'http-alt': 8080}
const L4_WITH_PORTS = new Set<number>([PROTO.tcp, PROTO.udp, PROTO.sctp, 136, 33])

/** The integer a symbolic constant stands for, given what it is compared with; undefined when unknown. */
function symbol(left: NftExpr, name: string): number | undefined {
  const field = left.kind === 'payload' ? `${left.protocol} ${left.field}` : left.kind === 'meta' ? `meta ${left.key}` : left.kind === 'ct' ? `ct ${left.key}` : ''
  switch (field) {
    case 'meta l4proto':
    case 'ip protocol':
    case 'ip6 nexthdr':
    case 'ct protocol':
      return L4PROTO[name]
    case 'meta nfproto':
    case 'ct l3proto':
      return NFPROTO[name]
    case 'meta protocol':
    case 'ether type':
    case 'vlan type':
      return ETHERTYPE[name]
    case 'icmp type':
      return ICMP_TYPE[name]
    case 'icmpv6 type':
      return ICMPV6_TYPE[name]
  }
  if (left.kind === 'payload' && (left.field === 'sport' || left.field === 'dport')) return SERVICES[name]
  if (left.kind === 'ct' && (left.key === 'proto-src' || left.key === 'proto-dst')) return SERVICES[name]
  return undefined
}

// ---- jhash (include/linux/jhash.h, lookup3 by Bob Jenkins), as nft_jhash_eval uses it ---------------------

const rol32 = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0

/**
 * jhash(key, length, initval) of include/linux/jhash.h. The kernel reads the key with __get_unaligned_cpu32, so
 * the result depends on the CPU's byte order: this is the little-endian result (x86-64, arm64).
 */
export function jhash(key: Uint8Array, initval: number): number {
  let length = key.length
  let a = (0xdeadbeef + length + initval) >>> 0
  let b = a
  let c = a
  let k = 0
  const u32 = (i: number) => (key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24)) >>> 0
  while (length > 12) {
    a = (a + u32(k)) >>> 0
    b = (b + u32(k + 4)) >>> 0
    c = (c + u32(k + 8)) >>> 0
    // __jhash_mix
    a = (a - c) >>> 0; a = (a ^ rol32(c, 4)) >>> 0; c = (c + b) >>> 0
    b = (b - a) >>> 0; b = (b ^ rol32(a, 6)) >>> 0; a = (a + c) >>> 0
    c = (c - b) >>> 0; c = (c ^ rol32(b, 8)) >>> 0; b = (b + a) >>> 0
    a = (a - c) >>> 0; a = (a ^ rol32(c, 16)) >>> 0; c = (c + b) >>> 0
    b = (b - a) >>> 0; b = (b ^ rol32(a, 19)) >>> 0; a = (a + c) >>> 0
    c = (c - b) >>> 0; c = (c ^ rol32(b, 4)) >>> 0; b = (b + a) >>> 0
    length -= 12
    k += 12
  }
  if (length === 0) return c
  const byte = (i: number) => (i < length ? key[k + i]! : 0)
  c = (c + ((byte(11) << 24) | (byte(10) << 16) | (byte(9) << 8) | byte(8))) >>> 0
  b = (b + ((byte(7) << 24) | (byte(6) << 16) | (byte(5) << 8) | byte(4))) >>> 0
  a = (a + ((byte(3) << 24) | (byte(2) << 16) | (byte(1) << 8) | byte(0))) >>> 0
  // __jhash_final
  c = (c ^ b) >>> 0; c = (c - rol32(b, 14)) >>> 0
  a = (a ^ c) >>> 0; a = (a - rol32(c, 11)) >>> 0
  b = (b ^ a) >>> 0; b = (b - rol32(a, 25)) >>> 0
  c = (c ^ b) >>> 0; c = (c - rol32(b, 16)) >>> 0
  a = (a ^ c) >>> 0; a = (a - rol32(c, 4)) >>> 0
  b = (b ^ a) >>> 0; b = (b - rol32(a, 14)) >>> 0
  c = (c ^ b) >>> 0; c = (c - rol32(b, 24)) >>> 0
  return c
}

/** reciprocal_scale(val, ep_ro): (u32)(((u64)val * ep_ro) >> 32) */
export function reciprocalScale(val: number, n: number): number {
  return Number((BigInt(val >>> 0) * BigInt(n >>> 0)) >> 32n)
}

/** Byte length of a field as nft loads it into a register (network byte order). */
function fieldBytes(e: NftExpr, v: NftValue): number | undefined {
  if (v.t === 'addr') return v.v.family === 4 ? 4 : 16
  if (e.kind === 'payload' && (e.field === 'sport' || e.field === 'dport')) return 2
  if (e.kind === 'payload' && (e.field === 'protocol' || e.field === 'nexthdr')) return 1
  if (e.kind === 'meta' && (e.key === 'l4proto' || e.key === 'nfproto')) return 1
  if (e.kind === 'meta' && (e.key === 'mark' || e.key === 'iif' || e.key === 'oif')) return 4
  if (e.kind === 'ct' && e.key === 'mark') return 4
  return undefined
}

function bytesOf(v: NftValue, len: number): Uint8Array {
  const out = new Uint8Array(len)
  let n = v.t === 'addr' ? v.v.value : v.t === 'int' ? BigInt(v.v >>> 0) : 0n
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn)
    n >>= 8n
  }
  return out
}

/**
 * The register contents nft_jhash reads: each component in network byte order; in a concatenation every
 * component starts on a 32-bit register boundary (nftables netlink_padded_len), the padding zero.
 */
export function hashInput(parts: readonly {expr: NftExpr; value: NftValue}[]): Uint8Array | undefined {
  const chunks: Uint8Array[] = []
  for (const p of parts) {
    const len = fieldBytes(p.expr, p.value)
    if (len === undefined) return undefined
    const b = bytesOf(p.value, len)
    const padded = parts.length > 1 ? new Uint8Array(Math.ceil(len / 4) * 4) : new Uint8Array(len)
    padded.set(b)
    chunks.push(padded)
  }
  const total = chunks.reduce((a, c) => a + c.length, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

// ---- evaluation -----------------------------------------------------------------------------------------

/** The mutable state of one chain run. */
interface Run {
  packet: Packet
  ctMark: number
  readonly env: NftEnv
  readonly table: NftTable
  readonly rule: NftRule
  /** position of the statement in its rule, to key numgen inc counters */
  stmtIndex: number
  /** assumptions made while evaluating the current rule */
  pending: string[]
}

function tcpFlagNames(p: Packet): Set<string> {
  const out = new Set<string>()
  const f = p.flags
  if (!f) return out
  if (f.fin) out.add('fin')
  if (f.syn) out.add('syn')
  if (f.rst) out.add('rst')
  if (f.psh) out.add('psh')
  if (f.ack) out.add('ack')
  if (f.urg) out.add('urg')
  return out
}

const CT_STATUS: Readonly<Record<string, string>> = {
  EXPECTED: 'expected',
  SEEN_REPLY: 'seen-reply',
  ASSURED: 'assured',
  CONFIRMED: 'confirmed',
  SNAT: 'snat',
  DNAT: 'dnat',
  DYING: 'dying',
}

function payload(e: Extract<NftExpr, {kind: 'payload'}>, r: Run): Eval {
  const p = r.packet
  const assume = (why: string): Assumed => ({t: 'assumed', what: `${e.protocol} ${e.field}: ${why}`})
  switch (e.protocol) {
    case 'ip':
      if (p.family !== 4) return ABSENT
      if (e.field === 'saddr') return {t: 'addr', v: p.src}
      if (e.field === 'daddr') return {t: 'addr', v: p.dst}
      if (e.field === 'protocol') return int(p.proto)
      if (e.field === 'version') return int(4)
      return assume('the IP header field is not in the replayed packet')
    case 'ip6':
      if (p.family !== 6) return ABSENT
      if (e.field === 'saddr') return {t: 'addr', v: p.src}
      if (e.field === 'daddr') return {t: 'addr', v: p.dst}
      if (e.field === 'nexthdr') return int(p.proto)
      if (e.field === 'version') return int(6)
      return assume('the IPv6 header field is not in the replayed packet')
    case 'tcp':
    case 'udp':
    case 'udplite':
    case 'sctp':
    case 'dccp':
    case 'th': {
      const proto = e.protocol === 'th' ? undefined : e.protocol === 'udplite' ? 136 : e.protocol === 'dccp' ? 33 : PROTO[e.protocol]
      if (proto !== undefined ? p.proto !== proto : !L4_WITH_PORTS.has(p.proto)) return ABSENT
      if (e.field === 'sport') return p.sport === undefined ? ABSENT : int(p.sport)
      if (e.field === 'dport') return p.dport === undefined ? ABSENT : int(p.dport)
      if (e.field === 'flags' && e.protocol === 'tcp') return {t: 'flags', v: tcpFlagNames(p)}
      return assume('the transport header field is not in the replayed packet')
    }
    case 'icmp':
      if (p.proto !== PROTO.icmp || p.family !== 4) return ABSENT
      if (e.field === 'type') return p.icmpType === undefined ? assume('no ICMP type') : int(p.icmpType)
      if (e.field === 'code') return p.icmpCode === undefined ? assume('no ICMP code') : int(p.icmpCode)
      return assume('the ICMP header field is not in the replayed packet')
    case 'icmpv6':
      if (p.proto !== PROTO.icmpv6 || p.family !== 6) return ABSENT
      if (e.field === 'type') return p.icmpType === undefined ? assume('no ICMPv6 type') : int(p.icmpType)
      if (e.field === 'code') return p.icmpCode === undefined ? assume('no ICMPv6 code') : int(p.icmpCode)
      return assume('the ICMPv6 header field is not in the replayed packet')
    case 'ether':
      if (e.field === 'type') return int(p.family === 4 ? 0x0800 : 0x86dd)
      return assume('link-layer addresses are not modelled')
    case 'arp':
    case 'vlan':
    case 'ip6nd':
      // the replayed packets are untagged IP: no ARP or VLAN header
      return ABSENT
    default:
      return assume('this header is not modelled')
  }
}

function meta(e: Extract<NftExpr, {kind: 'meta'}>, r: Run): Eval {
  const p = r.packet
  const env = r.env
  switch (e.key) {
    case 'l4proto':
      return int(p.proto)
    case 'nfproto':
      return int(p.family === 4 ? 2 : 10)
    case 'protocol':
      return int(p.family === 4 ? 0x0800 : 0x86dd)
    case 'mark':
      return int(p.mark >>> 0)
    case 'iifname':
    case 'iif':
    case 'oifname':
    case 'oif': {
      // nft_meta_get_eval_ifname: a hook without that device (no input device at output, or at postrouting of a
      // local packet; no output device at prerouting and input) loads the empty name / ifindex 0, which no device
      // name equals (so `iifname != "lo"` matches there; kernels before 5.6 broke the rule instead)
      const dev = e.key.startsWith('i') ? env.iif : env.oif
      return str(dev ?? '')
    }
    case 'pkttype': {
      const t = env.addrType(p.dst)
      return str(t === 'BROADCAST' ? 'broadcast' : t === 'MULTICAST' ? 'multicast' : 'host')
    }
    default:
      return {t: 'assumed', what: `meta ${e.key} is not known from the snapshot`}
  }
}

function ct(e: Extract<NftExpr, {kind: 'ct'}>, r: Run): Eval {
  const c = r.env.ct
  // nft_ct_get_eval: a packet with no conntrack entry that notrack did not mark (a chain before conntrack, at a
  // priority below -200, or a namespace without conntrack) has the state invalid, not untracked
  const state = c?.state ?? 'INVALID'
  const tracked = !!c && state !== 'UNTRACKED' && state !== 'INVALID'
  if (e.key === 'state') return {t: 'flags', v: new Set([state.toLowerCase()])}
  // nft_ct_get_eval: every other key needs a conntrack entry
  if (!tracked) return ABSENT
  switch (e.key) {
    case 'status': {
      const s = new Set<string>()
      for (const x of c.status) if (CT_STATUS[x]) s.add(CT_STATUS[x]!)
      return {t: 'flags', v: s}
    }
    case 'mark':
      return int(r.ctMark >>> 0)
    case 'direction':
      return str(c.dir === 'ORIGINAL' ? 'original' : 'reply')
  }
  const tuple = e.dir === 'reply' ? c.reply : e.dir === 'original' ? c.orig : c.dir === 'ORIGINAL' ? c.orig : c.reply
  if (tuple) {
    switch (e.key) {
      case 'ip saddr':
      case 'ip6 saddr':
      case 'saddr':
        return tuple.src.family === (e.key.startsWith('ip6') ? 6 : e.key.startsWith('ip ') ? 4 : tuple.src.family) ? {t: 'addr', v: tuple.src} : ABSENT
      case 'ip daddr':
      case 'ip6 daddr':
      case 'daddr':
        return tuple.dst.family === (e.key.startsWith('ip6') ? 6 : e.key.startsWith('ip ') ? 4 : tuple.dst.family) ? {t: 'addr', v: tuple.dst} : ABSENT
      case 'proto-src':
        return int(tuple.sport)
      case 'proto-dst':
        return int(tuple.dport)
      case 'protocol':
        return int(tuple.proto)
      case 'l3proto':
        return int(tuple.src.family === 4 ? 2 : 10)
    }
  }
  return {t: 'assumed', what: `ct ${e.dir ? e.dir + ' ' : ''}${e.key} is not known from the snapshot`}
}

function fib(e: Extract<NftExpr, {kind: 'fib'}>, r: Run): Eval {
  const p = r.packet
  const q: FibQuery = {flags: e.flags, result: e.result, packet: p, iif: r.env.iif, oif: r.env.oif}
  const a = r.env.fib?.(q)
  if (a?.kind === 'type') return str(a.type)
  if (a?.kind === 'oif') return a.dev === null ? {t: 'bool', v: false} : str(a.dev)
  if (e.result === 'type' && !e.flags.includes('iif') && !e.flags.includes('oif') && !e.flags.includes('mark')) {
    const ip = e.flags.includes('saddr') ? p.src : p.dst
    return str(r.env.addrType(ip).toLowerCase())
  }
  return {t: 'assumed', what: `fib ${e.flags.join(' . ')} ${e.result}: the host's routes were not available to the evaluation`}
}

/** Evaluates an expression to a value. */
function evalExpr(e: NftExpr, r: Run): Eval {
  switch (e.kind) {
    case 'payload':
      return payload(e, r)
    case 'meta':
      return meta(e, r)
    case 'ct':
      return ct(e, r)
    case 'fib':
      return fib(e, r)
    case 'numgen': {
      if (e.mode === 'inc') {
        const key = `${r.rule.family} ${r.rule.table} ${r.rule.chain} ${r.rule.handle} ${r.stmtIndex}`
        const counters = r.env.numgen
        if (!counters) return {t: 'assumed', what: 'numgen inc: its counter is kernel state (taken as 0)', value: int(e.offset)}
        const n = counters.get(key) ?? 0
        counters.set(key, n + 1)
        return int((n % e.mod) + e.offset)
      }
      const v = Math.min(e.mod - 1, Math.floor(r.env.random() * e.mod)) + e.offset
      return {t: 'assumed', what: `numgen random mod ${e.mod}: a random draw (lvsdoctor's deterministic stand-in drew ${v})`, value: int(v)}
    }
    case 'jhash': {
      const parts = e.expr.kind === 'concat' ? e.expr.parts : [e.expr]
      const vals: {expr: NftExpr; value: NftValue}[] = []
      for (const x of parts) {
        const v = evalExpr(x, r)
        if (v.t === 'absent') return ABSENT
        if (v.t === 'assumed') return {t: 'assumed', what: `jhash of ${formatNftExpr(e.expr)}: ${v.what}`, value: int(e.offset)}
        vals.push({expr: x, value: v})
      }
      const data = hashInput(vals)
      if (e.seed === undefined || !data) {
        const stand = data ? reciprocalScale(jhash(data, 0), e.mod) + e.offset : e.offset
        const why = e.seed === undefined ? 'no seed in the ruleset: the kernel chose a random one (nft_jhash_init)' : `${formatNftExpr(e.expr)} is not hashed by lvsdoctor`
        return {t: 'assumed', what: `jhash mod ${e.mod}: ${why}; assumed ${stand}`, value: int(stand)}
      }
      return int(reciprocalScale(jhash(data, e.seed), e.mod) + e.offset)
    }
    case 'symhash':
      return {t: 'assumed', what: `symhash mod ${e.mod}: skb_get_hash_symmetric uses a per-boot random key; assumed ${e.offset}`, value: int(e.offset)}
    case 'binop': {
      const l = evalExpr(e.left, r)
      if (l.t === 'absent' || l.t === 'assumed') return l
      if (l.t === 'flags') {
        const mask = flagNames(e.right)
        if (!mask || e.op !== '&') return {t: 'assumed', what: `${formatNftExpr(e)} is not modelled`}
        return {t: 'flags', v: new Set([...l.v].filter((f) => mask.has(f)))}
      }
      if (l.t !== 'int') return {t: 'assumed', what: `${formatNftExpr(e)} is not modelled`}
      const rv = e.right.kind === 'number' ? e.right.value : e.right.kind === 'ct' || e.right.kind === 'meta' ? (evalExpr(e.right, r) as {v?: unknown}).v : undefined
      if (typeof rv !== 'number') return {t: 'assumed', what: `${formatNftExpr(e)} is not modelled`}
      const a = l.v >>> 0
      switch (e.op) {
        case '&':
          return int((a & rv) >>> 0)
        case '|':
          return int((a | rv) >>> 0)
        case '^':
          return int((a ^ rv) >>> 0)
        case '<<':
          return int((a << rv) >>> 0)
        case '>>':
          return int(a >>> rv)
      }
      return {t: 'assumed', what: `${formatNftExpr(e)} is not modelled`}
    }
    case 'concat': {
      // a part drawn or assumed with a value (`ip daddr . numgen random mod 1024`, moby's nft load balancer) keeps
      // its place in the key, and the key says what was assumed; a part with no value makes the key unknown
      const out: NftValue[] = []
      let assumed: string | undefined
      for (const x of e.parts) {
        const v = evalExpr(x, r)
        if (v.t === 'absent') return ABSENT
        if (v.t === 'assumed') {
          if (!v.value) return v
          assumed = assumed ? `${assumed}; ${v.what}` : v.what
          out.push(v.value)
          continue
        }
        out.push(v)
      }
      return assumed ? {t: 'assumed', what: assumed, value: {t: 'cat', v: out}} : {t: 'cat', v: out}
    }
    case 'map': {
      const key = evalExpr(e.key, r)
      if (key.t === 'absent') return ABSENT
      const k = key.t === 'assumed' ? key.value : key
      if (!k) return key
      const elems = elementsOf(e.data, r)
      if (!elems) return {t: 'assumed', what: `${formatNftExpr(e.data)}: no such map in the table`}
      const hit = findElem(elems, k, e.key, r)
      if (!hit?.value) return ABSENT // no element: the lookup fails and the rule breaks (nft_lookup / nft_objref_map)
      const v = constValue(hit.value, e.key)
      if (!v) return {t: 'assumed', what: `${formatNftExpr(hit.value)} is not modelled`}
      return key.t === 'assumed' ? {t: 'assumed', what: key.what, value: v} : v
    }
    default: {
      const v = constValue(e, undefined)
      return v ?? {t: 'assumed', what: `${formatNftExpr(e)} is not modelled`}
    }
  }
}

function flagNames(e: NftExpr): Set<string> | undefined {
  if (e.kind === 'string') return new Set([e.value])
  if (e.kind === 'list') {
    const out = new Set<string>()
    for (const i of e.items) {
      if (i.kind !== 'string') return undefined
      out.add(i.value)
    }
    return out
  }
  return undefined
}

/** A constant of the ruleset as a value (right-hand sides, set elements, map data). */
function constValue(e: NftExpr, left: NftExpr | undefined): NftValue | undefined {
  switch (e.kind) {
    case 'number':
      return int(e.value)
    case 'bignum':
      return e.value <= BigInt(Number.MAX_SAFE_INTEGER) ? int(Number(e.value)) : undefined
    case 'addr':
      return {t: 'addr', v: e.addr}
    case 'string': {
      const n = left ? symbol(left, e.value) : undefined
      return n !== undefined ? int(n) : str(e.value)
    }
    case 'bool':
      return {t: 'bool', v: e.value}
    case 'verdict':
      return {t: 'verdict', v: e.verdict}
    case 'concat': {
      const out: NftValue[] = []
      for (const [i, p] of e.parts.entries()) {
        const v = constValue(p, left?.kind === 'concat' ? left.parts[i] : undefined)
        if (!v) return undefined
        out.push(v)
      }
      return {t: 'cat', v: out}
    }
    case 'list': {
      const names = flagNames(e)
      return names ? {t: 'flags', v: names} : undefined
    }
    default:
      return undefined
  }
}

function elementsOf(data: NftExpr, r: Run): readonly NftSetElem[] | undefined {
  if (data.kind === 'set') return data.elements
  if (data.kind === 'setref') return namedSet(r.table, data.name)?.elements
  return undefined
}

function namedSet(t: NftTable, name: string): NftSet | undefined {
  return t.sets.get(name)
}

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function ifnameMatches(pattern: string, name: string): boolean {
  // nft: a trailing `*` in an interface name is a wildcard (`iifname "eth*"`)
  if (pattern.endsWith('*') && !pattern.endsWith('\\*')) return name.startsWith(pattern.slice(0, -1))
  return pattern === name
}

/** Does the value equal (or fall in) the constant `c`? undefined: the types do not compare. */
function equalsConst(v: NftValue, c: NftExpr, left: NftExpr | undefined): boolean | undefined {
  switch (c.kind) {
    case 'wildcard':
      return true
    case 'prefix':
      return v.t === 'addr' ? prefixContains(c.prefix, v.v) : undefined
    case 'range': {
      const lo = constValue(c.from, left)
      const hi = constValue(c.to, left)
      if (!lo || !hi) return undefined
      if (v.t === 'int' && lo.t === 'int' && hi.t === 'int') return v.v >= lo.v && v.v <= hi.v
      if (v.t === 'addr' && lo.t === 'addr' && hi.t === 'addr') return v.v.family === lo.v.family && v.v.value >= lo.v.value && v.v.value <= hi.v.value
      return undefined
    }
    case 'intprefix': {
      if (v.t !== 'int') return undefined
      const mask = c.len === 0 ? 0 : (0xffffffff << (32 - c.len)) >>> 0
      return ((v.v & mask) >>> 0) === ((c.value & mask) >>> 0)
    }
    case 'concat': {
      if (v.t !== 'cat' || v.v.length !== c.parts.length) return undefined
      for (let i = 0; i < c.parts.length; i++) {
        const ok = equalsConst(v.v[i]!, c.parts[i]!, left?.kind === 'concat' ? left.parts[i] : undefined)
        if (!ok) return ok
      }
      return true
    }
  }
  const k = constValue(c, left)
  if (!k) return undefined
  return valuesEqual(v, k)
}

function valuesEqual(v: NftValue, k: NftValue): boolean | undefined {
  if (v.t === 'int' && k.t === 'int') return v.v >>> 0 === k.v >>> 0 || v.v === k.v
  if (v.t === 'addr' && k.t === 'addr') return v.v.family === k.v.family && v.v.value === k.v.value
  if (v.t === 'str' && k.t === 'str') return ifnameMatches(k.v, v.v)
  if (v.t === 'flags' && k.t === 'str') return v.v.size === 1 && v.v.has(k.v)
  if (v.t === 'flags' && k.t === 'flags') return v.v.size === k.v.size && [...k.v].every((f) => v.v.has(f))
  if (v.t === 'bool' && k.t === 'bool') return v.v === k.v
  // `fib ... oif exists`: a device name is "exists"
  if (v.t === 'str' && k.t === 'bool') return k.v
  // no device (`fib ... oif missing`) compared with an interface: `oif 0` (nft -j prints "0") is ifindex 0, which
  // nft_fib stores when the lookup finds no route through the device; no name equals it
  if (v.t === 'bool' && !v.v) {
    if ((k.t === 'str' && k.v === '0') || (k.t === 'int' && k.v === 0)) return true
    if (k.t === 'str' || k.t === 'int') return false
  }
  // a device (by name) is never ifindex 0
  if (v.t === 'str' && k.t === 'int' && k.v === 0) return false
  if (v.t === 'cat' && k.t === 'cat') {
    if (v.v.length !== k.v.length) return false
    for (let i = 0; i < v.v.length; i++) {
      const e = valuesEqual(v.v[i]!, k.v[i]!)
      if (!e) return e
    }
    return true
  }
  return undefined
}

function elemMatches(key: NftExpr, v: NftValue, left: NftExpr, _r: Run): boolean {
  return equalsConst(v, key, left) === true
}

// ---- set lookups --------------------------------------------------------------------------------------------
// kube-proxy's service maps hold thousands of elements: a lookup is a hash probe on the elements whose key is one
// exact value (the kernel's hash/rbtree sets do no better), and a scan of the others (ranges, prefixes, patterns).

interface SetIndex {
  readonly exact: Map<string, NftSetElem>
  readonly others: readonly NftSetElem[]
}

const INDEX_MIN = 16
const setIndexes = new WeakMap<readonly NftSetElem[], Map<NftExpr, SetIndex | null>>()

/** A value as a lookup key; undefined when it has no exact key (flags, booleans). */
function valueKey(v: NftValue): string | undefined {
  switch (v.t) {
    case 'int':
      return `i${v.v >>> 0}`
    case 'addr':
      return `a${v.v.family}:${v.v.value}`
    case 'str':
      return `s${v.v}`
    case 'cat': {
      const parts: string[] = []
      for (const p of v.v) {
        const k = valueKey(p)
        if (k === undefined) return undefined
        parts.push(k)
      }
      return parts.join('|')
    }
    default:
      return undefined
  }
}

/** The key an element's constant gives, when it is one exact value (not a range, prefix, wildcard or pattern). */
function elemKey(key: NftExpr, left: NftExpr): string | undefined {
  if (key.kind === 'range' || key.kind === 'prefix' || key.kind === 'intprefix' || key.kind === 'wildcard') return undefined
  if (key.kind === 'concat' && key.parts.some((p) => p.kind === 'range' || p.kind === 'prefix' || p.kind === 'intprefix' || p.kind === 'wildcard')) return undefined
  const v = constValue(key, left)
  if (!v) return undefined
  if (v.t === 'str' && v.v.endsWith('*')) return undefined
  if (v.t === 'cat' && v.v.some((p) => p.t === 'str' && p.v.endsWith('*'))) return undefined
  return valueKey(v)
}

function indexOf(elems: readonly NftSetElem[], left: NftExpr): SetIndex | undefined {
  if (elems.length < INDEX_MIN) return undefined
  let byLeft = setIndexes.get(elems)
  if (!byLeft) setIndexes.set(elems, (byLeft = new Map()))
  let idx = byLeft.get(left)
  if (idx === undefined) {
    const exact = new Map<string, NftSetElem>()
    const others: NftSetElem[] = []
    for (const el of elems) {
      const k = elemKey(el.key, left)
      if (k === undefined || exact.has(k)) others.push(el)
      else exact.set(k, el)
    }
    idx = {exact, others}
    byLeft.set(left, idx)
  }
  return idx ?? undefined
}

/** The element of `elems` whose key `v` matches (the first one, for a scan). */
function findElem(elems: readonly NftSetElem[], v: NftValue, left: NftExpr, r: Run): NftSetElem | undefined {
  const idx = indexOf(elems, left)
  if (!idx) return elems.find((el) => elemMatches(el.key, v, left, r))
  const k = valueKey(v)
  const hit = k === undefined ? undefined : idx.exact.get(k)
  if (hit) return hit
  if (k === undefined) return elems.find((el) => elemMatches(el.key, v, left, r))
  return idx.others.find((el) => elemMatches(el.key, v, left, r))
}

/** Decides `left op right` for a value. undefined: the comparison is not modelled. */
function relation(op: string, v: NftValue, right: NftExpr, left: NftExpr, r: Run): boolean | undefined {
  if (right.kind === 'set' || right.kind === 'setref') {
    const elems = elementsOf(right, r)
    if (!elems) return undefined
    const member = findElem(elems, v, left, r) !== undefined
    if (op === '==' || op === 'in') return member
    if (op === '!=') return !member
    return undefined
  }
  if (op === 'in') {
    // nft's implicit operator on a bitmask type: any of the bits is set (flags & mask != 0)
    const names = flagNames(right)
    if (v.t === 'flags' && names) return [...names].some((n) => v.v.has(n))
    const eq = equalsConst(v, right, left)
    return eq
  }
  if (op === '==' || op === '!=') {
    const eq = equalsConst(v, right, left)
    if (eq === undefined) return undefined
    return op === '==' ? eq : !eq
  }
  const k = constValue(right, left)
  if (!k) return undefined
  let c: number | undefined
  if (v.t === 'int' && k.t === 'int') c = cmpNum(v.v, k.v)
  else if (v.t === 'addr' && k.t === 'addr' && v.v.family === k.v.family) c = v.v.value < k.v.value ? -1 : v.v.value > k.v.value ? 1 : 0
  if (c === undefined) return undefined
  switch (op) {
    case '<':
      return c < 0
    case '>':
      return c > 0
    case '<=':
      return c <= 0
    case '>=':
      return c >= 0
  }
  return undefined
}

type MatchOutcome = {kind: 'match'} | {kind: 'nomatch'} | {kind: 'assumed'; what: string}

function evalMatchStmt(s: Extract<NftStmt, {kind: 'match'}>, r: Run): MatchOutcome {
  const v = evalExpr(s.left, r)
  if (v.t === 'absent') return {kind: 'nomatch'}
  if (v.t === 'assumed' && !v.value) return {kind: 'assumed', what: `${formatNftStmt(s)}: ${v.what}`}
  const value = v.t === 'assumed' ? v.value! : v
  const res = relation(s.op, value, s.right, s.left, r)
  if (res === undefined) return {kind: 'assumed', what: `${formatNftStmt(s)}: the comparison is not modelled`}
  if (v.t === 'assumed') {
    r.pending.push(v.what)
    return res ? {kind: 'match'} : {kind: 'nomatch'}
  }
  return res ? {kind: 'match'} : {kind: 'nomatch'}
}

// ---- statements with effects ----------------------------------------------------------------------------

export function rejectWith(s: Extract<NftStmt, {kind: 'reject'}>, p: Pick<Packet, 'family'>): string {
  if (s.type === 'tcp reset') return 'tcp-reset'
  const code = String(s.code ?? 'port-unreachable')
  const v4 = p.family === 4
  if (s.type === 'icmpx' || s.type === undefined) {
    // nft_reject_icmp_code: icmpx codes translate per family
    if (v4) return code === 'no-route' ? 'icmp-net-unreachable' : code === 'admin-prohibited' ? 'icmp-admin-prohibited' : `icmp-${code}`
    return code === 'no-route' ? 'icmp6-no-route' : code === 'admin-prohibited' ? 'icmp6-adm-prohibited' : code === 'host-unreachable' ? 'icmp6-addr-unreachable' : 'icmp6-port-unreachable'
  }
  if (s.type === 'icmpv6') return `icmp6-${code}`
  return `icmp-${code}`
}

/** A NAT address or port expression resolved for this packet: a value, or the first of a range (as nf_nat does for one connection). */
function natValue(e: NftExpr | undefined, r: Run): {value?: NftValue; to?: NftValue; assumed?: string} | 'absent' {
  if (!e) return {}
  if (e.kind === 'range') {
    const from = constValue(e.from, undefined)
    const to = constValue(e.to, undefined)
    return {value: from, to}
  }
  if (e.kind === 'prefix') return {value: {t: 'addr', v: {family: e.prefix.family, value: e.prefix.value}}, assumed: `${formatNftExpr(e)}: a prefix NAT (netmap) maps addresses one to one; the first address is shown`}
  const v = evalExpr(e, r)
  if (v.t === 'absent') return 'absent'
  if (v.t === 'assumed') return {value: v.value, assumed: v.what}
  return {value: v}
}

function natTarget(s: Extract<NftStmt, {kind: 'nat'}>, r: Run): {target: Target; assumed: string[]} | 'absent' | {failed: string} {
  const assumed: string[] = []
  const a = natValue(s.addr, r)
  const pt = natValue(s.port, r)
  if (a === 'absent' || pt === 'absent') return 'absent'
  if (a.assumed) assumed.push(a.assumed)
  if (pt.assumed) assumed.push(pt.assumed)
  let ip: IpAddr | undefined
  let ipTo: IpAddr | undefined
  let port: number | undefined
  let portTo: number | undefined
  const av = a.value
  if (av?.t === 'addr') ip = av.v
  else if (av?.t === 'cat') {
    // `dnat ip to ip daddr map { ... : 10.0.0.1 . 8080 }`: address and port from one map
    const [x, y] = av.v
    if (x?.t === 'addr') ip = x.v
    if (y?.t === 'int') port = y.v
  } else if (av) return {failed: `${formatNftStmt(s)}: the address does not resolve to an address`}
  if (a.to?.t === 'addr') ipTo = a.to.v
  if (pt.value?.t === 'int') port = pt.value.v
  if (pt.to?.t === 'int') portTo = pt.to.v
  const random = s.flags.includes('random')
  const range: NatRange = {from: ip, to: ipTo ?? ip, portFrom: port, portTo: portTo ?? port}
  const ports = port !== undefined ? ([port, portTo ?? port] as const) : undefined
  switch (s.type) {
    case 'dnat':
      return {target: {kind: 'DNAT', to: [range], random, persistent: s.flags.includes('persistent'), randomFully: s.flags.includes('fully-random')}, assumed}
    case 'snat':
      return {target: {kind: 'SNAT', to: [range], random, persistent: s.flags.includes('persistent'), randomFully: s.flags.includes('fully-random')}, assumed}
    case 'masquerade':
      return {target: {kind: 'MASQUERADE', ports, random, randomFully: s.flags.includes('fully-random')}, assumed}
    case 'redirect':
      return {target: {kind: 'REDIRECT', ports, random}, assumed}
  }
}

/** The value of a `meta mark set` / `ct mark set` right-hand side. */
function markValue(e: NftExpr, r: Run): {value?: number; assumed?: string} | 'absent' {
  const v = evalExpr(e, r)
  if (v.t === 'absent') return 'absent'
  if (v.t === 'assumed') return v.value?.t === 'int' ? {value: v.value.v >>> 0, assumed: v.what} : {assumed: v.what}
  if (v.t === 'int') return {value: v.v >>> 0}
  return {assumed: `${formatNftExpr(e)} does not give a mark`}
}

// ---- the chain walk -------------------------------------------------------------------------------------

export function describeNftRule(rule: NftRule): string {
  return `${rule.family} ${rule.table} ${rule.chain} handle ${rule.handle}`
}

/**
 * Runs base chain `chain` of `table` for one packet. Non-terminal statements (mark and ct mark set, counters,
 * logs, notrack) take effect and evaluation goes on; a verdict or a terminal statement ends it; falling off the
 * base chain (or `return` in it) applies its policy. NAT statements end with verdict 'NAT' and a Target for the
 * caller to bind (the kernel binds them in the nat core, once per connection).
 */
export function runNftChain(table: NftTable, chain: NftChain, packet: Packet, env: NftEnv, ctMark = env.ct?.mark ?? 0): NftChainResult {
  const trail: NftRule[] = []
  const assumptions: NftAssumption[] = []
  let p = packet
  let mark = ctMark
  let notrack = false
  const done = (verdict: ChainVerdict, extra: {rule?: NftRule; target?: Target; stmt?: string; policy?: boolean}): NftChainResult => ({
    verdict,
    rule: extra.rule,
    target: extra.target,
    stmt: extra.stmt,
    policy: extra.policy ?? false,
    trail,
    assumptions,
    packet: p,
    ctMark: mark,
    notrack,
  })
  const stack: {rules: readonly NftRule[]; i: number}[] = []
  let rules: readonly NftRule[] = chain.rules
  let i = 0
  let envNow: NftEnv = env
  const refreshEnv = () => {
    envNow = env.ct ? {...env, ct: {...env.ct, mark}} : env
  }
  const jumpTo = (rule: NftRule, v: NftVerdict): 'ok' | 'stop' => {
    if (v.kind !== 'jump' && v.kind !== 'goto') return 'ok'
    const target = table.chains.get(v.target)
    if (!target) {
      assumptions.push({rule, what: `${v.kind} to chain ${v.target}, which the table does not hold: ignored`})
      return 'ok'
    }
    if (stack.length >= MAX_DEPTH) {
      assumptions.push({rule, what: `chain nesting deeper than ${MAX_DEPTH}: stopped following`})
      return 'ok'
    }
    if (v.kind === 'jump') stack.push({rules, i})
    rules = target.rules
    i = 0
    return 'stop'
  }
  // returns a result when the chain is decided, 'next' to go to the next rule
  const applyVerdict = (rule: NftRule, v: NftVerdict, stmt: string): NftChainResult | 'next' => {
    switch (v.kind) {
      case 'accept':
        return done('ACCEPT', {rule, target: {kind: 'ACCEPT'}, stmt})
      case 'drop':
        return done('DROP', {rule, target: {kind: 'DROP'}, stmt})
      case 'queue':
        return done('QUEUE', {rule, target: {kind: 'QUEUE'}, stmt})
      case 'continue':
      case 'break':
        return 'next'
      case 'return': {
        const frame = stack.pop()
        if (!frame) {
          i = rules.length // return in the base chain: the policy decides
          stack.length = 0
        } else {
          rules = frame.rules
          i = frame.i
        }
        return 'next'
      }
      case 'jump':
      case 'goto':
        jumpTo(rule, v)
        return 'next'
    }
  }
  for (;;) {
    if (i >= rules.length) {
      const frame = stack.pop()
      if (!frame) break
      rules = frame.rules
      i = frame.i
      continue
    }
    const rule = rules[i++]!
    const run: Run = {packet: p, ctMark: mark, env: envNow, table, rule, stmtIndex: 0, pending: []}
    const ruleAssumptions: string[] = []
    let matched = true
    let decided: NftChainResult | 'next' | undefined
    const stmts = rule.stmts
    for (let k = 0; k < stmts.length; k++) {
      const s = stmts[k]!
      run.stmtIndex = k
      run.packet = p
      run.ctMark = mark
      switch (s.kind) {
        case 'match': {
          const m = evalMatchStmt(s, run)
          if (m.kind === 'nomatch') matched = false
          else if (m.kind === 'assumed') ruleAssumptions.push(`assumed to match: ${m.what}`)
          break
        }
        case 'verdict':
          decided = applyVerdict(rule, s.verdict, formatNftStmt(s, rule.family))
          break
        case 'vmap': {
          const key = evalExpr(s.key, run)
          if (key.t === 'absent') {
            matched = false
            break
          }
          const kv = key.t === 'assumed' ? key.value : key
          if (key.t === 'assumed') ruleAssumptions.push(key.what)
          const elems = elementsOf(s.data, run)
          if (!kv || !elems) {
            ruleAssumptions.push(`${formatNftStmt(s)}: the lookup is not decidable: assumed to find no element`)
            matched = false
            break
          }
          const hit = findElem(elems, kv, s.key, run)
          if (!hit || hit.value?.kind !== 'verdict') {
            matched = false // no element: NFT_BREAK
            break
          }
          decided = applyVerdict(rule, hit.value.verdict, `${formatNftExpr(s.key)} vmap -> ${formatNftExpr(hit.value)}`)
          break
        }
        case 'counter':
        case 'log':
          break
        case 'dynset':
          // the element's own statements (nftlb's `add @s { ip saddr limit rate over 10/second } drop`): a limit
          // decides whether the rule goes on, as the limit statement does; the set's contents are not modelled
          for (const x of s.stmts) {
            if (x.kind === 'counter') continue
            if (x.kind === 'limit' && x.inv) {
              ruleAssumptions.push(`${formatNftStmt(x)} per element of @${s.set}: the source's rate is assumed under the limit, so it does not match`)
              matched = false
            } else if (x.kind === 'limit') ruleAssumptions.push(`${formatNftStmt(x)} per element of @${s.set}: assumed under the limit`)
            else ruleAssumptions.push(`${formatNftStmt(x)} per element of @${s.set}: not modelled, assumed to have no effect on the packet`)
          }
          break
        case 'objref':
          if (s.type === 'quota' || s.type === 'limit') ruleAssumptions.push(`${s.type} "${s.name}": assumed not exhausted`)
          else if (s.type !== 'counter' && s.type !== 'ct helper') ruleAssumptions.push(`${formatNftStmt(s)}: not modelled, assumed to have no effect on the packet`)
          break
        case 'limit':
          if (s.inv) {
            ruleAssumptions.push(`${formatNftStmt(s)}: the rate is assumed under the limit, so it does not match`)
            matched = false
          } else ruleAssumptions.push(`${formatNftStmt(s)}: assumed under the limit`)
          break
        case 'reject':
          decided = done('REJECT', {rule, target: {kind: 'REJECT', with: rejectWith(s, p)}, stmt: formatNftStmt(s, rule.family)})
          break
        case 'queue':
          decided = done('QUEUE', {rule, target: {kind: 'QUEUE'}, stmt: formatNftStmt(s, rule.family)})
          break
        case 'notrack':
          notrack = true
          break
        case 'mangle': {
          const key = s.key
          const isMark = key.kind === 'meta' && key.key === 'mark'
          const isCtMark = key.kind === 'ct' && key.key === 'mark'
          if (!isMark && !isCtMark) {
            ruleAssumptions.push(`${formatNftStmt(s)}: rewriting ${formatNftExpr(key)} is not modelled: the packet is replayed unchanged`)
            break
          }
          const v = markValue(s.value, run)
          if (v === 'absent') {
            matched = false
            break
          }
          if (v.assumed) ruleAssumptions.push(`${formatNftStmt(s)}: ${v.assumed}`)
          if (v.value === undefined) break
          if (isMark) p = {...p, mark: v.value}
          else if (env.ct && env.ct.state !== 'UNTRACKED' && env.ct.state !== 'INVALID') mark = v.value
          refreshEnv()
          break
        }
        case 'nat': {
          const t = natTarget(s, run)
          if (t === 'absent') {
            matched = false
            break
          }
          if ('failed' in t) {
            ruleAssumptions.push(t.failed)
            decided = done('DROP', {rule, target: {kind: 'DROP'}, stmt: formatNftStmt(s, rule.family)})
            break
          }
          ruleAssumptions.push(...t.assumed)
          decided = done('NAT', {rule, target: t.target, stmt: formatNftStmt(s, rule.family)})
          break
        }
        case 'xt':
          if (s.xtType === 'match') ruleAssumptions.push(`xt match ${s.name} (made by iptables-nft; nft -j prints no parameters, and no iptables-save is beside the ruleset): not analysable, assumed to match`)
          else ruleAssumptions.push(`xt ${s.xtType} ${s.name} (made by iptables-nft; nft -j prints no parameters, and no iptables-save is beside the ruleset): not analysable, assumed to have no effect`)
          break
        case 'unknown':
          ruleAssumptions.push(`${s.name} is not modelled: assumed to match and have no effect`)
          break
      }
      if (!matched || decided) break
    }
    for (const w of run.pending) ruleAssumptions.push(w)
    if (!matched) continue
    trail.push(rule)
    for (const what of ruleAssumptions) assumptions.push({rule, what})
    if (decided && decided !== 'next') return decided
  }
  const policy = chain.base?.policy === 'drop' ? 'DROP' : 'ACCEPT'
  return done(policy, {policy: true})
}

/** The address a NAT target resolved to, for messages. */
export function describeNatTarget(t: Target): string {
  if (t.kind === 'DNAT' || t.kind === 'SNAT') {
    const r = t.to[0]
    return `${t.kind} to ${r?.from ? formatIp(r.from) : '(same address)'}${r?.portFrom !== undefined ? `:${r.portFrom}` : ''}`
  }
  if (t.kind === 'MASQUERADE' || t.kind === 'REDIRECT') return t.kind + (t.ports ? ` to :${t.ports[0]}` : '')
  return t.kind
}

/** Kept for callers that need addrType without an environment. */
export type {AddrType}
