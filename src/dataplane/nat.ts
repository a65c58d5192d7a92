// NAT bindings as net/netfilter/nf_nat_core.c makes them: the nat table is consulted only while a
// connection has no binding for the hook's manipulation (the first packet, nf_nat_inet_fn); the binding is
// a rewritten reply tuple (nf_nat_setup_info), and every later packet, both ways, is rewritten from the two
// tuples (nf_nat_packet / nf_nat_manip_pkt).
import {formatIp, type IpAddr} from '../model/ip.js'
import type {Target} from '../model/iptables.js'
import type {CtEntry} from './conntrack.js'
import type {Packet} from './packet.js'

export type Manip = 'src' | 'dst'

export function natInitialized(e: CtEntry, manip: Manip): boolean {
  return e.status.has(manip === 'src' ? 'SRC_NAT_DONE' : 'DST_NAT_DONE')
}

/** nf_nat_alloc_null_binding: no rule matched; the manipulation is settled without a change. */
export function nullBinding(e: CtEntry, manip: Manip): void {
  e.status.add(manip === 'src' ? 'SRC_NAT_DONE' : 'DST_NAT_DONE')
}

export interface BindContext {
  /** MASQUERADE: the address the output route picks as source (inet_select_addr on the out device) */
  readonly masqAddr?: IpAddr
  /** REDIRECT: the primary address of the input device (127.0.0.1 for locally generated packets) */
  readonly redirectAddr?: IpAddr
}

/**
 * Binds a NAT target to the entry: the reply tuple is rewritten so that replies are recognised and
 * un-NATed. Returns a description of the mapping, or an error when the target cannot bind (MASQUERADE
 * without an address on the out device).
 */
export function bindNat(e: CtEntry, manip: Manip, t: Target, ctx: BindContext): {ok: true; what: string} | {ok: false; reason: string} {
  if (manip === 'dst') {
    let ip: IpAddr | undefined
    let port: number | undefined
    if (t.kind === 'DNAT') {
      const r = t.to[0]
      ip = r?.from
      port = r?.portFrom
    } else if (t.kind === 'REDIRECT') {
      ip = ctx.redirectAddr
      port = t.ports?.[0]
      if (!ip) return {ok: false, reason: 'REDIRECT: the input device has no address'}
    } else return {ok: false, reason: `${t.kind} is not valid in a destination-NAT chain`}
    e.reply = {...e.reply, src: ip ?? e.reply.src, sport: port ?? e.reply.sport}
    e.status.add('DST_NAT')
    e.status.add('DST_NAT_DONE')
    return {ok: true, what: `destination -> ${describe(e.reply.src, e.reply.sport)}`}
  }
  let ip: IpAddr | undefined
  let port: number | undefined
  if (t.kind === 'SNAT') {
    const r = t.to[0]
    ip = r?.from
    port = r?.portFrom
  } else if (t.kind === 'MASQUERADE') {
    ip = ctx.masqAddr
    port = t.ports?.[0]
    if (!ip) return {ok: false, reason: 'MASQUERADE: the output device has no IPv4 address to masquerade to'}
  } else return {ok: false, reason: `${t.kind} is not valid in a source-NAT chain`}
  e.reply = {...e.reply, dst: ip ?? e.reply.dst, dport: port ?? e.reply.dport}
  e.status.add('SRC_NAT')
  e.status.add('SRC_NAT_DONE')
  return {ok: true, what: `source -> ${describe(e.reply.dst, e.reply.dport)}`}
}

/**
 * nf_nat_packet: rewrites a packet of a bound connection at a hook of the given manipulation. In the
 * original direction the destination (or source) comes from the reply tuple; in the reply direction the
 * roles swap (statusbit ^= IPS_NAT_MASK) and the values come from the original tuple.
 */
export function applyNat(p: Packet, e: CtEntry, dir: 'ORIGINAL' | 'REPLY', manip: Manip): Packet {
  if (dir === 'ORIGINAL') {
    if (manip === 'dst' && e.status.has('DST_NAT')) return {...p, dst: e.reply.src, dport: p.dport === undefined ? undefined : e.reply.sport}
    if (manip === 'src' && e.status.has('SRC_NAT')) return {...p, src: e.reply.dst, sport: p.sport === undefined ? undefined : e.reply.dport}
    return p
  }
  if (manip === 'dst' && e.status.has('SRC_NAT')) return {...p, dst: e.orig.src, dport: p.dport === undefined ? undefined : e.orig.sport}
  if (manip === 'src' && e.status.has('DST_NAT')) return {...p, src: e.orig.dst, sport: p.sport === undefined ? undefined : e.orig.dport}
  return p
}

function describe(ip: IpAddr, port: number): string {
  return `${formatIp(ip)}:${port}`
}
