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
import {DecodedPacket} from './decode.js'
import {IPPROTO, TCP_FLAG} from './wire.js'

export type SymptomKind =
  | 'reply-bypasses-director'
  | 'syn-unanswered'
  | 'synack-unacked'
  | 'fin-unanswered'
  | 'icmp-unreachable-established'
  | 'icmp-unreachable-new'
  | 'rst-after-handshake'

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
}

export interface DetectorOptions {
  /** virtual services (VIP:port); they sharpen messages and rules, they never hide a symptom */
  readonly vips?: readonly Endpoint[]
}

/** A SYN counts as unanswered when it was retransmitted or the capture went on this long after it. */
export const SYN_WAIT_SECONDS = 1
/** A reset this soon after the handshake, before the server sent data or anyone a FIN, is "right after". */
export const RST_WINDOW_SECONDS = 3
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
}

const SEVERITY: Readonly<Record<SymptomKind, Severity>> = {
  'reply-bypasses-director': 'error',
  'syn-unanswered': 'error',
  'synack-unacked': 'error',
  'fin-unanswered': 'warning',
  'icmp-unreachable-established': 'error',
  'icmp-unreachable-new': 'warning',
  'rst-after-handshake': 'warning',
}

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
} as const
const SF = 7

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
        this.I[i * SI + C.synCount]++
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
        this.I[i * SI + C.synAckCount]++
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
        if (this.I[i * SI + C.finSeqA] === fseq) {
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
        if (this.I[i * SI + C.finSeqB] === fseq) {
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
    const name = v6 ? (p.icmpType === 1 ? ICMP6_UNREACH[p.icmpCode] ?? `unreachable code ${p.icmpCode}` : undefined)
      : p.icmpType === 3 && p.icmpCode !== 4 ? ICMP4_UNREACH[p.icmpCode] ?? `unreachable code ${p.icmpCode}` : undefined
    if (name === undefined) return
    // look the quoted datagram's flow up
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

  private open(key: string, kind: SymptomKind, i: number, first: number, packets: SymptomPacket[]): Builder {
    const client = this.I[i * SI + C.cli]! === 1 ? 1 : 0
    const server = this.endpoint(i, 1 - client)
    const vip = this.vipOf(server)
    const b: Builder = {
      kind,
      flow: {proto: this.I[i * SI + C.proto] === IPPROTO.UDP ? 'udp' : 'tcp', client: formatEndpoint(this.endpoint(i, client)), server: formatEndpoint(server)},
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
    if (f & F_EXPLAINED) return
    const end = this.lastTime
    if (this.I[i * SI + C.synCount]! > 0 && this.I[i * SI + C.synAckCount] === 0 && !(f & (F_CLIENT_ACKED | F_ANSWERED | F_EST))) {
      if (this.I[i * SI + C.synCount]! >= 2 || end - this.F[i * SF + D.synTime]! >= SYN_WAIT_SECONDS) {
        const b = this.open(`${this.I[i * SI + C.serial]}:syn-unanswered`, 'syn-unanswered', i, this.I[i * SI + C.synIdx]!, [
          {n: this.I[i * SI + C.synIdx]!, time: round6(this.F[i * SF + D.synTime]!), what: `SYN ${this.arrow(i)}`},
        ])
        b.count = this.I[i * SI + C.synCount]!
        b.detail = `sent ${this.I[i * SI + C.synCount]} time${this.I[i * SI + C.synCount] === 1 ? '' : 's'}, the capture went on ${(end - this.F[i * SF + D.synTime]!).toFixed(1)} s after the first`
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
  }
}
