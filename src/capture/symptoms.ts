// Packets → symptoms: the failure signatures of a load-balanced TCP/UDP service as they show on the wire.
// The detector folds packets into a flow table and decides some symptoms as they happen (a reply from an
// address the client never sent to, an ICMP error about a live flow, a reset right after the handshake) and
// the others at the end (a SYN never answered, a SYN/ACK never acknowledged, a FIN retransmitted unanswered).
//
// The flow table is a set of typed-array columns indexed by a connection id (struct of arrays): no object per
// flow, no garbage per packet, so a million packets over 125k flows take a few MB. Connections that close
// cleanly (both FINs acknowledged) are decided and freed at once, so long captures keep only live flows.
import {formatEndpoint, formatIp, type Endpoint, type IpAddr} from '../model/ip.js'
import type {Severity} from '../model/finding.js'
import {DecodedPacket, TUNNEL_NAMES} from './decode.js'
import {IPPROTO, TCP_FLAG} from './wire.js'

export type SymptomKind =
  | 'reply-bypasses-director'
  | 'syn-unanswered'
  | 'synack-unacked'
  | 'fin-unanswered'
  | 'icmp-unreachable-established'
  | 'icmp-unreachable-new'
  | 'rst-after-handshake'
  | 'tunnel-syn-unanswered'
  | 'tunnel-unreachable'
  | 'tunnel-mtu'
  | 'pmtu-blackhole'

export interface SymptomPacket {
  /** 1-based packet number in the capture (tcpdump/Wireshark frame number) */
  readonly n: number
  /** seconds since the epoch (microsecond precision) */
  readonly time: number
  /** one line: what the packet is */
  readonly what: string
}

export interface SymptomFlow {
  readonly proto: 'tcp' | 'udp'
  /** the initiator, `ip:port` (`[v6]:port`) */
  readonly client: string
  /** the address the client sent to (a VIP before DNAT, or the realserver after it), `ip:port` */
  readonly server: string
}

/** The tunnel a flow's packets were seen in (LVS-TUN: from the director to the realserver). */
export interface SymptomTunnel {
  readonly type: 'ipip' | 'gre' | 'gue'
  /** outer source and destination addresses (the director, the realserver) */
  readonly from: string
  readonly to: string
  /** GUE: the UDP destination port */
  readonly port?: number
}

export interface Symptom {
  readonly kind: SymptomKind
  readonly severity: Severity
  readonly title: string
  readonly message: string
  readonly flow: SymptomFlow
  /** the packets that show it, in capture order (the first few and the last of each kind) */
  readonly packets: readonly SymptomPacket[]
  /** catalogue rule ids that most likely cause it, most likely first */
  readonly rules: readonly string[]
  /** the `--vip` the flow went to, when one was given and matched */
  readonly vip?: string
  /** reply-bypasses-director: who answered instead (`ip:port`); icmp-*: who sent the ICMP error (`ip`) */
  readonly from?: string
  /** icmp-*: the ICMP type/code named (`host-prohibited`, `port-unreachable`...) */
  readonly icmp?: string
  /** tunnel-*: the tunnel the flow's packets were seen in, or the quoted tunnel packet's */
  readonly tunnel?: SymptomTunnel
  /** tunnel-mtu, pmtu-blackhole: the MTU the ICMP errors announced */
  readonly mtu?: number
}

export interface DetectorOptions {
  /** virtual services (VIP:port); they sharpen messages and rules, they never hide a symptom */
  readonly vips?: readonly Endpoint[]
}

/** A SYN counts as unanswered when it was retransmitted or the capture went on this long after it. */
export const SYN_WAIT_SECONDS = 1
/** A reset this soon after the handshake, before the server sent data or anyone a FIN, is "right after". */
export const RST_WINDOW_SECONDS = 3
/**
 * Copies of a SYN, SYN/ACK or FIN closer together than this are one transmission seen twice (a capture on a
 * router's `any`: in on one interface, out on another, or inside a tunnel), not a retransmission: TCP's
 * retransmission timeout is at least 200 ms (RFC 6298 allows 1 s minimum, Linux TCP_RTO_MIN is 200 ms).
 */
export const DUPLICATE_SECONDS = 0.1
/** FIN retransmissions (beyond the first transmission) that make a FIN unanswered. */
export const FIN_RETRANSMISSIONS = 3

export const RULES: Readonly<Record<SymptomKind, readonly string[]>> = {
  'reply-bypasses-director': ['nat-reply-bypasses-director'],
  'syn-unanswered': ['filter-blocks-vip', 'vip-not-local', 'ip-forward-off', 'nat-reply-bypasses-director', 'fwmark-service-unmarked', 'rp-filter-asymmetric'],
  'synack-unacked': ['nat-reply-bypasses-director', 'dr-stateful-filter', 'rp-filter-asymmetric'],
  'fin-unanswered': ['dr-stateful-filter', 'nat-stateful-output', 'reject-on-one-way-flow'],
  'icmp-unreachable-established': ['reject-on-one-way-flow', 'dr-stateful-filter', 'nat-stateful-output'],
  'icmp-unreachable-new': ['filter-blocks-vip'],
  'rst-after-handshake': ['mark-not-connmarked', 'reject-on-one-way-flow', 'dr-stateful-filter'],
  // the realserver got the request through the tunnel and did not answer from the VIP (or its answer was lost)
  'tunnel-syn-unanswered': ['rp-filter-asymmetric', 'dr-realserver-no-vip', 'realserver-filter-blocks-service', 'backend-not-listening', 'route-drops-service'],
  // nothing on the realserver unwraps the tunnel (its TUN branch: no ipip device, or tunl0 down)
  'tunnel-unreachable': ['dr-realserver-no-vip'],
  // no rule models the tunnel's MTU yet
  'tunnel-mtu': [],
  'pmtu-blackhole': [],
}

const SEVERITY: Readonly<Record<SymptomKind, Severity>> = {
  'reply-bypasses-director': 'error',
  'syn-unanswered': 'error',
  'synack-unacked': 'error',
  'fin-unanswered': 'warning',
  'icmp-unreachable-established': 'error',
  'icmp-unreachable-new': 'warning',
  'rst-after-handshake': 'warning',
  'tunnel-syn-unanswered': 'error',
  'tunnel-unreachable': 'error',
  'tunnel-mtu': 'error',
  'pmtu-blackhole': 'error',
}

/** A frag-needed for the same segment this many times: the sender did not shrink it (or never got the ICMP). */
export const FRAG_NEEDED_REPEATS = 2

// connection flags
const F_EST = 1 // handshake completed (or the flow was met mid-stream in both directions)
const F_SEEN_A = 2 // a packet from endpoint A
const F_SEEN_B = 4
const F_EXPLAINED = 8 // its failure is already told by another symptom
const F_CLIENT_ACKED = 16 // the client sent an ACK (so someone answered its SYN, even unseen)
const F_DATA_CLI = 32 // payload from the client after the handshake
const F_DATA_SRV = 64
const F_FIN_ACKED_A = 128
const F_FIN_ACKED_B = 256
const F_RST = 512
const F_ANSWERED = 1024 // the SYN got a RST or an ICMP error: refused, not unanswered
const F_PENDING = 2048 // listed among the SYNs waiting for their SYN/ACK
// one packet captured both inside a tunnel and outside it (the director's two sides, the realserver's physical
// interface and its tunl0): per direction, the first way a packet was seen is the one that counts
const F_VA_SET = 4096
const F_VA_TUN = 8192
const F_VB_SET = 16384
const F_VB_TUN = 32768
const F_TUNNELLED = 65536 // packets of the flow were seen inside a tunnel

/** Tunnel bookkeeping of a flow (only tunnelled flows have one). */
interface TunnelSeen {
  tunnel: SymptomTunnel
  /** tunnelled copies of the client's SYN, and the first one's packet number and time */
  syns: number
  synIdx: number
  synTime: number
}

/** ICMP frag-needed / packet-too-big errors about one flow. */
interface FragSeen {
  /** the quoted TCP sequence number (NaN: not quoted) and how many errors quoted it */
  seq: number
  repeats: number
  count: number
  mtu: number
  from: string
  /** the quoted datagram's length */
  len: number
  tunnel?: SymptomTunnel
  packets: SymptomPacket[]
}

const ICMP4_UNREACH: Record<number, string> = {
  0: 'net-unreachable', 1: 'host-unreachable', 2: 'protocol-unreachable', 3: 'port-unreachable', 5: 'source-route-failed',
  6: 'net-unknown', 7: 'host-unknown', 9: 'net-prohibited', 10: 'host-prohibited', 11: 'net-tos-unreachable',
  12: 'host-tos-unreachable', 13: 'admin-prohibited', 14: 'host-precedence-violation', 15: 'precedence-cutoff',
}
const ICMP6_UNREACH: Record<number, string> = {
  0: 'no-route', 1: 'admin-prohibited', 2: 'beyond-scope', 3: 'address-unreachable', 4: 'port-unreachable',
  5: 'source-policy-failed', 6: 'reject-route',
}
/** what REJECT sends (its default port-unreachable included): a filter's answer rather than a routing failure */
const REJECT_CODES = new Set(['net-prohibited', 'host-prohibited', 'admin-prohibited', 'source-policy-failed', 'reject-route', 'port-unreachable'])

/** One open symptom being filled as packets come. */
interface Builder {
  tunnel?: SymptomTunnel
  mtu?: number
  kind: SymptomKind
  flow: SymptomFlow
  packets: SymptomPacket[]
  first: number
  count: number
  vip?: string
  from?: string
  icmp?: string
  detail: string
}

/** removes id i from the bucket chain `b` of `heads`, chained through field `link` */
function unlink(I: Int32Array, heads: Int32Array, b: number, i: number, link: number): void {
  let j = heads[b]!
  if (j === i) {
    heads[b] = I[i * SI + link]!
    return
  }
  while (j >= 0) {
    const nx = I[j * SI + link]!
    if (nx === i) {
      I[j * SI + link] = I[i * SI + link]!
      return
    }
    j = nx
  }
}

function hashWords(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let h = Math.imul(w3 ^ 0x9e3779b9, 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16) ^ w1, 0x27d4eb2d)
  h = Math.imul(h ^ (h >>> 15) ^ w0 ^ (port << 7), 0x165667b1)
  return h ^ (h >>> 16)
}

const MAX_EVIDENCE = 6

/** int32 fields of a connection (offsets in its SI-long record) */
const C = {
  fam: 0,
  proto: 1,
  a0: 2,
  a1: 3,
  a2: 4,
  a3: 5,
  ap: 6,
  b0: 7,
  b1: 8,
  b2: 9,
  b3: 10,
  bp: 11,
  next: 12,
  hash: 13,
  serial: 14,
  cli: 15,
  flg: 16,
  isn: 17,
  srvIsn: 18,
  synCount: 19,
  synIdx: 20,
  synAckCount: 21,
  synAckIdx: 22,
  estIdx: 23,
  finSeqA: 24,
  finSeqB: 25,
  finCountA: 26,
  finCountB: 27,
  finIdxA: 28,
  finIdxB: 29,
  finLastIdxA: 30,
  finLastIdxB: 31,
  pnext: 32,
  phash: 33,
} as const
const SI = 34
/** float64 fields (times) */
const D = {
  synTime: 0,
  synAckTime: 1,
  estTime: 2,
  finTimeA: 3,
  finTimeB: 4,
  finLastTimeA: 5,
  finLastTimeB: 6,
  synLast: 7,
  synAckLast: 8,
} as const
const SF = 9

export class SymptomDetector {
  // ---- the table: connection i is I[i*SI .. i*SI+SI) and F[i*SF .. i*SF+SF) ----
  private cap = 0
  private n = 0 // high-water mark of ids
  private free: number[] = []
  private I = new Int32Array(0)
  private F = new Float64Array(0)
  /** hash buckets of the flow table and of the pending SYNs (by client endpoint): first id or -1 */
  private heads = new Int32Array(0)
  private pheads = new Int32Array(0)
  private mask = 0
  /** open symptoms by `${serial}:${kind}` */
  private readonly builders = new Map<string, Builder>()
  private serials = 0
  private readonly vips: readonly Endpoint[]
  private lastTime = 0
  private liveCount = 0
  /** per connection id: tunnel bookkeeping, frag-needed errors */
  private readonly tunnels = new Map<number, TunnelSeen>()
  private readonly frags = new Map<number, FragSeen>()
  /** connections met (TCP and UDP) */
  flows = 0

  constructor(opts: DetectorOptions = {}) {
    this.vips = opts.vips ?? []
    this.grow(1024)
  }

  private grow(cap: number): void {
    const I = new Int32Array(cap * SI)
    I.set(this.I)
    const F = new Float64Array(cap * SF)
    F.set(this.F)
    this.I = I
    this.F = F
    this.cap = cap
    // rebuild the buckets at twice the capacity
    const size = cap * 2
    this.mask = size - 1
    this.heads = new Int32Array(size).fill(-1)
    this.pheads = new Int32Array(size).fill(-1)
    for (let i = 0; i < this.n; i++) {
      const o = i * SI
      if (I[o + C.proto] === -1) continue
      const b = I[o + C.hash]! & this.mask
      I[o + C.next] = this.heads[b]!
      this.heads[b] = i
      if (I[o + C.flg]! & F_PENDING) {
        const pb = I[o + C.phash]! & this.mask
        I[o + C.pnext] = this.pheads[pb]!
        this.pheads[pb] = i
      }
    }
  }

  /** Finds the connection of the packet's tuple (either direction); sets `this.dir` (0: from A, 1: from B). */
  private dir = 0

  private lookup(p: DecodedPacket, h: number): number {
    const I = this.I
    let i = this.heads[h & this.mask]!
    const pr = p.proto
    const fam = p.family
    while (i >= 0) {
      const o = i * SI
      if (I[o + C.hash] === h && I[o + C.proto] === pr && I[o + C.fam] === fam) {
        if (I[o + C.ap] === p.sport && I[o + C.bp] === p.dport && I[o + C.a3] === p.s3 && I[o + C.b3] === p.d3 &&
          I[o + C.a2] === p.s2 && I[o + C.b2] === p.d2 && I[o + C.a1] === p.s1 && I[o + C.b1] === p.d1 && I[o + C.a0] === p.s0 && I[o + C.b0] === p.d0) {
          this.dir = 0
          return i
        }
        if (I[o + C.ap] === p.dport && I[o + C.bp] === p.sport && I[o + C.a3] === p.d3 && I[o + C.b3] === p.s3 &&
          I[o + C.a2] === p.d2 && I[o + C.b2] === p.s2 && I[o + C.a1] === p.d1 && I[o + C.b1] === p.s1 && I[o + C.a0] === p.d0 && I[o + C.b0] === p.s0) {
          this.dir = 1
          return i
        }
      }
      i = I[o + C.next]!
    }
    return -1
  }

  private create(p: DecodedPacket, h: number): number {
    let i = this.free.pop()
    if (i === undefined) {
      if (this.n === this.cap) this.grow(this.cap * 2)
      i = this.n++
    }
    const I = this.I
    const o = i * SI
    I.fill(0, o, o + SI)
    I[o + C.fam] = p.family
    I[o + C.proto] = p.proto
    I[o + C.a0] = p.s0
    I[o + C.a1] = p.s1
    I[o + C.a2] = p.s2
    I[o + C.a3] = p.s3
    I[o + C.ap] = p.sport
    I[o + C.b0] = p.d0
    I[o + C.b1] = p.d1
    I[o + C.b2] = p.d2
    I[o + C.b3] = p.d3
    I[o + C.bp] = p.dport
    I[o + C.hash] = h
    I[o + C.serial] = ++this.serials
    I[o + C.cli] = -1
    const b = h & this.mask
    I[o + C.next] = this.heads[b]!
    this.heads[b] = i
    this.dir = 0
    this.flows++
    this.liveCount++
    return i
  }

  private release(i: number): void {
    const I = this.I
    const o = i * SI
    unlink(I, this.heads, I[o + C.hash]! & this.mask, i, C.next)
    if (I[o + C.flg]! & F_PENDING) this.unpend(i)
    I[o + C.proto] = -1
    this.tunnels.delete(i)
    this.frags.delete(i)
    this.free.push(i)
    this.liveCount--
  }

  /** the hash of one endpoint (side 0: A, 1: B) of connection i */
  private endpointHash(i: number, side: number): number {
    const I = this.I
    const o = i * SI + (side === 0 ? C.a0 : C.b0)
    return (hashWords(I[o]!, I[o + 1]!, I[o + 2]!, I[o + 3]!, I[o + 4]!) ^ I[i * SI + C.fam]!) & 0x3fffffff
  }

  /** lists connection i as a SYN waiting for its SYN/ACK, under its client endpoint */
  private pend(i: number): void {
    const I = this.I
    const o = i * SI
    const h = this.endpointHash(i, I[o + C.cli]!)
    I[o + C.phash] = h
    I[o + C.flg] = I[o + C.flg]! | F_PENDING
    const b = h & this.mask
    I[o + C.pnext] = this.pheads[b]!
    this.pheads[b] = i
  }

  private unpend(i: number): void {
    const I = this.I
    const o = i * SI
    unlink(I, this.pheads, I[o + C.phash]! & this.mask, i, C.pnext)
    I[o + C.flg] = I[o + C.flg]! & ~F_PENDING
  }

  /** the latest pending SYN whose client endpoint is endpoint `side` of connection j */
  private pendingFor(j: number, side: number): number {
    const I = this.I
    const h = this.endpointHash(j, side)
    const q = j * SI + (side === 0 ? C.a0 : C.b0)
    for (let i = this.pheads[h & this.mask]!; i >= 0; i = I[i * SI + C.pnext]!) {
      const o = i * SI
      const c = o + (I[o + C.cli] === 1 ? C.b0 : C.a0)
      if (I[o + C.phash] === h && I[o + C.fam] === I[j * SI + C.fam] && I[c] === I[q] && I[c + 1] === I[q + 1] &&
        I[c + 2] === I[q + 2] && I[c + 3] === I[q + 3] && I[c + 4] === I[q + 4]) return i
    }
    return -1
  }

  /** Feeds one decoded packet; its `index` (1-based) and `time` (seconds) fields say which and when. */
  packet(p: DecodedPacket): void {
    if (p.time > this.lastTime) this.lastTime = p.time
    if (!p.l4) return
    const pr = p.proto
    if (pr === IPPROTO.TCP) this.tcp(p)
    else if (pr === IPPROTO.UDP) this.udp(p)
    else if ((pr === IPPROTO.ICMP || pr === IPPROTO.ICMPV6) && p.inner) this.icmp(p, p.index, p.time)
  }

  private flowHash(p: DecodedPacket): number {
    return ((hashWords(p.s0, p.s1, p.s2, p.s3, p.sport) + hashWords(p.d0, p.d1, p.d2, p.d3, p.dport)) ^ (p.proto * 0x3b9)) & 0x3fffffff
  }

  private udp(p: DecodedPacket): void {
    const h = this.flowHash(p)
    let i = this.lookup(p, h)
    if (i < 0) i = this.create(p, h)
    if (!this.view(i, p, this.dir)) return
    const f = this.I[i * SI + C.flg]! | (this.dir === 0 ? F_SEEN_A : F_SEEN_B)
    this.I[i * SI + C.flg] = (f & (F_SEEN_A | F_SEEN_B)) === (F_SEEN_A | F_SEEN_B) ? f | F_EST : f
    if (this.I[i * SI + C.cli]! < 0) this.I[i * SI + C.cli] = this.dir
  }

  private tcp(p: DecodedPacket): void {
    const index = p.index
    const time = p.time
    const h = this.flowHash(p)
    let i = this.lookup(p, h)
    const flags = p.flags
    if (i < 0) i = this.create(p, h)
    else if ((flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN && (this.I[i * SI + C.synCount]! > 0
      ? p.seq !== this.I[i * SI + C.isn] && ((this.I[i * SI + C.flg]! & (F_EST | F_RST)) !== 0 || this.I[i * SI + C.synAckCount]! > 0)
      : (this.I[i * SI + C.flg]! & (F_EST | F_RST)) !== 0)) {
      // a new connection on a reused tuple: decide the old one first
      this.decide(i)
      this.release(i)
      i = this.create(p, h)
    }
    const dir = this.dir
    if (!this.view(i, p, dir)) return
    let f = this.I[i * SI + C.flg]! | (dir === 0 ? F_SEEN_A : F_SEEN_B)

    if (flags & TCP_FLAG.SYN) {
      if (!(flags & TCP_FLAG.ACK)) {
        if (this.I[i * SI + C.synCount] === 0) {
          this.I[i * SI + C.cli] = dir
          this.I[i * SI + C.isn] = p.seq
          this.I[i * SI + C.synIdx] = index
          this.F[i * SF + D.synTime] = time
          if (this.I[i * SI + C.synAckCount] === 0) {
            this.I[i * SI + C.flg] = f
            this.pend(i)
            f = this.I[i * SI + C.flg]!
          }
        }
        if (this.I[i * SI + C.synCount] === 0 || Math.abs(time - this.F[i * SF + D.synLast]!) >= DUPLICATE_SECONDS) {
          this.I[i * SI + C.synCount]++
          this.F[i * SF + D.synLast] = time
        }
      } else {
        if (this.I[i * SI + C.synCount] === 0) {
          // no SYN on this tuple (yet: captures merged from several interfaces are not strictly in time order)
          this.I[i * SI + C.cli] = 1 - dir
          this.I[i * SI + C.flg] = f
          if (this.I[i * SI + C.synAckCount] === 0) this.checkBypass(p, i, index, time)
          else this.evidence(i, 'reply-bypasses-director', index, time, p)
          f = this.I[i * SI + C.flg]!
        }
        if (this.I[i * SI + C.synAckCount] === 0) {
          this.I[i * SI + C.srvIsn] = p.seq
          this.I[i * SI + C.synAckIdx] = index
          this.F[i * SF + D.synAckTime] = time
          if (f & F_PENDING) {
            this.unpend(i)
            f &= ~F_PENDING
          }
        }
        if (this.I[i * SI + C.synAckCount] === 0 || Math.abs(time - this.F[i * SF + D.synAckLast]!) >= DUPLICATE_SECONDS) {
          this.I[i * SI + C.synAckCount]++
          this.F[i * SF + D.synAckLast] = time
        }
      }
      this.I[i * SI + C.flg] = f
      return
    }

    const cli = this.I[i * SI + C.cli]!
    if (cli < 0) this.I[i * SI + C.cli] = dir // met mid-stream: call the first sender the client
    const fromClient = this.I[i * SI + C.cli] === dir

    if (flags & TCP_FLAG.RST) {
      if (!(f & F_RST)) {
        f |= F_RST
        if (!(f & F_EST)) {
          if (this.I[i * SI + C.synCount]! > 0) f |= F_ANSWERED
        } else if (!fromClient && !(f & F_DATA_SRV) && this.I[i * SI + C.finCountA] === 0 && this.I[i * SI + C.finCountB] === 0 &&
          this.I[i * SI + C.estIdx]! > 0 && time - this.F[i * SF + D.estTime]! <= RST_WINDOW_SECONDS) {
          this.I[i * SI + C.flg] = f
          this.rstAfterHandshake(p, i, index, time)
          f = this.I[i * SI + C.flg]!
        }
      }
      this.I[i * SI + C.flg] = f
      this.evidence(i, 'reply-bypasses-director', index, time, p)
      return
    }

    if (flags & TCP_FLAG.ACK) {
      if (fromClient) {
        f |= F_CLIENT_ACKED
        if (!(f & F_EST) && this.I[i * SI + C.synAckCount]! > 0 && p.ack === ((this.I[i * SI + C.srvIsn]! + 1) | 0)) {
          f |= F_EST
          this.I[i * SI + C.estIdx] = index
          this.F[i * SF + D.estTime] = time
        }
      }
      if (!(f & F_EST) && this.I[i * SI + C.synCount] === 0 && this.I[i * SI + C.synAckCount] === 0 && (f & (F_SEEN_A | F_SEEN_B)) === (F_SEEN_A | F_SEEN_B)) {
        f |= F_EST // both directions of a flow met mid-stream
      }
      // does this acknowledge the other side's FIN?
      if (dir === 0) {
        if (this.I[i * SI + C.finCountB]! > 0 && ((p.ack - this.I[i * SI + C.finSeqB]!) | 0) > 0) f |= F_FIN_ACKED_B
      } else if (this.I[i * SI + C.finCountA]! > 0 && ((p.ack - this.I[i * SI + C.finSeqA]!) | 0) > 0) f |= F_FIN_ACKED_A
    }
    if (p.payloadLen > 0 && f & F_EST) f |= fromClient ? F_DATA_CLI : F_DATA_SRV

    if (flags & TCP_FLAG.FIN) {
      // the FIN's own sequence number is seq + payload length
      const fseq = (p.seq + p.payloadLen) | 0
      if (dir === 0) {
        if (this.I[i * SI + C.finCountA] === 0) {
          this.I[i * SI + C.finSeqA] = fseq
          this.I[i * SI + C.finIdxA] = index
          this.F[i * SF + D.finTimeA] = time
        }
        if (this.I[i * SI + C.finSeqA] === fseq && (this.I[i * SI + C.finCountA] === 0 || Math.abs(time - this.F[i * SF + D.finLastTimeA]!) >= DUPLICATE_SECONDS)) {
          this.I[i * SI + C.finCountA]++
          this.I[i * SI + C.finLastIdxA] = index
          this.F[i * SF + D.finLastTimeA] = time
        }
      } else {
        if (this.I[i * SI + C.finCountB] === 0) {
          this.I[i * SI + C.finSeqB] = fseq
          this.I[i * SI + C.finIdxB] = index
          this.F[i * SF + D.finTimeB] = time
        }
        if (this.I[i * SI + C.finSeqB] === fseq && (this.I[i * SI + C.finCountB] === 0 || Math.abs(time - this.F[i * SF + D.finLastTimeB]!) >= DUPLICATE_SECONDS)) {
          this.I[i * SI + C.finCountB]++
          this.I[i * SI + C.finLastIdxB] = index
          this.F[i * SF + D.finLastTimeB] = time
        }
      }
    }
    this.I[i * SI + C.flg] = f
    if ((f & (F_FIN_ACKED_A | F_FIN_ACKED_B)) === (F_FIN_ACKED_A | F_FIN_ACKED_B)) {
      // closed cleanly: nothing more can go wrong with it
      this.decide(i)
      this.release(i)
    }
  }

  /**
   * Tunnel bookkeeping, and whether the packet counts: a packet of this direction was seen before the other way
   * (inside a tunnel vs outside it), so this one is the same packet captured on another interface.
   */
  private view(i: number, p: DecodedPacket, dir: number): boolean {
    const o = i * SI + C.flg
    let f = this.I[o]!
    const tun = p.tunnel !== 0
    if (tun) {
      f |= F_TUNNELLED
      let t = this.tunnels.get(i)
      if (!t) {
        t = {tunnel: tunnelOf(p.tunnel, p.tFamily, p.ts0, p.ts1, p.ts2, p.ts3, p.td0, p.td1, p.td2, p.td3, p.tunPort), syns: 0, synIdx: 0, synTime: 0}
        this.tunnels.set(i, t)
      }
      if (p.proto === IPPROTO.TCP && (p.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN) {
        if (t.syns++ === 0) {
          t.synIdx = p.index
          t.synTime = p.time
        }
      }
    }
    const set = dir === 0 ? F_VA_SET : F_VB_SET
    const tb = dir === 0 ? F_VA_TUN : F_VB_TUN
    if (!(f & set)) {
      this.I[o] = f | set | (tun ? tb : 0)
      return true
    }
    this.I[o] = f
    return ((f & tb) !== 0) === tun
  }

  /**
   * A SYN/ACK on a flow whose SYN was never seen: did the client at its destination send a SYN to someone
   * else with the same port (a VIP), acknowledged by this SYN/ACK? Then the reply skipped the un-NAT.
   */
  private checkBypass(p: DecodedPacket, leak: number, index: number, time: number): void {
    const clientSide = this.I[leak * SI + C.cli]!
    const syn = this.pendingFor(leak, clientSide)
    if (syn < 0 || this.I[syn * SI + C.synAckCount]! > 0) return
    const acked = p.ack === ((this.I[syn * SI + C.isn]! + 1) | 0)
    const server = this.endpoint(syn, 1 - this.I[syn * SI + C.cli]!)
    const vip = this.vipOf(server)
    if (!acked && !vip) return
    this.I[syn * SI + C.flg] = this.I[syn * SI + C.flg]! | F_EXPLAINED
    this.I[leak * SI + C.flg] = this.I[leak * SI + C.flg]! | F_EXPLAINED
    const key = `${this.I[syn * SI + C.serial]}:reply-bypasses-director`
    let b = this.builders.get(key)
    const replier = formatEndpoint(this.endpoint(leak, 1 - clientSide))
    if (!b) {
      b = this.open(key, 'reply-bypasses-director', syn, this.I[syn * SI + C.synIdx]!, [
        {n: this.I[syn * SI + C.synIdx]!, time: round6(this.F[syn * SF + D.synTime]!), what: `SYN ${this.arrow(syn)}`},
      ])
      b.from = replier
      b.detail = acked ? `acknowledging the client's SYN (ack ${(this.I[syn * SI + C.isn]! + 1) >>> 0})` : 'with the client port of a connection to the VIP'
    }
    // route later packets of the leaked flow (the client's RST) into this symptom
    this.builders.set(`${this.I[leak * SI + C.serial]}:reply-bypasses-director`, b)
    this.addPacket(b, index, time, `SYN/ACK ${describe(p)}`)
  }

  private evidence(i: number, kind: SymptomKind, index: number, time: number, p: DecodedPacket): void {
    if (!(this.I[i * SI + C.flg]! & F_EXPLAINED)) return
    const b = this.builders.get(`${this.I[i * SI + C.serial]}:${kind}`)
    if (b) this.addPacket(b, index, time, `${flagNames(p.flags)} ${describe(p)}`)
  }

  private rstAfterHandshake(p: DecodedPacket, i: number, index: number, time: number): void {
    const b = this.open(`${this.I[i * SI + C.serial]}:rst-after-handshake`, 'rst-after-handshake', i, this.I[i * SI + C.synIdx]! || index, [])
    if (this.I[i * SI + C.synIdx]) b.packets.push({n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`})
    if (this.I[i * SI + C.synAckIdx]) b.packets.push({n: this.I[i * SI + C.synAckIdx]!, time: round6(this.F[i * SF + D.synAckTime]!), what: `SYN/ACK ${this.arrow(i, true)}`})
    b.packets.push({n: this.I[i * SI + C.estIdx]!, time: round6(this.F[i * SF + D.estTime]!), what: 'ACK (handshake complete)'})
    this.addPacket(b, index, time, `${flagNames(p.flags)} ${describe(p)}`)
    const ms = Math.round((time - this.F[i * SF + D.estTime]!) * 1000)
    b.detail = `${ms} ms after the handshake, before the server sent any data${this.I[i * SI + C.flg]! & F_DATA_CLI ? ' (the client had sent its request)' : ''}`
  }

  private icmp(p: DecodedPacket, index: number, time: number): void {
    const v6 = p.proto === IPPROTO.ICMPV6
    if (!p.iPorts || (p.iProto !== IPPROTO.TCP && p.iProto !== IPPROTO.UDP)) return
    const tooBig = v6 ? p.icmpType === 2 : p.icmpType === 3 && p.icmpCode === 4
    if (tooBig || (p.iTunnel !== 0 && (v6 ? p.icmpType === 1 : p.icmpType === 3))) return this.tunnelIcmp(p, tooBig, index, time)
    const name = v6 ? (p.icmpType === 1 ? ICMP6_UNREACH[p.icmpCode] ?? `unreachable code ${p.icmpCode}` : undefined)
      : p.icmpType === 3 && p.icmpCode !== 4 ? ICMP4_UNREACH[p.icmpCode] ?? `unreachable code ${p.icmpCode}` : undefined
    if (name === undefined) return
    // look the quoted datagram's flow up
    const i = this.quotedFlow(p)
    if (i < 0) return
    const f = this.I[i * SI + C.flg]!
    const established = (f & F_EST) !== 0
    if (!established && (this.I[i * SI + C.synCount] === 0 || this.I[i * SI + C.synAckCount]! > 0)) return
    const kind: SymptomKind = established ? 'icmp-unreachable-established' : 'icmp-unreachable-new'
    if (!established) this.I[i * SI + C.flg] = f | F_ANSWERED | F_EXPLAINED
    const key = `${this.I[i * SI + C.serial]}:${kind}`
    let b = this.builders.get(key)
    if (!b) {
      const first: SymptomPacket[] = []
      if (this.I[i * SI + C.synIdx]) first.push({n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`})
      if (established && this.I[i * SI + C.estIdx]) first.push({n: this.I[i * SI + C.estIdx]!, time: round6(this.F[i * SF + D.estTime]!), what: 'ACK (handshake complete)'})
      b = this.open(key, kind, i, this.I[i * SI + C.synIdx]! || index, first)
      b.icmp = name
      b.from = formatIp(words(p.family, p.s0, p.s1, p.s2, p.s3))
      b.detail = ''
    }
    this.addPacket(b, index, time, `ICMP${v6 ? 'v6' : ''} ${name} from ${b.from} quoting ${describeQuoted(p)}`)
  }

  /** The flow of the datagram an ICMP error quotes (its index, or < 0 when the capture has no such flow). */
  private quotedFlow(p: DecodedPacket): number {
    const q = QUOTED
    q.family = p.iFamily
    q.proto = p.iProto
    q.s0 = p.is0
    q.s1 = p.is1
    q.s2 = p.is2
    q.s3 = p.is3
    q.d0 = p.id0
    q.d1 = p.id1
    q.d2 = p.id2
    q.d3 = p.id3
    q.sport = p.iSport
    q.dport = p.iDport
    const i = this.lookup(q, this.flowHash(q))
    return i
  }

  /**
   * An ICMP error about a tunnel packet or a packet too big: a realserver refusing the tunnel (protocol/port
   * unreachable: nothing unwraps it), or fragmentation needed for a flow (the tunnel's MTU).
   */
  private tunnelIcmp(p: DecodedPacket, tooBig: boolean, index: number, time: number): void {
    const i = this.quotedFlow(p)
    const from = formatIp(words(p.family, p.s0, p.s1, p.s2, p.s3))
    const quotedTunnel = p.iTunnel !== 0
      ? tunnelOf(p.iTunnel, p.itFamily, p.its0, p.its1, p.its2, p.its3, p.itd0, p.itd1, p.itd2, p.itd3, p.iTunPort)
      : undefined
    const v6 = p.proto === IPPROTO.ICMPV6
    const what = `ICMP${v6 ? 'v6' : ''} ${tooBig ? `${v6 ? 'packet-too-big' : 'frag-needed'} (mtu ${p.icmpMtu})` : (v6 ? ICMP6_UNREACH[p.icmpCode] : ICMP4_UNREACH[p.icmpCode]) ?? `unreachable code ${p.icmpCode}`} from ${from} quoting ` +
      (quotedTunnel ? `${quotedTunnel.type.toUpperCase()} ${quotedTunnel.from} > ${quotedTunnel.to}${quotedTunnel.port ? `:${quotedTunnel.port}` : ''} carrying ` : '') + describeQuoted(p) + (p.iLen ? ` (${p.iLen} bytes)` : '')
    if (tooBig) {
      if (i < 0 || this.I[i * SI + C.proto] !== IPPROTO.TCP) return
      let fr = this.frags.get(i)
      const seq = p.iHasSeq ? p.iSeq : NaN
      if (!fr) {
        fr = {seq, repeats: 0, count: 0, mtu: p.icmpMtu, from, len: p.iLen, packets: [], ...(quotedTunnel ? {tunnel: quotedTunnel} : {})}
        this.frags.set(i, fr)
      }
      fr.count++
      // the same segment, told again by the same sender (a router's error about the tunnel packet and the
      // director's relayed one to the client are one event, not a repetition)
      if (from === fr.from && (seq === fr.seq || (Number.isNaN(seq) && Number.isNaN(fr.seq)))) fr.repeats++
      fr.mtu = p.icmpMtu
      if (p.iLen) fr.len = p.iLen
      const pk = {n: index, time: round6(time), what}
      if (fr.packets.length < MAX_EVIDENCE) fr.packets.push(pk)
      else fr.packets[MAX_EVIDENCE - 1] = pk
      return
    }
    const t = quotedTunnel!
    const name = (v6 ? ICMP6_UNREACH[p.icmpCode] : ICMP4_UNREACH[p.icmpCode]) ?? `unreachable code ${p.icmpCode}`
    const key = `tunnel-unreachable:${from}:${t.to}:${name}`
    let b = this.builders.get(key)
    if (!b) {
      const first: SymptomPacket[] = []
      if (i >= 0 && this.I[i * SI + C.synIdx]) first.push({n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`})
      if (i >= 0) b = this.open(key, 'tunnel-unreachable', i, this.I[i * SI + C.synIdx]! || index, first)
      else {
        const client = {ip: words(p.iFamily, p.is0, p.is1, p.is2, p.is3), port: p.iSport}
        const server = {ip: words(p.iFamily, p.id0, p.id1, p.id2, p.id3), port: p.iDport}
        b = this.openFlow(key, 'tunnel-unreachable', {proto: p.iProto === IPPROTO.UDP ? 'udp' : 'tcp', client: formatEndpoint(client), server: formatEndpoint(server)}, this.vipOf(server), index, first)
      }
      b.icmp = name
      b.from = from
      b.tunnel = t
    }
    if (i >= 0) this.I[i * SI + C.flg] = this.I[i * SI + C.flg]! | F_ANSWERED | F_EXPLAINED
    this.addPacket(b, index, time, what)
  }

  private open(key: string, kind: SymptomKind, i: number, first: number, packets: SymptomPacket[]): Builder {
    const client = this.I[i * SI + C.cli]! === 1 ? 1 : 0
    const server = this.endpoint(i, 1 - client)
    const b = this.openFlow(key, kind, {proto: this.I[i * SI + C.proto] === IPPROTO.UDP ? 'udp' : 'tcp', client: formatEndpoint(this.endpoint(i, client)), server: formatEndpoint(server)},
      this.vipOf(server), first, packets)
    const t = this.tunnels.get(i)
    if (t) b.tunnel = t.tunnel
    return b
  }

  private openFlow(key: string, kind: SymptomKind, flow: SymptomFlow, vip: Endpoint | undefined, first: number, packets: SymptomPacket[]): Builder {
    const b: Builder = {
      kind,
      flow,
      packets,
      first,
      count: 0,
      detail: '',
      ...(vip ? {vip: formatEndpoint(vip)} : {}),
    }
    this.builders.set(key, b)
    return b
  }

  private addPacket(b: Builder, n: number, time: number, what: string): void {
    b.count++
    const pk = {n, time: round6(time), what}
    if (b.packets.length < MAX_EVIDENCE) b.packets.push(pk)
    else b.packets[MAX_EVIDENCE - 1] = pk // keep the first few and the latest
  }

  /** End-of-life decisions for connection i: unanswered SYN, unacknowledged SYN/ACK, unanswered FIN. */
  private decide(i: number): void {
    if (this.I[i * SI + C.proto] !== IPPROTO.TCP) return
    const f = this.I[i * SI + C.flg]!
    const fr = this.frags.get(i)
    if (fr && fr.repeats >= FRAG_NEEDED_REPEATS) {
      const tunnel = this.tunnels.get(i)?.tunnel ?? fr.tunnel
      const kind: SymptomKind = tunnel ? 'tunnel-mtu' : 'pmtu-blackhole'
      const first: SymptomPacket[] = []
      if (this.I[i * SI + C.synIdx]) first.push({n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`})
      const b = this.open(`${this.I[i * SI + C.serial]}:${kind}`, kind, i, fr.packets[0]!.n, first)
      for (const pk of fr.packets) b.packets.push(pk)
      if (tunnel) b.tunnel = tunnel
      b.from = fr.from
      b.mtu = fr.mtu
      b.count = fr.count
      b.detail = `${fr.len ? `a ${fr.len}-byte packet` : 'a packet'}${Number.isNaN(fr.seq) ? '' : ` (seq ${fr.seq >>> 0})`} drew ${fr.repeats} frag-needed errors (mtu ${fr.mtu}) from ${fr.from}`
    }
    if (f & F_EXPLAINED) return
    const end = this.lastTime
    if (this.I[i * SI + C.synCount]! > 0 && this.I[i * SI + C.synAckCount] === 0 && !(f & (F_CLIENT_ACKED | F_ANSWERED | F_EST))) {
      if (this.I[i * SI + C.synCount]! >= 2 || end - this.F[i * SF + D.synTime]! >= SYN_WAIT_SECONDS) {
        const t = this.tunnels.get(i)
        const kind: SymptomKind = t ? 'tunnel-syn-unanswered' : 'syn-unanswered'
        const b = this.open(`${this.I[i * SI + C.serial]}:${kind}`, kind, i, this.I[i * SI + C.synIdx]!, [
          {n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`},
        ])
        b.count = this.I[i * SI + C.synCount]!
        b.detail = `sent ${this.I[i * SI + C.synCount]} time${this.I[i * SI + C.synCount] === 1 ? '' : 's'}, the capture went on ${(end - this.F[i * SF + D.synTime]!).toFixed(1)} s after the first`
        if (t) {
          if (t.synIdx !== this.I[i * SI + C.synIdx]) b.packets.push({n: t.synIdx, time: round6(t.synTime), what: `SYN ${this.arrow(i)} inside ${t.tunnel.type.toUpperCase()} ${t.tunnel.from} > ${t.tunnel.to}`})
          else b.packets[0] = {n: t.synIdx, time: round6(t.synTime), what: `SYN ${this.arrow(i)} inside ${t.tunnel.type.toUpperCase()} ${t.tunnel.from} > ${t.tunnel.to}`}
          b.detail += `; ${t.syns} of them tunnelled`
        }
      }
    }
    if (this.I[i * SI + C.synAckCount]! > 0 && !(f & (F_EST | F_RST | F_CLIENT_ACKED))) {
      if (this.I[i * SI + C.synAckCount]! >= 2 || end - this.F[i * SF + D.synAckTime]! >= SYN_WAIT_SECONDS) {
        const first: SymptomPacket[] = []
        if (this.I[i * SI + C.synIdx]) first.push({n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`})
        first.push({n: this.I[i * SI + C.synAckIdx]!, time: round6(this.F[i * SF + D.synAckTime]!), what: `SYN/ACK ${this.arrow(i, true)}`})
        const b = this.open(`${this.I[i * SI + C.serial]}:synack-unacked`, 'synack-unacked', i, this.I[i * SI + C.synIdx]! || this.I[i * SI + C.synAckIdx]!, first)
        b.count = this.I[i * SI + C.synAckCount]!
        b.detail = `the server sent its SYN/ACK ${this.I[i * SI + C.synAckCount]} time${this.I[i * SI + C.synAckCount] === 1 ? '' : 's'}`
      }
    }
    for (const side of [0, 1]) {
      const count = side === 0 ? this.I[i * SI + C.finCountA]! : this.I[i * SI + C.finCountB]!
      const acked = f & (side === 0 ? F_FIN_ACKED_A : F_FIN_ACKED_B)
      if (count - 1 >= FIN_RETRANSMISSIONS && !acked) {
        const who = side === this.I[i * SI + C.cli] ? 'client' : 'server'
        const b = this.open(`${this.I[i * SI + C.serial]}:fin-unanswered:${side}`, 'fin-unanswered', i, side === 0 ? this.I[i * SI + C.finIdxA]! : this.I[i * SI + C.finIdxB]!, [
          {n: side === 0 ? this.I[i * SI + C.finIdxA]! : this.I[i * SI + C.finIdxB]!, time: round6(side === 0 ? this.F[i * SF + D.finTimeA]! : this.F[i * SF + D.finTimeB]!), what: `FIN from the ${who} ${formatEndpoint(this.endpoint(i, side))}`},
          {n: side === 0 ? this.I[i * SI + C.finLastIdxA]! : this.I[i * SI + C.finLastIdxB]!, time: round6(side === 0 ? this.F[i * SF + D.finLastTimeA]! : this.F[i * SF + D.finLastTimeB]!), what: `FIN retransmission ${count - 1}`},
        ])
        b.count = count
        b.detail = `the ${who}'s FIN was sent ${count} times and never acknowledged`
      }
    }
  }

  /** Decides the connections still open and returns every symptom, in capture order. */
  finish(): Symptom[] {
    for (let i = 0; i < this.n; i++) if (this.I[i * SI + C.proto] !== -1) this.decide(i)
    const seen = new Set<Builder>()
    const out: Symptom[] = []
    for (const b of this.builders.values()) {
      if (seen.has(b)) continue
      seen.add(b)
      out.push(finishSymptom(b))
    }
    out.sort((x, y) => x.packets[0]!.n - y.packets[0]!.n || x.kind.localeCompare(y.kind))
    return out
  }

  /** connections currently held (for memory figures) */
  get live(): number {
    return this.liveCount
  }

  private endpoint(i: number, side: number): Endpoint {
    const fam = this.I[i * SI + C.fam]!
    return side === 0
      ? {ip: words(fam, this.I[i * SI + C.a0]!, this.I[i * SI + C.a1]!, this.I[i * SI + C.a2]!, this.I[i * SI + C.a3]!), port: this.I[i * SI + C.ap]!}
      : {ip: words(fam, this.I[i * SI + C.b0]!, this.I[i * SI + C.b1]!, this.I[i * SI + C.b2]!, this.I[i * SI + C.b3]!), port: this.I[i * SI + C.bp]!}
  }

  /** `client > server`, or `server > client` when `back` */
  private arrow(i: number, back = false): string {
    const c = this.I[i * SI + C.cli]! === 1 ? 1 : 0
    const x = formatEndpoint(this.endpoint(i, c))
    const y = formatEndpoint(this.endpoint(i, 1 - c))
    return back ? `${y} > ${x}` : `${x} > ${y}`
  }

  private vipOf(e: Endpoint): Endpoint | undefined {
    return this.vips.find((v) => v.port === e.port && v.ip.family === e.ip.family && v.ip.value === e.ip.value)
  }
}

export function tunnelOf(kind: number, fam: number, s0: number, s1: number, s2: number, s3: number, d0: number, d1: number, d2: number, d3: number, port: number): SymptomTunnel {
  return {
    type: (TUNNEL_NAMES[kind] || 'ipip') as SymptomTunnel['type'],
    from: formatIp(words(fam, s0, s1, s2, s3)),
    to: formatIp(words(fam, d0, d1, d2, d3)),
    ...(port ? {port} : {}),
  }
}

/** the quoted datagram of an ICMP error, as a packet to look its flow up with */
const QUOTED = new DecodedPacket()

function round6(t: number): number {
  return Math.round(t * 1e6) / 1e6
}

export function words(family: number, w0: number, w1: number, w2: number, w3: number): IpAddr {
  if (family === 4) return {family: 4, value: BigInt(w3 >>> 0)}
  return {family: 6, value: (BigInt(w0 >>> 0) << 96n) | (BigInt(w1 >>> 0) << 64n) | (BigInt(w2 >>> 0) << 32n) | BigInt(w3 >>> 0)}
}

export function flagNames(flags: number): string {
  const n: string[] = []
  if (flags & TCP_FLAG.SYN) n.push('SYN')
  if (flags & TCP_FLAG.FIN) n.push('FIN')
  if (flags & TCP_FLAG.RST) n.push('RST')
  if (flags & TCP_FLAG.PSH) n.push('PSH')
  if (flags & TCP_FLAG.ACK) n.push('ACK')
  return n.join('/') || 'none'
}

/** `a:p > b:q` of a decoded packet */
export function describe(p: DecodedPacket): string {
  const s = {ip: words(p.family, p.s0, p.s1, p.s2, p.s3), port: p.sport}
  const d = {ip: words(p.family, p.d0, p.d1, p.d2, p.d3), port: p.dport}
  return `${formatEndpoint(s)} > ${formatEndpoint(d)}`
}

function describeQuoted(p: DecodedPacket): string {
  const s = {ip: words(p.iFamily, p.is0, p.is1, p.is2, p.is3), port: p.iSport}
  const d = {ip: words(p.iFamily, p.id0, p.id1, p.id2, p.id3), port: p.iDport}
  return `${p.iProto === IPPROTO.TCP ? 'tcp' : 'udp'} ${formatEndpoint(s)} > ${formatEndpoint(d)}`
}

/** bytes a tunnel adds (ip_vs_xmit.c: IPv4 header, + UDP and GUE header, + GRE header without options) */
const OVERHEAD: Readonly<Record<SymptomTunnel['type'], number>> = {ipip: 20, gue: 32, gre: 24}

/** what unwraps a tunnel's packets on the realserver */
function receiverOf(t: SymptomTunnel): string {
  if (t.type === 'gue') return `a GUE receiver on UDP port ${t.port ?? '?'} (ip fou add port ${t.port ?? 'PORT'} gue) and the ipip device it hands packets to`
  if (t.type === 'gre') return 'a GRE device (gre0, ip_gre loaded)'
  return 'an IPIP device (tunl0, ipip loaded)'
}

function finishSymptom(b: Builder): Symptom {
  const f = b.flow
  const to = b.vip ? `the VIP ${b.vip}` : f.server
  let title: string
  let message: string
  let rules = RULES[b.kind]
  switch (b.kind) {
    case 'reply-bypasses-director':
      title = `replies to ${f.client} come from ${b.from}, not from ${to}`
      message =
        `The client ${f.client} sent a SYN to ${to} and got a SYN/ACK from ${b.from} ${b.detail}: the reply left the realserver ` +
        `without passing the director's un-NAT, so the client cannot match it to its connection (it answers with a RST).`
      if (b.tunnel) {
        // LVS-TUN has no un-NAT: the realserver must answer from the VIP itself
        message =
          `The client ${f.client} sent a SYN to ${to}, tunnelled by ${b.tunnel.from} to ${b.tunnel.to}, and got a SYN/ACK from ${b.from} ${b.detail}: ` +
          `in LVS-TUN the realserver answers the client directly and must do so from the VIP; this one answered from another address ` +
          `(a NAT rule on the realserver, or a service that rewrites its source), so the client answers with a RST.`
        rules = []
      }
      break
    case 'syn-unanswered':
      title = `SYN from ${f.client} to ${to} never answered`
      message = `The connection ${f.client} > ${to} never got a SYN/ACK: the SYN was ${b.detail}.`
      break
    case 'synack-unacked':
      title = `SYN/ACK to ${f.client} never acknowledged`
      message = `The server ${f.server} answered ${f.client}, but the client's ACK never arrived: ${b.detail}. ` +
        `Either the SYN/ACK does not reach the client as the reply it expects, or the client's ACK is dropped on the way in.`
      break
    case 'fin-unanswered':
      title = `FIN of ${f.client} <> ${f.server} retransmitted unanswered`
      message = `In ${f.client} <> ${to}, ${b.detail}: something on the path drops it (or the ACK), typically a stateful filter ` +
        `that no longer sees the flow as ESTABLISHED.`
      break
    case 'icmp-unreachable-established':
      title = `ICMP ${b.icmp} from ${b.from} kills the established flow ${f.client} > ${to}`
      message = `${b.from} answered packets of the established connection ${f.client} > ${to} with ICMP ${b.icmp} ` +
        `(${b.count} time${b.count === 1 ? '' : 's'}): a REJECT rule matched a packet of a live flow, typically a catch-all ` +
        `REJECT behind an ESTABLISHED,RELATED accept on a path that sees one direction only.`
      if (b.icmp && !REJECT_CODES.has(b.icmp)) rules = []
      break
    case 'icmp-unreachable-new':
      title = `new connection ${f.client} > ${to} refused with ICMP ${b.icmp} by ${b.from}`
      message = `${b.from} answered the SYN of ${f.client} > ${to} with ICMP ${b.icmp} (${b.count} time${b.count === 1 ? '' : 's'}).`
      if (b.icmp && !REJECT_CODES.has(b.icmp)) rules = []
      break
    case 'rst-after-handshake':
      title = `reset of ${f.client} > ${to} right after the handshake`
      message = `The connection ${f.client} > ${to} was reset from the server side ${b.detail}. Packets of one connection ` +
        `reaching a host that does not know it (per-packet balancing, a lost conntrack/IPVS entry) or a REJECT --reject-with ` +
        `tcp-reset both look like this; a health check that closes with SO_LINGER 0 resets from the client side and is not counted.`
      break
    case 'tunnel-syn-unanswered': {
      const t = b.tunnel!
      const T = t.type.toUpperCase()
      title = `SYN from ${f.client} to ${to}, tunnelled to ${t.to} (${T}), never answered`
      message =
        `The director ${t.from} passed the SYN of ${f.client} > ${to} to the realserver ${t.to} inside ${T} (${b.detail}), and no SYN/ACK ` +
        `from ${to} was seen: the realserver did not unwrap it, dropped what it unwrapped, or answered in a way that never reached the client. ` +
        `On ${t.to}: ${receiverOf(t)} must be up; the VIP a local address (on lo or the tunnel device); rp_filter 0 or 2 on the tunnel device ` +
        `(the unwrapped packets arrive there from the client's address while the route back leaves by another interface: strict mode drops ` +
        `them without a word); a service listening on the VIP and port; and its answer must leave with the VIP as source.`
      break
    }
    case 'tunnel-unreachable': {
      const t = b.tunnel!
      const T = t.type.toUpperCase()
      const proto = t.type === 'gre' ? 47 : t.type === 'gue' ? 17 : 4
      title = `${b.from} refuses the ${T} tunnel from ${t.from}: ICMP ${b.icmp}`
      const why =
        b.icmp === 'protocol-unreachable'
          ? `${b.from} has no handler for IP protocol ${proto}: the ${t.type === 'gre' ? 'ip_gre' : 'ipip'} module is not loaded (or net.core.fb_tunnels_only_for_init_net keeps ${t.type === 'gre' ? 'gre0' : 'tunl0'} out of its network namespace), so nothing unwraps the director's packets`
          : b.icmp === 'port-unreachable'
            ? t.type === 'gue'
              ? `nothing listens on UDP port ${t.port ?? '?'} of ${t.to}: the GUE receiver is missing (ip fou add port ${t.port ?? 'PORT'} gue)`
              : `no tunnel device takes the packets: ${t.type === 'gre' ? 'gre0' : 'tunl0'} (the fallback device) is down, or no configured tunnel matches their endpoints (${t.type === 'gre' ? 'gre_rcv' : 'tunnel4_rcv'} answers port unreachable)`
            : b.icmp === 'net-unreachable' || b.icmp === 'host-unreachable' || b.icmp === 'no-route' || b.icmp === 'address-unreachable'
              ? `${b.from} cannot deliver them to ${t.to}: the realserver is down or unreachable from there (no ARP answer, no route)`
              : `a filter between ${t.from} and ${t.to}, or on ${t.to} itself, rejects IP protocol ${proto}${t.type === 'gue' ? ` to UDP port ${t.port ?? '?'}` : ''}`
      message = `${b.from} answered the ${T} packets the director ${t.from} sent to ${t.to} with ICMP ${b.icmp} (${b.count} time${b.count === 1 ? '' : 's'}, ` +
        `the first about ${f.client} > ${to}): ${why}. No connection balanced to ${t.to} can succeed.`
      // only "nothing unwraps it" is what dr-realserver-no-vip checks
      if (b.icmp !== 'protocol-unreachable' && b.icmp !== 'port-unreachable') rules = []
      break
    }
    case 'tunnel-mtu':
    case 'pmtu-blackhole': {
      const t = b.tunnel
      const mtu = b.mtu ?? 0
      const over = t ? OVERHEAD[t.type] : 0
      title = t
        ? `${f.client}'s full-size packets to ${to} do not fit the ${t.type.toUpperCase()} tunnel ${t.from} > ${t.to} (mtu ${mtu})`
        : `path MTU black hole: ${f.client} keeps sending packets too big for ${to}'s path (mtu ${mtu})`
      message =
        `In ${f.client} > ${to}, ${b.detail}: the sender sent the same segment again at full size, so the errors never reach it ` +
        `(a firewall on the way back drops ICMP) or it ignores them; small requests work, large ones hang. ` +
        (t ? `${t.type.toUpperCase()} adds ${over}${t.type === 'gre' ? ' or more' : ''} bytes to every packet the director passes to ${t.to}, so packets of a full 1500-byte path do not fit (the classic LVS-TUN MTU problem). ` : '') +
        `Let ICMP fragmentation-needed reach the clients, or make the segments fit: clamp the MSS the ${t ? 'realservers announce' : 'server announces'} ` +
        `(ip route ... advmss ${mtu > 40 ? mtu - 40 : 'MTU-40'}, or a TCPMSS --set-mss rule on the SYN/ACKs)${t ? `, or raise the MTU between the director and the realservers by ${over} bytes` : ''}.`
      break
    }
  }
  return {
    kind: b.kind,
    severity: SEVERITY[b.kind],
    title,
    message,
    flow: b.flow,
    packets: [...b.packets].sort((x, y) => x.n - y.n),
    rules,
    ...(b.vip ? {vip: b.vip} : {}),
    ...(b.from ? {from: b.from} : {}),
    ...(b.icmp ? {icmp: b.icmp} : {}),
    ...(b.tunnel ? {tunnel: b.tunnel} : {}),
    ...(b.mtu !== undefined ? {mtu: b.mtu} : {}),
  }
}
