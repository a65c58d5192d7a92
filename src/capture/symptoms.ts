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
const F_PENDING = 2048 // listed in pendingSyn

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

function hashWords(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let h = Math.imul(w3 ^ 0x9e3779b9, 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16) ^ w1, 0x27d4eb2d)
  h = Math.imul(h ^ (h >>> 15) ^ w0 ^ (port << 7), 0x165667b1)
  return h ^ (h >>> 16)
}

const MAX_EVIDENCE = 6

export class SymptomDetector {
  // ---- columns ----
  private cap = 0
  private n = 0 // high-water mark of ids
  private free: number[] = []
  private fam = new Int32Array(0)
  private proto = new Int32Array(0)
  private a0 = new Int32Array(0)
  private a1 = new Int32Array(0)
  private a2 = new Int32Array(0)
  private a3 = new Int32Array(0)
  private ap = new Int32Array(0)
  private b0 = new Int32Array(0)
  private b1 = new Int32Array(0)
  private b2 = new Int32Array(0)
  private b3 = new Int32Array(0)
  private bp = new Int32Array(0)
  private next = new Int32Array(0)
  private hash = new Int32Array(0)
  private serial = new Int32Array(0)
  /** -1 unknown, 0 endpoint A is the client, 1 endpoint B is */
  private cli = new Int32Array(0)
  private flg = new Int32Array(0)
  private isn = new Int32Array(0)
  private srvIsn = new Int32Array(0)
  private synCount = new Int32Array(0)
  private synIdx = new Int32Array(0)
  private synAckCount = new Int32Array(0)
  private synAckIdx = new Int32Array(0)
  private estIdx = new Int32Array(0)
  private finSeqA = new Int32Array(0)
  private finSeqB = new Int32Array(0)
  private finCountA = new Int32Array(0)
  private finCountB = new Int32Array(0)
  private finIdxA = new Int32Array(0)
  private finIdxB = new Int32Array(0)
  private finLastIdxA = new Int32Array(0)
  private finLastIdxB = new Int32Array(0)
  private synTime = new Float64Array(0)
  private synAckTime = new Float64Array(0)
  private estTime = new Float64Array(0)
  private finTimeA = new Float64Array(0)
  private finTimeB = new Float64Array(0)
  private finLastTimeA = new Float64Array(0)
  private finLastTimeB = new Float64Array(0)

  private readonly heads = new Map<number, number>()
  /** client endpoint of a SYN still waiting for its SYN/ACK → connection id */
  private readonly pendingSyn = new Map<string, number>()
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
    const g32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap)
      b.set(a)
      return b
    }
    const g64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap)
      b.set(a)
      return b
    }
    this.fam = g32(this.fam)
    this.proto = g32(this.proto)
    this.a0 = g32(this.a0)
    this.a1 = g32(this.a1)
    this.a2 = g32(this.a2)
    this.a3 = g32(this.a3)
    this.ap = g32(this.ap)
    this.b0 = g32(this.b0)
    this.b1 = g32(this.b1)
    this.b2 = g32(this.b2)
    this.b3 = g32(this.b3)
    this.bp = g32(this.bp)
    this.next = g32(this.next)
    this.hash = g32(this.hash)
    this.serial = g32(this.serial)
    this.cli = g32(this.cli)
    this.flg = g32(this.flg)
    this.isn = g32(this.isn)
    this.srvIsn = g32(this.srvIsn)
    this.synCount = g32(this.synCount)
    this.synIdx = g32(this.synIdx)
    this.synAckCount = g32(this.synAckCount)
    this.synAckIdx = g32(this.synAckIdx)
    this.estIdx = g32(this.estIdx)
    this.finSeqA = g32(this.finSeqA)
    this.finSeqB = g32(this.finSeqB)
    this.finCountA = g32(this.finCountA)
    this.finCountB = g32(this.finCountB)
    this.finIdxA = g32(this.finIdxA)
    this.finIdxB = g32(this.finIdxB)
    this.finLastIdxA = g32(this.finLastIdxA)
    this.finLastIdxB = g32(this.finLastIdxB)
    this.synTime = g64(this.synTime)
    this.synAckTime = g64(this.synAckTime)
    this.estTime = g64(this.estTime)
    this.finTimeA = g64(this.finTimeA)
    this.finTimeB = g64(this.finTimeB)
    this.finLastTimeA = g64(this.finLastTimeA)
    this.finLastTimeB = g64(this.finLastTimeB)
    this.cap = cap
  }

  /** Finds the connection of the packet's tuple (either direction); sets `this.dir` (0: from A, 1: from B). */
  private dir = 0

  private lookup(p: DecodedPacket, h: number): number {
    let i = this.heads.get(h)
    if (i === undefined) return -1
    const pr = p.proto
    const fam = p.family
    while (i >= 0) {
      if (this.proto[i] === pr && this.fam[i] === fam) {
        if (this.ap[i] === p.sport && this.bp[i] === p.dport && this.a3[i] === p.s3 && this.b3[i] === p.d3 &&
          this.a2[i] === p.s2 && this.b2[i] === p.d2 && this.a1[i] === p.s1 && this.b1[i] === p.d1 && this.a0[i] === p.s0 && this.b0[i] === p.d0) {
          this.dir = 0
          return i
        }
        if (this.ap[i] === p.dport && this.bp[i] === p.sport && this.a3[i] === p.d3 && this.b3[i] === p.s3 &&
          this.a2[i] === p.d2 && this.b2[i] === p.s2 && this.a1[i] === p.d1 && this.b1[i] === p.s1 && this.a0[i] === p.d0 && this.b0[i] === p.s0) {
          this.dir = 1
          return i
        }
      }
      i = this.next[i]!
    }
    return -1
  }

  private create(p: DecodedPacket, h: number): number {
    let i = this.free.pop()
    if (i === undefined) {
      if (this.n === this.cap) this.grow(this.cap * 2)
      i = this.n++
    }
    this.fam[i] = p.family
    this.proto[i] = p.proto
    this.a0[i] = p.s0
    this.a1[i] = p.s1
    this.a2[i] = p.s2
    this.a3[i] = p.s3
    this.ap[i] = p.sport
    this.b0[i] = p.d0
    this.b1[i] = p.d1
    this.b2[i] = p.d2
    this.b3[i] = p.d3
    this.bp[i] = p.dport
    this.hash[i] = h
    this.serial[i] = ++this.serials
    this.cli[i] = -1
    this.flg[i] = 0
    this.synCount[i] = 0
    this.synAckCount[i] = 0
    this.estIdx[i] = 0
    this.finCountA[i] = 0
    this.finCountB[i] = 0
    const head = this.heads.get(h)
    this.next[i] = head === undefined ? -1 : head
    this.heads.set(h, i)
    this.dir = 0
    this.flows++
    this.liveCount++
    return i
  }

  private release(i: number): void {
    const h = this.hash[i]!
    let j = this.heads.get(h)!
    if (j === i) {
      const nx = this.next[i]!
      if (nx < 0) this.heads.delete(h)
      else this.heads.set(h, nx)
    } else {
      while (j >= 0 && this.next[j] !== i) j = this.next[j]!
      if (j >= 0) this.next[j] = this.next[i]!
    }
    if (this.flg[i]! & F_PENDING) {
      const k = this.endpointKey(i, this.cli[i] === 1 ? 1 : 0)
      if (this.pendingSyn.get(k) === i) this.pendingSyn.delete(k)
    }
    this.proto[i] = -1
    this.free.push(i)
    this.liveCount--
  }

  /** Feeds one decoded packet (index 1-based, time in seconds). */
  packet(p: DecodedPacket, index: number, time: number): void {
    if (time > this.lastTime) this.lastTime = time
    if (!p.l4) return
    const pr = p.proto
    if (pr === IPPROTO.TCP) this.tcp(p, index, time)
    else if (pr === IPPROTO.UDP) this.udp(p)
    else if ((pr === IPPROTO.ICMP || pr === IPPROTO.ICMPV6) && p.inner) this.icmp(p, index, time)
  }

  private flowHash(p: DecodedPacket): number {
    return ((hashWords(p.s0, p.s1, p.s2, p.s3, p.sport) + hashWords(p.d0, p.d1, p.d2, p.d3, p.dport)) ^ (p.proto * 0x3b9)) & 0x3fffffff
  }

  private udp(p: DecodedPacket): void {
    const h = this.flowHash(p)
    let i = this.lookup(p, h)
    if (i < 0) i = this.create(p, h)
    const f = this.flg[i]! | (this.dir === 0 ? F_SEEN_A : F_SEEN_B)
    this.flg[i] = (f & (F_SEEN_A | F_SEEN_B)) === (F_SEEN_A | F_SEEN_B) ? f | F_EST : f
    if (this.cli[i]! < 0) this.cli[i] = this.dir
  }

  private tcp(p: DecodedPacket, index: number, time: number): void {
    const h = this.flowHash(p)
    let i = this.lookup(p, h)
    const flags = p.flags
    if (i < 0) i = this.create(p, h)
    else if ((flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN && (this.synCount[i]! > 0
      ? p.seq !== this.isn[i] && ((this.flg[i]! & (F_EST | F_RST)) !== 0 || this.synAckCount[i]! > 0)
      : (this.flg[i]! & (F_EST | F_RST)) !== 0)) {
      // a new connection on a reused tuple: decide the old one first
      this.decide(i)
      this.release(i)
      i = this.create(p, h)
    }
    let dir = this.dir
    let f = this.flg[i]! | (dir === 0 ? F_SEEN_A : F_SEEN_B)

    if (flags & TCP_FLAG.SYN) {
      if (!(flags & TCP_FLAG.ACK)) {
        if (this.synCount[i] === 0) {
          this.cli[i] = dir
          this.isn[i] = p.seq
          this.synIdx[i] = index
          this.synTime[i] = time
          if (this.synAckCount[i] === 0) {
            this.pendingSyn.set(this.endpointKey(i, dir), i)
            f |= F_PENDING
          }
        }
        this.synCount[i]++
      } else {
        if (this.synCount[i] === 0) {
          // no SYN on this tuple (yet: captures merged from several interfaces are not strictly in time order)
          this.cli[i] = 1 - dir
          this.flg[i] = f
          if (this.synAckCount[i] === 0) this.checkBypass(p, i, index, time)
          else this.evidence(i, 'reply-bypasses-director', index, time, p)
          f = this.flg[i]!
        }
        if (this.synAckCount[i] === 0) {
          this.srvIsn[i] = p.seq
          this.synAckIdx[i] = index
          this.synAckTime[i] = time
          if (f & F_PENDING) {
            const k = this.endpointKey(i, this.cli[i]!)
            if (this.pendingSyn.get(k) === i) this.pendingSyn.delete(k)
            f &= ~F_PENDING
          }
        }
        this.synAckCount[i]++
      }
      this.flg[i] = f
      return
    }

    const cli = this.cli[i]!
    if (cli < 0) this.cli[i] = dir // met mid-stream: call the first sender the client
    const fromClient = this.cli[i] === dir

    if (flags & TCP_FLAG.RST) {
      if (!(f & F_RST)) {
        f |= F_RST
        if (!(f & F_EST)) {
          if (this.synCount[i]! > 0) f |= F_ANSWERED
        } else if (!fromClient && !(f & F_DATA_SRV) && this.finCountA[i] === 0 && this.finCountB[i] === 0 &&
          this.estIdx[i]! > 0 && time - this.estTime[i]! <= RST_WINDOW_SECONDS) {
          this.flg[i] = f
          this.rstAfterHandshake(p, i, index, time)
          f = this.flg[i]!
        }
      }
      this.flg[i] = f
      this.evidence(i, 'reply-bypasses-director', index, time, p)
      return
    }

    if (flags & TCP_FLAG.ACK) {
      if (fromClient) {
        f |= F_CLIENT_ACKED
        if (!(f & F_EST) && this.synAckCount[i]! > 0 && p.ack === ((this.srvIsn[i]! + 1) | 0)) {
          f |= F_EST
          this.estIdx[i] = index
          this.estTime[i] = time
        }
      }
      if (!(f & F_EST) && this.synCount[i] === 0 && this.synAckCount[i] === 0 && (f & (F_SEEN_A | F_SEEN_B)) === (F_SEEN_A | F_SEEN_B)) {
        f |= F_EST // both directions of a flow met mid-stream
      }
      // does this acknowledge the other side's FIN?
      if (dir === 0) {
        if (this.finCountB[i]! > 0 && ((p.ack - this.finSeqB[i]!) | 0) > 0) f |= F_FIN_ACKED_B
      } else if (this.finCountA[i]! > 0 && ((p.ack - this.finSeqA[i]!) | 0) > 0) f |= F_FIN_ACKED_A
    }
    if (p.payloadLen > 0 && f & F_EST) f |= fromClient ? F_DATA_CLI : F_DATA_SRV

    if (flags & TCP_FLAG.FIN) {
      // the FIN's own sequence number is seq + payload length
      const fseq = (p.seq + p.payloadLen) | 0
      if (dir === 0) {
        if (this.finCountA[i] === 0) {
          this.finSeqA[i] = fseq
          this.finIdxA[i] = index
          this.finTimeA[i] = time
        }
        if (this.finSeqA[i] === fseq) {
          this.finCountA[i]++
          this.finLastIdxA[i] = index
          this.finLastTimeA[i] = time
        }
      } else {
        if (this.finCountB[i] === 0) {
          this.finSeqB[i] = fseq
          this.finIdxB[i] = index
          this.finTimeB[i] = time
        }
        if (this.finSeqB[i] === fseq) {
          this.finCountB[i]++
          this.finLastIdxB[i] = index
          this.finLastTimeB[i] = time
        }
      }
    }
    this.flg[i] = f
    if ((f & (F_FIN_ACKED_A | F_FIN_ACKED_B)) === (F_FIN_ACKED_A | F_FIN_ACKED_B)) {
      // closed cleanly: nothing more can go wrong with it
      this.decide(i)
      this.release(i)
    }
  }

  private endpointKey(i: number, side: number): string {
    return side === 0
      ? `${this.fam[i]}|${this.a0[i]}|${this.a1[i]}|${this.a2[i]}|${this.a3[i]}|${this.ap[i]}`
      : `${this.fam[i]}|${this.b0[i]}|${this.b1[i]}|${this.b2[i]}|${this.b3[i]}|${this.bp[i]}`
  }

  /**
   * A SYN/ACK on a flow whose SYN was never seen: did the client at its destination send a SYN to someone
   * else with the same port (a VIP), acknowledged by this SYN/ACK? Then the reply skipped the un-NAT.
   */
  private checkBypass(p: DecodedPacket, leak: number, index: number, time: number): void {
    const clientSide = this.cli[leak]!
    const syn = this.pendingSyn.get(this.endpointKey(leak, clientSide))
    if (syn === undefined || this.synAckCount[syn]! > 0) return
    const acked = p.ack === ((this.isn[syn]! + 1) | 0)
    const server = this.endpoint(syn, 1 - this.cli[syn]!)
    const vip = this.vipOf(server)
    if (!acked && !vip) return
    this.flg[syn] = this.flg[syn]! | F_EXPLAINED
    this.flg[leak] = this.flg[leak]! | F_EXPLAINED
    const key = `${this.serial[syn]}:reply-bypasses-director`
    let b = this.builders.get(key)
    const replier = formatEndpoint(this.endpoint(leak, 1 - clientSide))
    if (!b) {
      b = this.open(key, 'reply-bypasses-director', syn, this.synIdx[syn]!, [
        {n: this.synIdx[syn]!, time: round6(this.synTime[syn]!), what: `SYN ${this.arrow(syn)}`},
      ])
      b.from = replier
      b.detail = acked ? `acknowledging the client's SYN (ack ${(this.isn[syn]! + 1) >>> 0})` : 'with the client port of a connection to the VIP'
    }
    // route later packets of the leaked flow (the client's RST) into this symptom
    this.builders.set(`${this.serial[leak]}:reply-bypasses-director`, b)
    this.addPacket(b, index, time, `SYN/ACK ${describe(p)}`)
  }

  private evidence(i: number, kind: SymptomKind, index: number, time: number, p: DecodedPacket): void {
    if (!(this.flg[i]! & F_EXPLAINED)) return
    const b = this.builders.get(`${this.serial[i]}:${kind}`)
    if (b) this.addPacket(b, index, time, `${flagNames(p.flags)} ${describe(p)}`)
  }

  private rstAfterHandshake(p: DecodedPacket, i: number, index: number, time: number): void {
    const b = this.open(`${this.serial[i]}:rst-after-handshake`, 'rst-after-handshake', i, this.synIdx[i]! || index, [])
    if (this.synIdx[i]) b.packets.push({n: this.synIdx[i]!, time: round6(this.synTime[i]!), what: `SYN ${this.arrow(i)}`})
    if (this.synAckIdx[i]) b.packets.push({n: this.synAckIdx[i]!, time: round6(this.synAckTime[i]!), what: `SYN/ACK ${this.arrow(i, true)}`})
    b.packets.push({n: this.estIdx[i]!, time: round6(this.estTime[i]!), what: 'ACK (handshake complete)'})
    this.addPacket(b, index, time, `${flagNames(p.flags)} ${describe(p)}`)
    const ms = Math.round((time - this.estTime[i]!) * 1000)
    b.detail = `${ms} ms after the handshake, before the server sent any data${this.flg[i]! & F_DATA_CLI ? ' (the client had sent its request)' : ''}`
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
    const f = this.flg[i]!
    const established = (f & F_EST) !== 0
    if (!established && (this.synCount[i] === 0 || this.synAckCount[i]! > 0)) return
    const kind: SymptomKind = established ? 'icmp-unreachable-established' : 'icmp-unreachable-new'
    if (!established) this.flg[i] = f | F_ANSWERED | F_EXPLAINED
    const key = `${this.serial[i]}:${kind}`
    let b = this.builders.get(key)
    if (!b) {
      const first: SymptomPacket[] = []
      if (this.synIdx[i]) first.push({n: this.synIdx[i]!, time: round6(this.synTime[i]!), what: `SYN ${this.arrow(i)}`})
      if (established && this.estIdx[i]) first.push({n: this.estIdx[i]!, time: round6(this.estTime[i]!), what: 'ACK (handshake complete)'})
      b = this.open(key, kind, i, this.synIdx[i]! || index, first)
      b.icmp = name
      b.from = formatIp(words(p.family, p.s0, p.s1, p.s2, p.s3))
      b.detail = ''
    }
    this.addPacket(b, index, time, `ICMP${v6 ? 'v6' : ''} ${name} from ${b.from} quoting ${describeQuoted(p)}`)
  }

  private open(key: string, kind: SymptomKind, i: number, first: number, packets: SymptomPacket[]): Builder {
    const client = this.cli[i]! === 1 ? 1 : 0
    const server = this.endpoint(i, 1 - client)
    const vip = this.vipOf(server)
    const b: Builder = {
      kind,
      flow: {proto: this.proto[i] === IPPROTO.UDP ? 'udp' : 'tcp', client: formatEndpoint(this.endpoint(i, client)), server: formatEndpoint(server)},
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
    if (this.proto[i] !== IPPROTO.TCP) return
    const f = this.flg[i]!
    if (f & F_EXPLAINED) return
    const end = this.lastTime
    if (this.synCount[i]! > 0 && this.synAckCount[i] === 0 && !(f & (F_CLIENT_ACKED | F_ANSWERED | F_EST))) {
      if (this.synCount[i]! >= 2 || end - this.synTime[i]! >= SYN_WAIT_SECONDS) {
        const b = this.open(`${this.serial[i]}:syn-unanswered`, 'syn-unanswered', i, this.synIdx[i]!, [
          {n: this.synIdx[i]!, time: round6(this.synTime[i]!), what: `SYN ${this.arrow(i)}`},
        ])
        b.count = this.synCount[i]!
        b.detail = `sent ${this.synCount[i]} time${this.synCount[i] === 1 ? '' : 's'}, the capture went on ${(end - this.synTime[i]!).toFixed(1)} s after the first`
      }
    }
    if (this.synAckCount[i]! > 0 && !(f & (F_EST | F_RST | F_CLIENT_ACKED))) {
      if (this.synAckCount[i]! >= 2 || end - this.synAckTime[i]! >= SYN_WAIT_SECONDS) {
        const first: SymptomPacket[] = []
        if (this.synIdx[i]) first.push({n: this.synIdx[i]!, time: round6(this.synTime[i]!), what: `SYN ${this.arrow(i)}`})
        first.push({n: this.synAckIdx[i]!, time: round6(this.synAckTime[i]!), what: `SYN/ACK ${this.arrow(i, true)}`})
        const b = this.open(`${this.serial[i]}:synack-unacked`, 'synack-unacked', i, this.synIdx[i]! || this.synAckIdx[i]!, first)
        b.count = this.synAckCount[i]!
        b.detail = `the server sent its SYN/ACK ${this.synAckCount[i]} time${this.synAckCount[i] === 1 ? '' : 's'}`
      }
    }
    for (const side of [0, 1]) {
      const count = side === 0 ? this.finCountA[i]! : this.finCountB[i]!
      const acked = f & (side === 0 ? F_FIN_ACKED_A : F_FIN_ACKED_B)
      if (count - 1 >= FIN_RETRANSMISSIONS && !acked) {
        const who = side === this.cli[i] ? 'client' : 'server'
        const b = this.open(`${this.serial[i]}:fin-unanswered:${side}`, 'fin-unanswered', i, side === 0 ? this.finIdxA[i]! : this.finIdxB[i]!, [
          {n: side === 0 ? this.finIdxA[i]! : this.finIdxB[i]!, time: round6(side === 0 ? this.finTimeA[i]! : this.finTimeB[i]!), what: `FIN from the ${who} ${formatEndpoint(this.endpoint(i, side))}`},
          {n: side === 0 ? this.finLastIdxA[i]! : this.finLastIdxB[i]!, time: round6(side === 0 ? this.finLastTimeA[i]! : this.finLastTimeB[i]!), what: `FIN retransmission ${count - 1}`},
        ])
        b.count = count
        b.detail = `the ${who}'s FIN was sent ${count} times and never acknowledged`
      }
    }
  }

  /** Decides the connections still open and returns every symptom, in capture order. */
  finish(): Symptom[] {
    for (let i = 0; i < this.n; i++) if (this.proto[i] !== -1) this.decide(i)
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
    const fam = this.fam[i]!
    return side === 0
      ? {ip: words(fam, this.a0[i]!, this.a1[i]!, this.a2[i]!, this.a3[i]!), port: this.ap[i]!}
      : {ip: words(fam, this.b0[i]!, this.b1[i]!, this.b2[i]!, this.b3[i]!), port: this.bp[i]!}
  }

  /** `client > server`, or `server > client` when `back` */
  private arrow(i: number, back = false): string {
    const c = this.cli[i]! === 1 ? 1 : 0
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
