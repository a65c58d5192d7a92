// The reverse path check of `-m rpfilter` (net/ipv4/netfilter/ipt_rpfilter.c, rpfilter_mt): the route back to the
// packet's source, looked up as the kernel does (from the loopback device, the packet's destination as source,
// its mark only with --validmark), must be a unicast route (or a local one with --accept-local) through the device
// the packet arrived on (any device with --loose).
import type {IpAddr} from '../model/ip.js'
import type {Match} from '../model/iptables.js'
import type {Packet} from './packet.js'
import {routeLookup, type RoutingTables} from './routing.js'

type Rpfilter = Extract<Match, {kind: 'rpfilter'}>

const isZeronet = (ip: IpAddr): boolean => ip.family === 4 && ip.value >> 24n === 0n
const isLbcast = (ip: IpAddr): boolean => ip.family === 4 && ip.value === 0xffffffffn
const isMulticast = (ip: IpAddr): boolean => ip.family === 4 && ip.value >> 28n === 0xen
const isLocalMulticast = (ip: IpAddr): boolean => ip.family === 4 && ip.value >> 8n === 0xe00000n

/**
 * Whether the packet passes the reverse path check (before --invert), for a packet that arrived on `iif`.
 * Packets received on the loopback device pass (rpfilter_is_loopback); so do DHCP-style broadcasts from 0.0.0.0.
 */
export function rpfilterPasses(t: RoutingTables, m: Rpfilter, p: Packet, iif: string): boolean {
  if (iif === 'lo') return true
  if (isZeronet(p.src) && (isLbcast(p.dst) || isLocalMulticast(p.dst))) return true
  // rpfilter_get_saddr: no source address for a lookup from a multicast, broadcast or zeronet destination
  const src = isMulticast(p.dst) || isLbcast(p.dst) || isZeronet(p.dst) ? undefined : p.dst
  const res = routeLookup(t, {dst: p.src, src, iif: 'lo', mark: m.validMark ? p.mark : 0})
  if (res.kind !== 'unicast' && !(res.kind === 'local' && m.acceptLocal)) return false
  if (m.loose) return true
  const devs = new Set<string>()
  if (res.kind === 'unicast' && res.dev) devs.add(res.dev)
  if (res.route.dev) devs.add(res.route.dev)
  for (const h of res.route.nexthops ?? []) if (h.dev) devs.add(h.dev)
  return devs.has(iif)
}

/** The match as iptables-save prints it. */
export function rpfilterText(m: Rpfilter): string {
  return ['-m rpfilter', m.loose && '--loose', m.validMark && '--validmark', m.acceptLocal && '--accept-local', m.invert && '--invert'].filter(Boolean).join(' ')
}
