// IPVS as net/netfilter/ipvs/ip_vs_core.c runs it on one director: service lookup (ip_vs_service_find:
// fwmark first, then protocol/VIP/port, then port 0), scheduling (ip_vs_rr.c, ip_vs_wrr.c, ip_vs_lc.c,
// ip_vs_wlc.c, ip_vs_sh.c; deterministic), persistence templates (ip_vs_sched_persist), connection entries
// with their own state, and the forwarding methods of ip_vs_xmit.c (masq rewrites the destination, route
// keeps the packet and sends it to the realserver's MAC, tunnel wraps it in IPIP to the realserver).
import {formatIp, makePrefix, prefixContains, type IpAddr} from '../model/ip.js'
import type {IpvsConn, IpvsDest, IpvsService} from '../model/ipvs.js'
import {PROTO, type Packet, type TcpFlags} from './packet.js'

export interface IpvsSettings {
  /** net.ipv4.vs.conntrack: keep netfilter conntrack entries for IPVS connections */
  readonly conntrack: boolean
  /** net.ipv4.vs.sloppy_tcp: create connections from any TCP segment, not only SYN */
  readonly sloppyTcp: boolean
  /** ipvsadm --set tcp tcpfin udp (seconds); not in sysctl, the defaults of ip_vs_proto_tcp.c/udp.c */
  readonly tcpTimeout: number
  readonly tcpFinTimeout: number
  readonly udpTimeout: number
  /**
   * net.ipv4.vs.expire_quiescent_template: a persistence template whose destination has weight 0 is dropped
   * when a new connection looks it up (ip_vs_check_template), instead of sending the client there again
   */
  readonly expireQuiescentTemplate?: boolean
}

export const DEFAULT_IPVS_SETTINGS: IpvsSettings = {conntrack: false, sloppyTcp: false, tcpTimeout: 900, tcpFinTimeout: 120, udpTimeout: 300, expireQuiescentTemplate: false}

export interface IpvsConnection {
  readonly service: IpvsService
  readonly dest: IpvsDest
  readonly proto: number
  readonly caddr: IpAddr
  readonly cport: number
  readonly vaddr: IpAddr
  readonly vport: number
  /** where the request goes: the realserver address and port */
  readonly daddr: IpAddr
  readonly dport: number
  state: string
  expires: number
  /**
   * IP_VS_CONN_F_NOOUTPUT: set for DR/TUN/LOCAL destinations (__ip_vs_update_dest), cleared by the first
   * packet IPVS sees in the OUTPUT direction; while set, client packets use the INPUT-ONLY rows of tcp_states
   */
  noOutput: boolean
}

export type IpvsInResult =
  /** not for IPVS (no service, or a TCP segment that may not create a connection): NF_ACCEPT */
  | {readonly kind: 'pass'; readonly why: string}
  | {readonly kind: 'drop'; readonly reason: string}
  | {readonly kind: 'forward'; readonly conn: IpvsConnection; readonly isNew: boolean; readonly method: 'masq' | 'route' | 'tunnel' | 'local'; readonly packet: Packet; readonly assumption?: string}

const methodName = {masq: 'MASQ', route: 'GATE', tunnel: 'IPIP', local: 'LOCAL', bypass: 'BYPASS', unknown: '?'} as const

export function ipvsMethodWord(m: IpvsConnection['dest']['method']): string {
  return methodName[m]
}

function connKey(proto: number, caddr: IpAddr, cport: number, vaddr: IpAddr, vport: number): string {
  return `${proto}|${caddr.value}|${cport}|${vaddr.value}|${vport}`
}
function outKey(proto: number, daddr: IpAddr, dport: number, caddr: IpAddr, cport: number): string {
  return `${proto}|${daddr.value}|${dport}|${caddr.value}|${cport}`
}

/**
 * The weight scheduling uses: `ipvsadm -Ln --stats`/`--rate`/`--thresholds` do not print weights (NaN in the
 * model); such a destination is taken as weight 1 (ipvsadm's default) and the replay says so.
 */
function weightOf(d: IpvsDest): number {
  return Number.isNaN(d.weight) ? 1 : d.weight
}

const UNKNOWN_WEIGHTS = 'the listing does not show the weights (ipvsadm -Ln --stats, --rate or --thresholds): each destination is assumed to have weight 1'

/**
 * How a destination forwards: the listing's method, or for a listing without one (`unknown`), Masq
 * when the destination's port differs from the service's (DR and TUN cannot change the port) and Route
 * otherwise; the replay states the assumption.
 */
export function effectiveMethod(svc: IpvsService, d: IpvsDest): Exclude<IpvsDest['method'], 'unknown'> {
  if (d.method !== 'unknown') return d.method
  return svc.port !== undefined && svc.port !== 0 && d.port !== 0 && d.port !== svc.port ? 'masq' : 'route'
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

const WRR_ORDER = 'wrr: assumed the destinations were added (ipvsadm -a) in the reverse of the listing\'s order with their current weights: where wrr starts depends on that order, which ipvsadm (sorting its listing) does not show'

/**
 * The wrr mark after the service was created empty (ip_vs_wrr_init_svc: cw = mw = 0) and its destinations
 * added one by one (ip_vs_wrr_dest_changed), the last in the listing first: `weights` in the listing's order.
 * The first pick is then the first destination with weight >= cw (the lab's 6.1: weights 1/3 added 3 first
 * pick the weight-1 one first).
 */
function wrrInit(weights: readonly number[]): {i: number; cw: number; mw: number; di: number} {
  let cw = 0
  let mw = 0
  let di = 1
  for (let k = weights.length - 1; k >= 0; k--) {
    const list = weights.slice(k)
    di = list.filter((w) => w > 0).reduce(gcd, 0) || 1
    mw = Math.max(0, ...list) - (di - 1)
    if (cw > mw || !cw) cw = mw
    else if (di > 1) cw = Math.floor(cw / di) * di + 1
  }
  return {i: -1, cw, mw, di}
}

/**
 * The port a new connection forwards to. ip_vs_schedule: the destination's port, or the packet's when the
 * destination has none (0). ip_vs_sched_persist (a persistent service): the packet's port, and the destination's
 * only when the packet's port is the service's own — so a persistent fwmark service (port 0) or port-zero service
 * never translates ports: its LVS-NAT realservers are sent the client's destination port, whatever port
 * `ipvsadm -a -r RIP:PORT` gave them (the IPVS lab, random seed 17 #4 with check's fixes: fwmark 1 -p 60,
 * 10.1.0.11:8080 -m, a connection to VIP:80 went to 10.1.0.11:80 and was reset).
 */
export function connDport(svc: IpvsService, dest: IpvsDest, pdport: number): number {
  if (svc.persistence === undefined) return dest.port !== 0 ? dest.port : pdport
  const svcPort = svc.proto === 'fwmark' ? 0 : (svc.port ?? 0)
  return pdport === svcPort && dest.port !== 0 ? dest.port : pdport
}

/** hash_32 of include/linux/hash.h: (val * GOLDEN_RATIO_32) >> (32 - bits) in 32-bit arithmetic. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, 0x61c88647) >>> (32 - bits)
}

/** A persistence template: from this replay, or (`listed`) one the snapshot's ipvsadm -Lnc shows. */
interface Template {
  readonly dest: IpvsDest
  expires: number
  readonly listed?: IpvsConn
}

/**
 * The key of a persistence template (ip_vs_sched_persist): the client's network (-M, default a /32 or /128)
 * and, for an fwmark service, the mark alone (<IPPROTO_IP, caddr, 0, fwmark, 0>: every VIP the mark covers
 * shares it); else protocol, VIP and port, where a port-zero service and the FTP port 21 use port 0.
 */
function templateKey(svc: IpvsService, caddr: IpAddr, vaddr: IpAddr): string {
  const len = svc.persistenceNetmask ?? (caddr.family === 4 ? 32 : 128)
  const net = `${makePrefix(caddr, len).value}/${len}`
  if (svc.proto === 'fwmark') return `${net}|fwmark ${svc.fwmark}`
  const port = svc.port === 21 ? 0 : (svc.port ?? 0)
  return `${net}|${svc.proto}|${formatIp(svc.vip ?? vaddr)}|${port}`
}

/** One director's IPVS state: connection table, persistence templates and scheduler positions. */
export class IpvsState {
  private readonly conns = new Map<string, IpvsConnection>()
  private readonly replies = new Map<string, IpvsConnection>()
  private readonly templates = new Map<string, Template>()
  private readonly rr = new Map<IpvsService, number>()
  private readonly wrr = new Map<IpvsService, {i: number; cw: number; mw: number; di: number}>()
  /** connections scheduled by this replay, per destination (added to the snapshot's counters for lc/wlc) */
  private readonly added = new Map<IpvsDest, number>()

  /**
   * `listed`: the snapshot's connection table (ipvsadm -Lnc); its persistence templates (client port 0) are
   * what the kernel looks up before scheduling a persistent service's new connection, so they are kept.
   */
  constructor(
    readonly services: readonly IpvsService[],
    readonly settings: IpvsSettings = DEFAULT_IPVS_SETTINGS,
    listed: readonly IpvsConn[] = [],
  ) {
    for (const c of listed) this.keepListedTemplate(c)
  }

  /**
   * A template line of ipvsadm -Lnc (`TCP 00:52 NONE 198.51.100.0:0 10.0.0.100:80 10.0.0.11:80`; fwmark:
   * `IP ... 0.0.0.1:0 ... RIP:0`) for a persistent service of this director whose destination is still in
   * it (a removed destination is not available: ip_vs_check_template drops the template). A template the
   * kernel already invalidated has virtual port 65535 and matches no service. It is taken as valid for the
   * whole replay (it has `expire` seconds left, and a template still controlling connections is renewed).
   */
  private keepListedTemplate(c: IpvsConn): void {
    if (c.client.port !== 0) return
    const svc = this.services.find((s) => {
      if (s.persistence === undefined) return false
      if (c.fwmark !== undefined) return s.proto === 'fwmark' && s.fwmark === c.fwmark && s.family === c.client.ip.family
      if (s.proto !== c.proto || !s.vip || s.vip.family !== c.virtual.ip.family || s.vip.value !== c.virtual.ip.value) return false
      const port = s.port === 21 ? 0 : (s.port ?? 0)
      return port === c.virtual.port
    })
    if (!svc) return
    const dest = svc.dests.find((d) => d.ip.family === c.dest.ip.family && d.ip.value === c.dest.ip.value && (c.dest.port === 0 || d.port === c.dest.port))
    if (!dest) return
    const key = templateKey(svc, c.client.ip, c.virtual.ip)
    if (!this.templates.has(key)) this.templates.set(key, {dest, expires: Number.POSITIVE_INFINITY, listed: c})
  }

  /** ip_vs_service_find: fwmark services when the packet has a mark, then proto/VIP/port, then port 0. */
  findService(p: Packet): IpvsService | undefined {
    const proto = p.proto === PROTO.tcp ? 'tcp' : p.proto === PROTO.udp ? 'udp' : p.proto === PROTO.sctp ? 'sctp' : undefined
    if (p.mark) {
      const s = this.services.find((s) => s.proto === 'fwmark' && s.fwmark === p.mark && s.family === p.family)
      if (s) return s
    }
    if (!proto) return undefined
    const eq = (s: IpvsService) => s.proto === proto && s.vip !== undefined && s.vip.family === p.dst.family && s.vip.value === p.dst.value
    return this.services.find((s) => eq(s) && s.port === p.dport) ?? this.services.find((s) => eq(s) && s.port === 0)
  }

  /** The connections that have not expired at `now` (what ipvsadm -Lnc would list, templates aside). */
  connections(now: number): IpvsConnection[] {
    return [...this.conns.values()].filter((c) => c.expires > now)
  }

  /** Looks up the connection of a request (client -> VIP). */
  inLookup(p: Packet, now: number): IpvsConnection | undefined {
    const c = this.conns.get(connKey(p.proto, p.src, p.sport ?? 0, p.dst, p.dport ?? 0))
    return c && c.expires > now ? c : undefined
  }

  /** Looks up the connection of a reply (realserver -> client; for DR/TUN VIP -> client), ip_vs_conn_out_get. */
  outLookup(p: Packet, now: number): IpvsConnection | undefined {
    const c = this.replies.get(outKey(p.proto, p.src, p.sport ?? 0, p.dst, p.dport ?? 0))
    return c && c.expires > now ? c : undefined
  }

  /** ip_vs_in for a packet that reached LOCAL_IN (or LOCAL_OUT for local clients). */
  in(p: Packet, now: number): IpvsInResult {
    const existing = this.inLookup(p, now)
    if (existing) {
      this.updateState(existing, p, 'in', now)
      return {kind: 'forward', conn: existing, isNew: false, method: this.method(existing.service, existing.dest), packet: this.rewriteIn(existing, p)}
    }
    const svc = this.findService(p)
    if (!svc) return {kind: 'pass', why: 'no IPVS service for this address, port or mark'}
    if (p.proto === PROTO.tcp && !p.flags?.syn && !this.settings.sloppyTcp) {
      return {kind: 'pass', why: 'no IPVS connection for this TCP segment and only a SYN may create one (net.ipv4.vs.sloppy_tcp=0): left to the local stack'}
    }
    const picked = this.schedule(svc, p, now)
    if (!picked.dest) return {kind: 'drop', reason: `IPVS service ${describeService(svc)} has no destination available (${picked.why}): ip_vs_leave answers ICMP port unreachable and drops the packet`}
    const dest = picked.dest
    const conn: IpvsConnection = {
      service: svc,
      dest,
      proto: p.proto,
      caddr: p.src,
      cport: p.sport ?? 0,
      vaddr: p.dst,
      vport: p.dport ?? 0,
      daddr: dest.ip,
      dport: connDport(svc, dest, p.dport ?? 0),
      state: 'NONE',
      expires: now,
      noOutput: effectiveMethod(svc, dest) !== 'masq',
    }
    this.conns.set(connKey(conn.proto, conn.caddr, conn.cport, conn.vaddr, conn.vport), conn)
    // ip_vs_conn_out_get: a MASQ reply comes from the realserver, a DR/TUN one (since 5.10, "ipvs: inspect
    // reply packets from DR/TUN real servers") from the VIP itself
    if (effectiveMethod(svc, dest) === 'masq') this.replies.set(outKey(conn.proto, conn.daddr, conn.dport, conn.caddr, conn.cport), conn)
    else this.replies.set(outKey(conn.proto, conn.vaddr, conn.vport, conn.caddr, conn.cport), conn)
    this.added.set(dest, (this.added.get(dest) ?? 0) + 1)
    this.updateState(conn, p, 'in', now)
    const unknownMethod = dest.method === 'unknown' ? `the listing does not show how ${formatIp(dest.ip)}:${dest.port} is forwarded (ipvsadm -Ln --stats, --rate or --thresholds): assumed ${effectiveMethod(svc, dest) === 'masq' ? 'Masq (NAT), as its port differs from the service\'s' : 'Route (DR)'}; ipvsadm -Sn names it` : undefined
    const assumption = [picked.assumption, unknownMethod].filter((a) => a !== undefined).join('; ') || undefined
    return {kind: 'forward', conn, isNew: true, method: this.method(svc, dest), packet: this.rewriteIn(conn, p), assumption}
  }

  /**
   * ip_vs_out / handle_response for a reply of a connection: LVS-NAT's source becomes the VIP again; a DR/TUN
   * reply that happens to cross the director is left unchanged but counted, and moves the connection to the
   * OUTPUT rows of the state table (kernel >= 5.10: handle_response goes to after_nat for non-MASQ).
   */
  out(p: Packet, now: number): {conn: IpvsConnection; packet: Packet} | undefined {
    const c = this.outLookup(p, now)
    if (!c) return undefined
    this.updateState(c, p, 'out', now)
    if (effectiveMethod(c.service, c.dest) !== 'masq') return {conn: c, packet: p}
    return {conn: c, packet: {...p, src: c.vaddr, sport: p.sport === undefined ? undefined : c.vport}}
  }

  private method(svc: IpvsService, d: IpvsDest): 'masq' | 'route' | 'tunnel' | 'local' {
    const m = effectiveMethod(svc, d)
    return m === 'bypass' ? 'route' : m
  }

  private rewriteIn(c: IpvsConnection, p: Packet): Packet {
    if (effectiveMethod(c.service, c.dest) === 'masq') return {...p, dst: c.daddr, dport: p.dport === undefined ? undefined : c.dport}
    return p
  }

  /** ip_vs_proto_tcp.c set_tcp_state / ip_vs_proto_udp.c: the connection's state and timeout after a packet. */
  private updateState(c: IpvsConnection, p: Packet, dir: 'in' | 'out', now: number): void {
    if (p.proto !== PROTO.tcp || !p.flags) {
      c.state = 'UDP'
      c.expires = now + this.settings.udpTimeout
      return
    }
    const next = ipvsTcpNext(c, p.flags, dir)
    c.state = next
    c.expires = now + ipvsTcpTimeout(next, this.settings)
  }

  /**
   * Picks a destination; persistence first (ip_vs_sched_persist), then the service's scheduler. A template's
   * destination is used whatever its weight or load (ip_vs_check_template asks only that it is still in the
   * service, and with net.ipv4.vs.expire_quiescent_template=1 that its weight is not 0): a client with a
   * template keeps going to a quiesced (weight 0) destination.
   */
  schedule(svc: IpvsService, p: Packet, now: number): {dest?: IpvsDest; why: string; assumption?: string} {
    const tkey = svc.persistence !== undefined ? templateKey(svc, p.src, p.dst) : undefined
    const t = tkey !== undefined ? this.templates.get(tkey) : undefined
    if (t && t.expires > now && this.templateValid(t.dest)) {
      t.expires = Math.max(t.expires, now + (svc.persistence ?? 300))
      if (!t.listed) return {dest: t.dest, why: 'persistence template'}
      const quiesced = weightOf(t.dest) === 0 ? `; ${formatIp(t.dest.ip)}:${t.dest.port} has weight 0 (quiesced), which does not stop a template (net.ipv4.vs.expire_quiescent_template=0)` : ''
      return {
        dest: t.dest,
        why: 'persistence template (ipvsadm -Lnc)',
        assumption: `${describeService(svc)}: ipvsadm -Lnc holds a persistence template for ${formatIp(t.listed.client.ip)} (${t.listed.loc.file}:${t.listed.loc.line}, ${t.listed.expire} s left), so the connection goes to ${formatIp(t.dest.ip)}:${t.dest.port} without scheduling${quiesced}; assumed it has not expired by the time of the connection`,
      }
    }
    const avail = svc.dests.filter((d) => weightOf(d) > 0 && !this.overloaded(d))
    if (avail.length === 0) return {why: svc.dests.length === 0 ? 'no realservers configured' : 'every realserver has weight 0 or is over its upper threshold'}
    const r = this.pick(svc, avail, p)
    if (r.dest && tkey !== undefined) this.templates.set(tkey, {dest: r.dest, expires: now + (svc.persistence ?? 300)})
    if (!r.dest || !svc.dests.some((d) => Number.isNaN(d.weight))) return r
    return {...r, assumption: r.assumption ? `${r.assumption}; ${UNKNOWN_WEIGHTS}` : UNKNOWN_WEIGHTS}
  }

  /** ip_vs_check_template: the destination is still one of the service's (IP_VS_DEST_F_AVAILABLE), not quiesced when templates of quiesced ones expire. */
  private templateValid(d: IpvsDest): boolean {
    if (!this.services.some((s) => s.dests.includes(d))) return false
    return !(this.settings.expireQuiescentTemplate && weightOf(d) === 0)
  }

  private overloaded(d: IpvsDest): boolean {
    if (!d.upperThreshold) return false
    return (d.activeConns ?? 0) + (d.inactiveConns ?? 0) + (this.added.get(d) ?? 0) >= d.upperThreshold
  }

  /** ip_vs_sed_dest_overhead / ip_vs_nq_dest_overhead: activeconns + 1 */
  private sedOverhead(d: IpvsDest): number {
    return (d.activeConns ?? 0) + (this.added.get(d) ?? 0) + 1
  }

  /** a scheduler flag (-b): ipvsadm prints sh-fallback/sh-port (also for mh, whose flags share the bits) or flag-N */
  private schedFlag(svc: IpvsService, name: string, generic: string): boolean {
    const alt = name.startsWith('mh-') ? `sh-${name.slice(3)}` : `mh-${name.slice(3)}`
    return svc.schedFlags.includes(name) || svc.schedFlags.includes(alt) || svc.schedFlags.includes(generic)
  }

  /** ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns */
  private overhead(d: IpvsDest): number {
    return ((d.activeConns ?? 0) + (this.added.get(d) ?? 0)) * 256 + (d.inactiveConns ?? 0)
  }

  private pick(svc: IpvsService, avail: IpvsDest[], p: Packet): {dest?: IpvsDest; why: string; assumption?: string} {
    switch (svc.scheduler) {
      case 'rr': {
        // ip_vs_rr_schedule: the next destination after the last one used, starting at the head of the list
        const all = svc.dests
        const start = this.rr.get(svc) ?? -1
        for (let k = 1; k <= all.length; k++) {
          const i = (start + k) % all.length
          if (avail.includes(all[i]!)) {
            this.rr.set(svc, i)
            return {dest: all[i], why: 'rr'}
          }
        }
        return {why: 'rr: none available'}
      }
      case 'wrr': {
        // ip_vs_wrr.c: mark->cw steps down by di (the gcd of the weights) from mw = max weight - (di - 1); each
        // call goes on from the last destination picked, taking the next one whose weight >= cw. Where cw starts
        // depends on how the destinations were added (ip_vs_wrr_dest_changed on each -a): assumed one by one in
        // the reverse of the listing's order, so that the kernel's list (newest first) is the listing's
        const all = svc.dests
        const st = this.wrr.get(svc) ?? wrrInit(all.map(weightOf))
        if (st.mw <= 0) return {why: 'wrr: no destination with a weight'}
        for (let guard = 0; guard < all.length * (Math.ceil(st.mw / st.di) + 2) + 2; guard++) {
          st.i++
          if (st.i >= all.length) {
            st.i = -1
            st.cw -= st.di
            if (st.cw <= 0) st.cw = st.mw
            continue
          }
          const d = all[st.i]!
          if (avail.includes(d) && weightOf(d) >= st.cw) {
            this.wrr.set(svc, st)
            return {dest: d, why: 'wrr', assumption: all.length > 1 && new Set(all.map(weightOf)).size > 1 ? WRR_ORDER : undefined}
          }
        }
        this.wrr.set(svc, st)
        return {why: 'wrr: none available'}
      }
      case 'lc': {
        let least: IpvsDest | undefined
        for (const d of avail) if (!least || this.overhead(d) < this.overhead(least)) least = d
        return {dest: least, why: 'lc'}
      }
      case 'wlc': {
        let least: IpvsDest | undefined
        for (const d of avail) if (!least || this.overhead(least) * weightOf(d) > this.overhead(d) * weightOf(least)) least = d
        return {dest: least, why: 'wlc'}
      }
      case 'sed': {
        // ip_vs_sed_schedule: the least (activeconns + 1) / weight, the first such in list order
        let least: IpvsDest | undefined
        for (const d of avail) if (!least || this.sedOverhead(least) * weightOf(d) > this.sedOverhead(d) * weightOf(least)) least = d
        return {dest: least, why: 'sed'}
      }
      case 'nq': {
        // ip_vs_nq_schedule: the first idle destination (no active connection) in list order, else as sed
        const idle = avail.find((d) => (d.activeConns ?? 0) + (this.added.get(d) ?? 0) === 0)
        if (idle) return {dest: idle, why: 'nq: idle'}
        let least: IpvsDest | undefined
        for (const d of avail) if (!least || this.sedOverhead(least) * weightOf(d) > this.sedOverhead(d) * weightOf(least)) least = d
        return {dest: least, why: 'nq'}
      }
      case 'fo': {
        // ip_vs_fo_schedule: the highest weight, the first such in list order
        let best: IpvsDest | undefined
        for (const d of avail) if (!best || weightOf(d) > weightOf(best)) best = d
        return {dest: best, why: 'fo'}
      }
      case 'ovf': {
        // ip_vs_ovf_schedule: the highest weight among those whose active connections do not exceed it
        let best: IpvsDest | undefined
        for (const d of avail) {
          if ((d.activeConns ?? 0) + (this.added.get(d) ?? 0) > weightOf(d)) continue
          if (!best || weightOf(d) > weightOf(best)) best = d
        }
        return best ? {dest: best, why: 'ovf'} : {why: 'ovf: every destination has more active connections than its weight'}
      }
      case 'lblc':
      case 'lblcr': {
        // ip_vs_lblc(r)_schedule: the destination its table holds for the packet's destination address, else
        // (a new entry) the least (activeconns * 256 + inactconns) / weight as wlc; the table is not in a snapshot
        let least: IpvsDest | undefined
        for (const d of avail) if (!least || this.overhead(least) * weightOf(d) > this.overhead(d) * weightOf(least)) least = d
        return {dest: least, why: svc.scheduler, assumption: `${svc.scheduler}: assumed that its table holds no destination for ${formatIp(p.dst)} yet (the table is not in the snapshot), so it picks the least loaded as wlc does`}
      }
      case 'sh': {
        // ip_vs_sh_reassign fills 256 buckets cyclically over every destination in list order, `weight`
        // buckets in a row (a weight-0 one gets one bucket); the client address (plus the source port with
        // sh-port) picks a bucket with hash_32; an unavailable destination there means none (without
        // sh-fallback) or the next available one along the probes (ip_vs_sh_get_fallback)
        const all = svc.dests
        if (all.length === 0) return {why: 'sh: no destinations'}
        const table: IpvsDest[] = []
        let di = 0
        let count = 0
        for (let i = 0; i < 256; i++) {
          const d = all[di % all.length]!
          table.push(d)
          if (++count >= weightOf(d)) {
            di++
            count = 0
          }
        }
        const port = this.schedFlag(svc, 'sh-port', 'flag-2') ? (p.sport ?? 0) : 0
        const key = (p.src.family === 4 ? Number(p.src.value) : Number(p.src.value & 0xffffffffn)) + port
        const ihash = hash32(key, 8) & 255
        const d = table[ihash]!
        if (avail.includes(d)) return {dest: d, why: 'sh'}
        if (!this.schedFlag(svc, 'sh-fallback', 'flag-1')) return {why: `sh: the hashed destination ${formatIp(d.ip)}:${d.port} is unavailable (weight 0 or overloaded) and the service has no sh-fallback`}
        for (let off = 0; off < 256; off++) {
          const h = (hash32(key, 8) + ((off + ihash) % 256)) & 255
          if (avail.includes(table[h]!)) return {dest: table[h], why: 'sh: fallback'}
        }
        return {why: 'sh: none available'}
      }
      case 'dh': {
        // ip_vs_dh_reassign: 256 buckets, one destination after the other in list order (weights play no part);
        // the packet's destination address picks one with hash_32 (older kernels: (daddr * 2654435761) & 255;
        // the lab's 6.1 hashes with hash_32); an unavailable destination there means none
        const all = svc.dests
        if (all.length === 0) return {why: 'dh: no destinations'}
        const key = p.dst.family === 4 ? Number(p.dst.value) : Number(p.dst.value & 0xffffffffn)
        const d = all[hash32(key, 8) % all.length]!
        if (avail.includes(d)) return {dest: d, why: 'dh'}
        return {why: `dh: the hashed destination ${formatIp(d.ip)}:${d.port} is unavailable (weight 0 or overloaded)`}
      }
      case 'mh': {
        // ip_vs_mh_permutate takes last_weight, the latest weight that was not 0 (__ip_vs_update_dest): the IPVS
        // lab's 6.1 refused a client whose slot was a drained (ipvsadm -e -w 0) destination (random seed 28 #0)
        const drained = svc.dests.some((d) => weightOf(d) === 0) && svc.dests.some((d) => weightOf(d) > 0)
          ? `mh: the destinations with weight 0 are assumed to have been added with weight 0 (no slot in the lookup table); one drained to 0 after it had a weight keeps that weight's slots (last_weight), and a client hashed there is refused${this.schedFlag(svc, 'mh-fallback', 'flag-1') ? ' (here: sent on by mh-fallback)' : ''}`
          : undefined
        const r = maglevPick(svc, p, this.schedFlag(svc, 'mh-port', 'flag-2'))
        if (!r) return {why: 'mh: no destination with a weight'}
        if (avail.includes(r.dest)) return {dest: r.dest, why: 'mh', assumption: drained}
        if (!this.schedFlag(svc, 'mh-fallback', 'flag-1')) return {why: `mh: the hashed destination ${formatIp(r.dest.ip)}:${r.dest.port} is unavailable (weight 0 or overloaded) and the service has no mh-fallback`}
        for (let off = 0; off < MH_SIZE; off++) {
          const d = r.lookup[maglevHash((r.key + ((off + r.ihash) % MH_SIZE)) >>> 0, MH_KEY1) % MH_SIZE]
          if (!d) break
          if (avail.includes(d)) return {dest: d, why: 'mh: fallback', assumption: drained}
        }
        return {why: 'mh: none available'}
      }
      default:
        if (svc.scheduler === '') return {dest: avail[0], why: 'first destination', assumption: `the listing does not show the scheduler (ipvsadm -Ln --stats, --rate or --thresholds): assumed to pick the first available destination ${formatIp(avail[0]!.ip)}:${avail[0]!.port}`}
        return {dest: avail[0], why: svc.scheduler, assumption: `scheduler ${svc.scheduler} is not modelled: assumed to pick the first available destination ${formatIp(avail[0]!.ip)}:${avail[0]!.port}`}
    }
  }
}

// ── mh (ip_vs_mh.c): Maglev hashing ───────────────────────────────────────────────────────────────────────────
/** IP_VS_MH_TAB_SIZE with the default CONFIG_IP_VS_MH_TAB_INDEX=12: primes[12 - 8] */
const MH_SIZE = 4093
/** IP_VS_MH_TAB_BITS: CONFIG_IP_VS_MH_TAB_INDEX / 2 */
const MH_BITS = 6
/** generate_hash_secret: fixed keys, both halves the same */
const MH_KEY1 = 2654435761n
const MH_KEY2 = 2654446892n
const M64 = (1n << 64n) - 1n

function rol64(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & M64
}

/**
 * hsiphash(&v, 4, key) on a 64-bit kernel (lib/siphash.c: there HalfSipHash-1-3 is SipHash-1-3 on 64-bit words)
 * of a 32-bit value, with both key words `k`; the low 32 bits of the result.
 */
export function maglevHash(v: number, k: bigint): number {
  let v0 = 0x736f6d6570736575n ^ k
  let v1 = 0x646f72616e646f6dn ^ k
  let v2 = 0x6c7967656e657261n ^ k
  let v3 = 0x7465646279746573n ^ k
  const b = (4n << 56n) | BigInt(v >>> 0)
  const round = () => {
    v0 = (v0 + v1) & M64; v1 = rol64(v1, 13n); v1 ^= v0; v0 = rol64(v0, 32n)
    v2 = (v2 + v3) & M64; v3 = rol64(v3, 16n); v3 ^= v2
    v0 = (v0 + v3) & M64; v3 = rol64(v3, 21n); v3 ^= v0
    v2 = (v2 + v1) & M64; v1 = rol64(v1, 17n); v1 ^= v2; v2 = rol64(v2, 32n)
  }
  v3 ^= b
  round()
  v0 ^= b
  v2 ^= 0xffn
  round()
  round()
  round()
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn)
}

function addrKey(a: IpAddr): number {
  return a.family === 4 ? Number(a.value) : Number((a.value ^ (a.value >> 32n) ^ (a.value >> 64n) ^ (a.value >> 96n)) & 0xffffffffn)
}

/**
 * ip_vs_mh_permutate + ip_vs_mh_populate over the destinations in list order (weights as last set: a
 * destination added with weight 0 takes no slot), then the client's slot (ip_vs_mh_get).
 */
function maglevPick(svc: IpvsService, p: Packet, withPort: boolean): {dest: IpvsDest; lookup: (IpvsDest | undefined)[]; key: number; ihash: number} | undefined {
  const ws = svc.dests.map(weightOf)
  const g = ws.filter((w) => w > 0).reduce(gcd, 0)
  if (g < 1) return undefined
  const mw = Math.max(...ws) / g
  const rshift = Math.max(0, 32 - Math.clz32(mw) - MH_BITS)
  const setup = svc.dests.map((d, i) => {
    const k = (addrKey(d.ip) + d.port) >>> 0
    const offset = maglevHash(k, MH_KEY1) % MH_SIZE
    const lw = ws[i]!
    return {offset, skip: (maglevHash(k, MH_KEY2) % (MH_SIZE - 1)) + 1, perm: offset, turns: ((lw / g) >> rshift) || (lw !== 0 ? 1 : 0)}
  })
  const lookup: (IpvsDest | undefined)[] = new Array(MH_SIZE)
  const taken = new Uint8Array(MH_SIZE)
  let n = 0
  let dt = 0
  outer: while (n < MH_SIZE) {
    for (let i = 0; i < setup.length; ) {
      const ds = setup[i]!
      if (ds.turns < 1) {
        i++
        continue
      }
      while (taken[ds.perm]) {
        ds.perm += ds.skip
        if (ds.perm >= MH_SIZE) ds.perm -= MH_SIZE
      }
      taken[ds.perm] = 1
      lookup[ds.perm] = svc.dests[i]
      if (++n === MH_SIZE) break outer
      if (++dt >= ds.turns) {
        dt = 0
        i++
      }
    }
  }
  const key = (addrKey(p.src) + (withPort ? (p.sport ?? 0) : 0)) >>> 0
  const ihash = maglevHash(key, MH_KEY1) % MH_SIZE
  const dest = lookup[ihash]
  return dest ? {dest, lookup, key, ihash} : undefined
}

export function describeService(s: IpvsService): string {
  if (s.proto === 'fwmark') return `fwmark ${s.fwmark}`
  return `${s.proto.toUpperCase()} ${s.vip ? formatIp(s.vip) : '?'}:${s.port}`
}

export function destMatches(d: IpvsDest, ip: IpAddr): boolean {
  return prefixContains({family: d.ip.family, value: d.ip.value, len: d.ip.family === 4 ? 32 : 128}, ip)
}

/** IPVS's own TCP states (ip_vs.h IP_VS_TCP_S_*), as ipvsadm -Lnc prints them. */
export type IpvsTcpState =
  | 'NONE' | 'ESTABLISHED' | 'SYN_SENT' | 'SYN_RECV' | 'FIN_WAIT' | 'TIME_WAIT' | 'CLOSE' | 'CLOSE_WAIT' | 'LAST_ACK' | 'LISTEN' | 'SYNACK'

const IPVS_COLS: readonly IpvsTcpState[] = ['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK']
const vNO = 'NONE', vES = 'ESTABLISHED', vSS = 'SYN_SENT', vSR = 'SYN_RECV', vFW = 'FIN_WAIT', vTW = 'TIME_WAIT'
const vCL = 'CLOSE', vCW = 'CLOSE_WAIT', vLA = 'LAST_ACK', vLI = 'LISTEN', vSA = 'SYNACK'
void vNO
void vSA

/**
 * tcp_states[] of net/netfilter/ipvs/ip_vs_proto_tcp.c (the table in use unless secure_tcp), row by row;
 * columns sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA. INPUT: client packets of a connection whose
 * replies IPVS sees (LVS-NAT); OUTPUT: those replies; INPUT-ONLY: client packets while the connection has
 * IP_VS_CONN_F_NOOUTPUT (DR, TUN: the director never sees a reply). The row is chosen by tcp_state_idx:
 * RST, else SYN, else FIN, else ACK.
 */
export const IPVS_TCP_STATES: Readonly<Record<'INPUT' | 'OUTPUT' | 'INPUT_ONLY', Readonly<Record<'syn' | 'fin' | 'ack' | 'rst', readonly IpvsTcpState[]>>>> = {
  INPUT: {
    /*          sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
    syn: /**/ [vSR, vES, vES, vSR, vSR, vSR, vSR, vSR, vSR, vSR, vSR],
    fin: /**/ [vCL, vCW, vSS, vTW, vTW, vTW, vCL, vCW, vLA, vLI, vTW],
    ack: /**/ [vCL, vES, vSS, vES, vFW, vTW, vCL, vCW, vCL, vLI, vES],
    rst: /**/ [vCL, vCL, vCL, vSR, vCL, vCL, vCL, vCL, vLA, vLI, vSR],
  },
  OUTPUT: {
    /*          sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
    syn: /**/ [vSS, vES, vSS, vSR, vSS, vSS, vSS, vSS, vSS, vLI, vSR],
    fin: /**/ [vTW, vFW, vSS, vTW, vFW, vTW, vCL, vTW, vLA, vLI, vTW],
    ack: /**/ [vES, vES, vSS, vES, vFW, vTW, vCL, vCW, vLA, vES, vES],
    rst: /**/ [vCL, vCL, vSS, vCL, vCL, vTW, vCL, vCL, vCL, vCL, vCL],
  },
  INPUT_ONLY: {
    /*          sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
    syn: /**/ [vSR, vES, vES, vSR, vSR, vSR, vSR, vSR, vSR, vSR, vSR],
    fin: /**/ [vCL, vFW, vSS, vTW, vFW, vTW, vCL, vCW, vLA, vLI, vTW],
    ack: /**/ [vCL, vES, vSS, vES, vFW, vTW, vCL, vCW, vCL, vLI, vES],
    rst: /**/ [vCL, vCL, vCL, vSR, vCL, vCL, vCL, vCL, vLA, vLI, vCL],
  },
}

/** tcp_timeouts[] of ip_vs_proto_tcp.c (seconds); ESTABLISHED and FIN_WAIT are what ipvsadm --set tcp/tcpfin change. */
export function ipvsTcpTimeout(state: string, s: IpvsSettings): number {
  switch (state) {
    case 'ESTABLISHED': return s.tcpTimeout
    case 'FIN_WAIT': return s.tcpFinTimeout
    case 'SYN_SENT': case 'TIME_WAIT': case 'LISTEN': case 'SYNACK': return 120
    case 'SYN_RECV': case 'CLOSE_WAIT': return 60
    case 'LAST_ACK': return 30
    case 'CLOSE': return 10
    default: return 2
  }
}

/**
 * set_tcp_state: the next state of a connection for a segment IPVS sees in direction `dir` ('in': client ->
 * realserver, 'out': an LVS-NAT reply). The first 'out' packet clears NOOUTPUT (mutates `c.noOutput`); a
 * segment with none of RST/SYN/FIN/ACK closes the connection (new_state stays IP_VS_TCP_S_CLOSE).
 */
export function ipvsTcpNext(c: {state: string; noOutput: boolean}, f: TcpFlags, dir: 'in' | 'out'): IpvsTcpState {
  let row: 'INPUT' | 'OUTPUT' | 'INPUT_ONLY' = dir === 'out' ? 'OUTPUT' : 'INPUT'
  if (c.noOutput) {
    if (row === 'OUTPUT') c.noOutput = false
    else row = 'INPUT_ONLY'
  }
  const idx = f.rst ? 'rst' : f.syn ? 'syn' : f.fin ? 'fin' : f.ack ? 'ack' : undefined
  if (!idx) return 'CLOSE'
  const col = Math.max(0, IPVS_COLS.indexOf(c.state as IpvsTcpState))
  return IPVS_TCP_STATES[row][idx][col]!
}
