// The source address a balancer's packets to a NAT backend carry: its own when nat POSTROUTING masquerades or SNATs
// them, else the client's (used by realserver-filter-blocks-service and dnat-untracked).
import type {IpAddr} from '../../model/ip.js'
import type {Decision} from './firewall.js'
import {backendOutcome, ipvsKnobs} from './flows.js'
import {UNKNOWN_IF} from './host.js'
import {hookByDstClass} from './path.js'
import type {Backend, LbService, World} from './world.js'

/**
 * The source of the packets the director sends to a NAT backend: its own address when nat POSTROUTING
 * masquerades them (DNAT; LVS-NAT only with net.ipv4.vs.conntrack=1, without which IPVS packets skip the nat
 * table), else the client's.
 */
export function natSource(svc: LbService, w: World, b: Backend): {ip: IpAddr; decision?: Decision} {
  const h = svc.host
  const probe = svc.probes[0]
  const client = {ip: w.client.ip}
  if (!h.fw || !probe || (svc.kind === 'ipvs' && !ipvsKnobs(h).vsConntrack)) return client
  const o = backendOutcome(svc, b)
  const post = hookByDstClass(h, 'POSTROUTING', {src: w.client.ip, sport: w.client.port, dst: b.ip, dport: b.port ?? probe.dport ?? 0, proto: svc.proto, mark: o?.mark ?? probe.mark}, 'SYN', {state: 'NEW', ctMark: o?.ctMark ?? 0, oif: h.oifFor(b.ip) ?? UNKNOWN_IF}, true)
  const nat = post?.nat
  if (!nat || (nat.kind !== 'SNAT' && nat.kind !== 'MASQUERADE')) return client
  const ip = (nat.kind === 'SNAT' ? nat.to?.ip : undefined) ?? h.sourceFor(b.ip)
  return ip ? {ip, decision: nat.decision} : client
}

