// Connection tracking as net/netfilter/nf_conntrack_core.c (nf_conntrack_in, resolve_normal_ct,
// __nf_conntrack_confirm) and nf_conntrack_proto_tcp.c (tcp_new, nf_conntrack_tcp_packet) do it, for one
// host: original/reply tuples, the TCP state table, loose pickup, confirmation at the last hook, timeouts
// from the sysctls. Time is passed in (seconds); nothing is global. TCP window tracking is not modelled:
// the replayed segments are always in window.
import type {CtState} from '../model/iptables.js'
import {PROTO, invertTuple, tupleKey, tupleOf, type CtView, type Packet, type TcpFlags, type Tuple} from './packet.js'

export type TcpCtState =
  | 'NONE' | 'SYN_SENT' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'CLOSE_WAIT' | 'LAST_ACK' | 'TIME_WAIT' | 'CLOSE' | 'SYN_SENT2'

/** get_conntrack_index: which row of the table a segment uses */
export type TcpIndex = 'syn' | 'synack' | 'fin' | 'ack' | 'rst' | 'none'

/** A cell of the table: the next state, sIV (invalid) or sIG (ignored). */
export type TcpNext = TcpCtState | 'IV' | 'IG'

const COLS: readonly TcpCtState[] = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2']

const sNO = 'NONE', sSS = 'SYN_SENT', sSR = 'SYN_RECV', sES = 'ESTABLISHED', sFW = 'FIN_WAIT', sCW = 'CLOSE_WAIT'
const sLA = 'LAST_ACK', sTW = 'TIME_WAIT', sCL = 'CLOSE', sS2 = 'SYN_SENT2', sIV = 'IV', sIG = 'IG'
void sNO

/**
 * tcp_conntracks[2][6][TCP_CONNTRACK_MAX] of net/netfilter/nf_conntrack_proto_tcp.c (current kernels),
 * row by row; columns sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2.
 */
export const TCP_CONNTRACKS: Readonly<Record<'ORIGINAL' | 'REPLY', Readonly<Record<TcpIndex, readonly TcpNext[]>>>> = {
  ORIGINAL: {
    /*           sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 */
    syn: /*   */ [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2],
    synack: /**/ [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR],
    fin: /*   */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    ack: /*   */ [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV],
    rst: /*   */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    none: /*  */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  },
  REPLY: {
    /*           sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 */
    syn: /*   */ [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2],
    synack: /**/ [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR],
    fin: /*   */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    ack: /*   */ [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG],
    rst: /*   */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    none: /*  */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  },
}

export function tcpIndex(f: TcpFlags | undefined): TcpIndex {
  if (!f) return 'none'
  if (f.rst) return 'rst'
  if (f.syn) return f.ack ? 'synack' : 'syn'
  if (f.fin) return 'fin'
  if (f.ack) return 'ack'
  return 'none'
}

export function tcpTransition(dir: 'ORIGINAL' | 'REPLY', index: TcpIndex, old: TcpCtState): TcpNext {
  return TCP_CONNTRACKS[dir][index][COLS.indexOf(old)]!
}

/** The settings conntrack reads from sysctl (net.netfilter.*), with the kernel defaults. */
export interface CtSettings {
  /** nf_conntrack_tcp_loose: pick up connections from a mid-stream ACK */
  readonly tcpLoose: boolean
  /** seconds per TCP state (nf_conntrack_tcp_timeout_*) */
  readonly tcpTimeouts: Readonly<Record<TcpCtState | 'UNACK' | 'RETRANS', number>>
  readonly udpTimeout: number
  readonly udpStreamTimeout: number
  readonly genericTimeout: number
  readonly icmpTimeout: number
}

/** tcp_timeouts[] of nf_conntrack_proto_tcp.c and the udp/generic/icmp defaults. */
export const DEFAULT_CT_SETTINGS: CtSettings = {
  tcpLoose: true,
  tcpTimeouts: {
    NONE: 0, SYN_SENT: 120, SYN_RECV: 60, ESTABLISHED: 432000, FIN_WAIT: 120, CLOSE_WAIT: 60, LAST_ACK: 30,
    TIME_WAIT: 120, CLOSE: 10, SYN_SENT2: 120, RETRANS: 300, UNACK: 300,
  },
  udpTimeout: 30,
  udpStreamTimeout: 120,
  genericTimeout: 600,
  icmpTimeout: 30,
}

const TIMEOUT_SYSCTL: Readonly<Record<string, TcpCtState | 'UNACK' | 'RETRANS'>> = {
  syn_sent: 'SYN_SENT', syn_recv: 'SYN_RECV', established: 'ESTABLISHED', fin_wait: 'FIN_WAIT', close_wait: 'CLOSE_WAIT',
  last_ack: 'LAST_ACK', time_wait: 'TIME_WAIT', close: 'CLOSE', max_retrans: 'RETRANS', unacknowledged: 'UNACK',
}

/** Reads the net.netfilter.nf_conntrack_* sysctls that conntrack uses; absent keys keep the defaults. */
export function ctSettingsFrom(get: (key: string) => string | undefined): CtSettings {
  const num = (k: string, d: number) => {
    const v = get(k)
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : d
  }
  const tcpTimeouts = {...DEFAULT_CT_SETTINGS.tcpTimeouts}
  for (const [suffix, state] of Object.entries(TIMEOUT_SYSCTL)) {
    if (suffix === 'max_retrans') continue // a count, not a timeout
    tcpTimeouts[state] = num(`net.netfilter.nf_conntrack_tcp_timeout_${suffix}`, tcpTimeouts[state])
  }
  return {
    tcpLoose: num('net.netfilter.nf_conntrack_tcp_loose', 1) !== 0,
    tcpTimeouts,
    udpTimeout: num('net.netfilter.nf_conntrack_udp_timeout', DEFAULT_CT_SETTINGS.udpTimeout),
    udpStreamTimeout: num('net.netfilter.nf_conntrack_udp_timeout_stream', DEFAULT_CT_SETTINGS.udpStreamTimeout),
    genericTimeout: num('net.netfilter.nf_conntrack_generic_timeout', DEFAULT_CT_SETTINGS.genericTimeout),
    icmpTimeout: num('net.netfilter.nf_conntrack_icmp_timeout', DEFAULT_CT_SETTINGS.icmpTimeout),
  }
}

/** One conntrack entry (struct nf_conn). Mutable: conntrack and NAT update it as packets pass. */
export interface CtEntry {
  readonly id: number
  readonly orig: Tuple
  /** the reply tuple; NAT rewrites it when it binds (nf_nat_setup_info) */
  reply: Tuple
  tcp?: TcpCtState
  /** CONFIRMED SEEN_REPLY ASSURED SRC_NAT DST_NAT SRC_NAT_DONE DST_NAT_DONE */
  readonly status: Set<string>
  mark: number
  /** seconds, absolute */
  expires: number
  /** a loose pickup (tcp_new from a mid-stream segment) */
  pickedUp?: boolean
}

/** What nf_conntrack_in attached to the packet. */
export interface CtAttach {
  /** undefined: no entry (INVALID, or UNTRACKED) */
  readonly entry?: CtEntry
  readonly dir: 'ORIGINAL' | 'REPLY'
  /** the ctstate the matches see */
  readonly state: CtState
  /** TCP state before and after this packet */
  readonly tcpBefore?: TcpCtState
  readonly tcpAfter?: TcpCtState
  /** plain words for INVALID */
  readonly reason?: string
}

export function ctView(a: CtAttach | undefined): CtView | undefined {
  if (!a) return undefined
  if (!a.entry) return {state: a.state, dir: a.dir, status: new Set(), mark: 0}
  const status = new Set<string>()
  for (const s of a.entry.status) {
    if (s === 'SRC_NAT') status.add('SNAT')
    else if (s === 'DST_NAT') status.add('DNAT')
    else status.add(s)
  }
  if (!a.entry.status.has('SEEN_REPLY') && a.dir === 'ORIGINAL') status.add('UNREPLIED')
  return {state: a.state, dir: a.dir, status, orig: a.entry.orig, reply: a.entry.reply, mark: a.entry.mark}
}

/** One host's conntrack table: confirmed entries hashed by both tuples. */
export class ConntrackTable {
  private readonly byTuple = new Map<string, CtEntry>()
  private nextId = 1

  constructor(readonly settings: CtSettings = DEFAULT_CT_SETTINGS) {}

  /** The confirmed entries that have not expired at `now`. */
  entries(now: number): CtEntry[] {
    const seen = new Set<CtEntry>()
    for (const e of this.byTuple.values()) if (e.expires > now) seen.add(e)
    return [...seen]
  }

  lookup(t: Tuple, now: number): {entry: CtEntry; dir: 'ORIGINAL' | 'REPLY'} | undefined {
    const e = this.byTuple.get(tupleKey(t))
    if (!e) return undefined
    if (e.expires <= now) {
      this.remove(e)
      return undefined
    }
    return {entry: e, dir: tupleKey(e.orig) === tupleKey(t) ? 'ORIGINAL' : 'REPLY'}
  }

  remove(e: CtEntry): void {
    if (this.byTuple.get(tupleKey(e.orig)) === e) this.byTuple.delete(tupleKey(e.orig))
    if (this.byTuple.get(tupleKey(e.reply)) === e) this.byTuple.delete(tupleKey(e.reply))
  }

  /** __nf_conntrack_confirm: an unconfirmed entry enters the table (at the last hook the packet passes). */
  confirm(e: CtEntry): void {
    if (e.status.has('CONFIRMED')) return
    e.status.add('CONFIRMED')
    this.byTuple.set(tupleKey(e.orig), e)
    this.byTuple.set(tupleKey(e.reply), e)
  }

  /**
   * nf_conntrack_in for one packet at PREROUTING or OUTPUT: finds or creates (unconfirmed) the entry, runs
   * the protocol's state machine, and says what the matches will see.
   */
  packetIn(p: Packet, now: number): CtAttach {
    const tuple = tupleOf(p)
    const found = this.lookup(tuple, now)
    if (p.proto === PROTO.tcp) return this.tcpIn(p, tuple, found, now)
    if (found) {
      const {entry, dir} = found
      if (dir === 'REPLY') entry.status.add('SEEN_REPLY')
      const stream = entry.status.has('SEEN_REPLY')
      if (stream && dir === 'ORIGINAL') entry.status.add('ASSURED')
      entry.expires = now + (p.proto === PROTO.udp ? (stream ? this.settings.udpStreamTimeout : this.settings.udpTimeout) : this.settings.genericTimeout)
      return {entry, dir, state: dir === 'REPLY' || stream ? 'ESTABLISHED' : 'NEW'}
    }
    const entry = this.create(tuple, now + (p.proto === PROTO.udp ? this.settings.udpTimeout : this.settings.genericTimeout))
    return {entry, dir: 'ORIGINAL', state: 'NEW'}
  }

  private create(t: Tuple, expires: number): CtEntry {
    return {id: this.nextId++, orig: t, reply: invertTuple(t), status: new Set(), mark: 0, expires}
  }

  private tcpIn(p: Packet, tuple: Tuple, found: {entry: CtEntry; dir: 'ORIGINAL' | 'REPLY'} | undefined, now: number): CtAttach {
    const index = tcpIndex(p.flags)
    let entry: CtEntry
    let dir: 'ORIGINAL' | 'REPLY'
    if (!found) {
      // tcp_new: the first packet must be able to start a connection from sNO
      const first = tcpTransition('ORIGINAL', index, 'NONE')
      if (first === 'IV') {
        return {dir: 'ORIGINAL', state: 'INVALID', tcpBefore: 'NONE', reason: `${indexWords(index)} cannot start a connection (tcp_conntracks: sNO -> sIV), so conntrack has no entry for it`}
      }
      if (first !== 'SYN_SENT' && !this.settings.tcpLoose) {
        return {dir: 'ORIGINAL', state: 'INVALID', tcpBefore: 'NONE', reason: `a mid-stream ${indexWords(index).replace(/^an? /, '')} with no conntrack entry, and nf_conntrack_tcp_loose=0 forbids picking it up`}
      }
      entry = this.create(tuple, now)
      entry.tcp = 'NONE'
      if (first !== 'SYN_SENT') entry.pickedUp = true
      dir = 'ORIGINAL'
    } else {
      entry = found.entry
      dir = found.dir
    }
    const old = entry.tcp ?? 'NONE'
    let next = tcpTransition(dir, index, old)
    // A SYN that reopens a closed connection (TIME_WAIT/CLOSE -> SYN_SENT): the old entry is killed and the
    // packet looked up again, which creates a new one (nf_conntrack_tcp_packet, -NF_REPEAT).
    if (found && next === 'SYN_SENT' && (old === 'TIME_WAIT' || old === 'CLOSE')) {
      this.remove(entry)
      return this.tcpIn(p, tuple, undefined, now)
    }
    if (next === 'IV') {
      return {
        entry: undefined,
        dir,
        state: 'INVALID',
        tcpBefore: old,
        reason: `${indexWords(index)} in the ${dir === 'ORIGINAL' ? 'original' : 'reply'} direction of a connection in state ${old} is invalid (tcp_conntracks: ${old} -> sIV)`,
      }
    }
    if (next === 'IG') {
      // ignored: accepted, the state stays (the endpoints may know better)
      next = old
    }
    // simultaneous open: an ACK from the reply side in SYN_RECV completes it
    entry.tcp = next
    if (dir === 'REPLY') entry.status.add('SEEN_REPLY')
    if (entry.status.has('SEEN_REPLY') && (old === 'SYN_RECV' || old === 'ESTABLISHED') && next === 'ESTABLISHED') entry.status.add('ASSURED')
    let timeout = this.settings.tcpTimeouts[next]
    if (index === 'rst') timeout = this.settings.tcpTimeouts.CLOSE
    if (!entry.status.has('SEEN_REPLY') && next === 'ESTABLISHED') timeout = Math.min(timeout, this.settings.tcpTimeouts.UNACK)
    entry.expires = now + timeout
    if (index === 'rst' && !entry.status.has('SEEN_REPLY')) this.remove(entry)
    const state: CtState = dir === 'REPLY' || entry.status.has('SEEN_REPLY') ? 'ESTABLISHED' : 'NEW'
    return {entry, dir, state, tcpBefore: old, tcpAfter: next}
  }
}

function indexWords(i: TcpIndex): string {
  return {syn: 'a SYN', synack: 'a SYN/ACK', fin: 'a FIN', ack: 'an ACK (no SYN/FIN/RST)', rst: 'an RST', none: 'a segment without flags'}[i]
}
