// Where the client's packets of a flow asked about (check --vip) arrive among the hosts, the way trace wires them
// (dataplane/simulate.ts): a client that is one of the hosts sends them by its own route to the next hop's owner;
// an outside client is attached where a host has a connected route to it (the VIP's owner first, then a host that
// forwards), else at the VIP's owner. Rules about a flow that no balancer handles (a service on the host's own
// stack, a VIP that is nowhere) start there.
import {formatIp, ipEquals, isLoopback, prefixContains, type IpAddr} from '../../model/ip.js'
import type {Evidence} from '../../model/finding.js'
import {routeEvidence, tableName} from '../../dataplane/routing.js'
import type {FlowHint} from '../types.js'
import {ev, type HostView} from './host.js'
import {isDefaultRule} from './returnpath.js'
import type {World} from './world.js'

export interface Arrival {
  readonly host: HostView
  /** the interface the client's packets arrive on */
  readonly iif: string
  readonly client: IpAddr
  /** how they get there, in words ("c routes 198.51.100.100 via 203.0.113.1 (d)") */
  readonly how: string
  readonly evidence: readonly Evidence[]
}

/** The host and interface holding `ip` on a device other than lo (the one that answers ARP for it). */
function linkOwner(w: World, ip: IpAddr, except?: HostView): {host: HostView; iface: string} | undefined {
  for (const h of w.hosts) {
    if (h === except) continue
    for (const i of h.snap.interfaces ?? []) {
      if (i.name === 'lo') continue
      if (i.addresses.some((a) => ipEquals(a.ip, ip))) return {host: h, iface: i.name}
    }
  }
  return undefined
}

/** undefined for a local client (loopback, or the VIP's own host) and where the snapshots do not tell. */
export function arrivalOf(w: World, f: FlowHint): Arrival | undefined {
  const vip = f.vip.ip
  const client = f.client ?? w.client.ip
  if (vip.family !== 4 || client.family !== 4 || isLoopback(client) || isLoopback(vip)) return undefined
  const from = w.hosts.find((h) => h.addressOf(client) !== undefined)
  if (from) {
    if (from.isLocal(vip)) return undefined
    const r = from.route({dst: vip, src: client})
    if (!r || r.kind !== 'unicast') return undefined
    const hop = r.gateway ?? vip
    const to = linkOwner(w, hop, from)
    if (!to) return undefined
    const evidence = routeEvidence(r)
      .filter((l) => !isDefaultRule(l.text))
      .map((l) => ev(l, from.name))
    return {host: to.host, iif: to.iface, client, how: `${from.name} routes ${formatIp(vip)} ${r.gateway ? `via ${formatIp(r.gateway)}` : 'on-link'} to ${to.host.name}`, evidence}
  }
  const attached: {host: HostView; iface: string}[] = []
  for (const h of w.hosts) {
    for (const r of h.rt?.routes ?? []) {
      if (r.type !== 'unicast' || r.gateway || r.nexthops || !r.dev || r.dev === 'lo' || tableName(r.table) === 'local') continue
      if (r.dst.family === 4 && r.dst.len > 0 && prefixContains(r.dst, client)) attached.push({host: h, iface: r.dev})
    }
  }
  const owner = linkOwner(w, vip)
  const at = attached.find((c) => c.host === owner?.host) ?? attached.find((c) => c.host.sysctl.conf('forwarding', c.iface, 'dev', 1).value !== 0) ?? attached[0]
  if (at) return {host: at.host, iif: at.iface, client, how: `the client ${formatIp(client)} is on a network connected to ${at.host.name} (${at.iface})`, evidence: []}
  if (owner) return {host: owner.host, iif: owner.iface, client, how: `${owner.host.name} holds ${formatIp(vip)} on ${owner.iface}`, evidence: []}
  return undefined
}
