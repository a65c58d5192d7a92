// Forwarded DR-shaped paths: a host that routes a VIP, unchanged (no IPVS, no DNAT), to a realserver that
// holds the VIP on lo, by an ordinary route or a policy route by fwmark (LVS-HOWTO 29.3 "routing by fwmark").
// Such a host is a director in all but name; when the realserver's route back to the client does not lead
// through it, it sees only the client's half of every connection, exactly like an LVS-DR director (its
// conntrack never sees the SYN/ACK: the client's ACK in SYN_SENT is INVALID, nf_conntrack_proto_tcp.c).
//
// Only what the snapshots show is taken: the VIP is an address on the realserver's lo (or a dummy), the
// forwarding host's own route for the client's packet (after its mangle PREROUTING marks) leads to a
// gateway the realserver owns, and the realserver's way back to the client is followed across the snapshots.
import {formatIp, ipEquals, isLoopback, prefixContains, type IpAddr} from '../../model/ip.js'
import type {Evidence} from '../../model/finding.js'
import type {IptablesRuleset, Match} from '../../model/iptables.js'
import type {IpRule} from '../../model/net.js'
import type {Loc} from '../../model/source.js'
import type {Packet} from '../../dataplane/packet.js'
import {routeEvidence, type RouteResult} from '../../dataplane/routing.js'
import type {FlowHint} from '../types.js'
import {ctView} from './ctmodel.js'
import {ev, UNKNOWN_IF, type HostView} from './host.js'
import {flowPacket, l4Name, type L4} from './packets.js'
import {isDefaultRule, returnRoute, type ReturnVerdict} from './returnpath.js'
import type {World} from './world.js'

type Unicast = Extract<RouteResult, {kind: 'unicast'}>

export interface ForwardPath {
  /** the host that forwards the VIP's packets (the director in all but name) */
  readonly host: HostView
  readonly vip: IpAddr
  readonly proto: L4
  readonly port: number
  /** the port came from a flow the caller asked about (not from the rules) */
  readonly hinted: boolean
  /** no flow and no rule names a port of the VIP: TCP port 80 stands in for the service */
  readonly standIn?: boolean
  /** the client's SYN as it arrives */
  readonly probe: Packet
  /** where the client's packets arrive on `host` */
  readonly iif: string
  /** skb->mark after mangle PREROUTING (policy routing by fwmark) */
  readonly mark: number
  readonly route: Unicast
  readonly gateway: IpAddr
  readonly realserver: HostView
  /** the realserver's interface holding the gateway address: where it receives the VIP's packets */
  readonly rsIif?: string
  /** the VIP on the realserver (ip-addr.json) */
  readonly vipLoc: Loc
  /** the forwarding host's route (and policy rule) that sends the VIP to the realserver */
  readonly routeEvidence: readonly Evidence[]
  /** the realserver's route back to the client, relative to `host` */
  readonly ret: ReturnVerdict
}

/** A policy rule `fwmark M lookup T` whose table routes a VIP to the realserver holding it, which the unmarked packet does not reach. */
export interface PolicyRoute {
  readonly host: HostView
  readonly vip: IpAddr
  readonly mark: number
  readonly mask: number
  readonly rule: IpRule
  readonly route: Unicast
  readonly realserver: HostView
  readonly vipLoc: Loc
  readonly evidence: readonly Evidence[]
  /** where an unmarked packet to the VIP goes instead, in words */
  readonly unmarked: string
}

const TUNNELISH = new Set(['dummy'])

/** Addresses a host carries on lo (or a dummy device) that are not loopback addresses: DR-style VIPs. */
export function loVips(h: HostView): {ip: IpAddr; loc: Loc}[] {
  const out: {ip: IpAddr; loc: Loc}[] = []
  for (const i of h.snap.interfaces ?? []) {
    if (i.name !== 'lo' && !TUNNELISH.has(i.kind ?? '') && !/^dummy/.test(i.name)) continue
    for (const a of i.addresses) if (a.family === 4 && !isLoopback(a.ip)) out.push({ip: a.ip, loc: a.loc})
  }
  return out
}

interface Candidate {
  readonly proto: L4
  readonly port: number
  readonly hinted: boolean
  readonly standIn?: boolean
}

const MAX_PORTS = 8

function portMatches(matches: readonly Match[], vip: IpAddr): {proto?: L4; port?: number} | undefined {
  let proto: L4 | undefined
  let port: number | undefined
  for (const m of matches) {
    if (m.kind === 'addr' && m.dir === 'dst' && !m.neg && !prefixContains(m.prefix, vip)) return undefined
    if (m.kind === 'proto' && !m.neg && m.proto !== 'all') proto = l4Name(m.proto)
    if (m.kind === 'port' && !m.neg && (m.dir === 'dst' || m.dir === 'any') && m.ranges[0]) port = m.ranges[0][0]
  }
  return {proto, port}
}

/** The chains of a table reachable from its builtin chains `from`. */
function chainsFrom(rs: IptablesRuleset, table: string, from: readonly string[]): string[] {
  const t = rs.tables.get(table)
  if (!t) return []
  const seen = new Set<string>()
  const queue = from.filter((c) => t.chains.has(c))
  while (queue.length) {
    const c = queue.shift()!
    if (seen.has(c)) continue
    seen.add(c)
    for (const r of t.chains.get(c)?.rules ?? []) if (r.target && (r.target.kind === 'jump' || r.target.kind === 'goto')) queue.push(r.target.chain)
  }
  return [...seen]
}

/** The ports to probe: the flows asked about, then the ports the forwarding host's FORWARD and mangle rules name for the VIP. */
function candidates(d: HostView, vip: IpAddr, hints: readonly FlowHint[]): Candidate[] {
  const out: Candidate[] = []
  const add = (c: Candidate) => {
    if (out.length < MAX_PORTS && !out.some((x) => x.proto === c.proto && x.port === c.port)) out.push(c)
  }
  for (const f of hints) if (ipEquals(f.vip.ip, vip)) add({proto: f.proto, port: f.vip.port, hinted: true})
  for (const rs of d.fw?.rulesets ?? []) {
    if (rs.family !== 4) continue
    for (const [table, builtins] of [['filter', ['FORWARD']], ['mangle', ['PREROUTING', 'FORWARD']]] as const) {
      for (const c of chainsFrom(rs, table, builtins)) {
        for (const r of rs.tables.get(table)?.chains.get(c)?.rules ?? []) {
          const pm = portMatches(r.matches, vip)
          if (pm?.port !== undefined) add({proto: pm.proto ?? 'tcp', port: pm.port, hinted: false})
        }
      }
    }
  }
  if (out.length === 0) add({proto: 'tcp', port: 80, hinted: false, standIn: true})
  return out
}

function interesting(res: RouteResult): Evidence[] {
  return routeEvidence(res)
    .filter((l) => !isDefaultRule(l.text))
    .map((l) => ev(l))
}

/** The forwarded DR-shaped paths and the fwmark policy routes among the hosts. */
export function findForwards(w: World, hints: readonly FlowHint[]): {forwards: ForwardPath[]; policyRoutes: PolicyRoute[]} {
  const forwards: ForwardPath[] = []
  const policyRoutes: PolicyRoute[] = []
  for (const rs of w.hosts) {
    for (const {ip: vip, loc: vipLoc} of loVips(rs)) {
      for (const d of w.hosts) {
        if (d === rs || !d.rt || d.isLocal(vip) !== false) continue
        const iif = d.oifFor(w.client.ip) ?? UNKNOWN_IF
        for (const c of candidates(d, vip, hints)) {
          const probe = flowPacket({src: w.client.ip, sport: w.client.port, dst: vip, dport: c.port, proto: c.proto}, 'SYN')
          const pre = d.fw?.runHook('PREROUTING', probe, d.env({iif, ct: ctView('NEW')}), true)
          // a DNAT service is not a routed path; a drop before routing is kept (forward-blocks-routed-vip names it:
          // a `ct state invalid drop` before conntrack drops every packet of the path), routed as the packet was then
          if (pre && (pre.verdict === 'QUEUE' || pre.nat)) continue
          const mark = pre?.packet.mark ?? 0
          const r = d.route({dst: vip, src: w.client.ip, mark, iif, proto: probe.proto, sport: probe.sport, dport: probe.dport})
          if (!r || r.kind !== 'unicast' || !r.gateway) continue
          if (w.ownerOf(r.gateway, d) !== rs) continue
          forwards.push({
            host: d,
            vip,
            proto: c.proto,
            port: c.port,
            hinted: c.hinted,
            ...(c.standIn ? {standIn: true} : {}),
            probe,
            iif,
            mark,
            route: r,
            gateway: r.gateway,
            realserver: rs,
            rsIif: rs.addressOf(r.gateway)?.iface.name,
            vipLoc,
            routeEvidence: interesting(r),
            ret: returnRoute(w, d, rs, vip),
          })
        }
        // policy routes by fwmark that lead the VIP to this realserver
        for (const rule of d.rt.rules ?? []) {
          if (rule.fwmark === undefined || rule.fwmark === 0 || rule.action !== 'lookup' || rule.not || rule.family !== 4) continue
          const marked = d.route({dst: vip, src: w.client.ip, mark: rule.fwmark, iif})
          if (!marked || marked.kind !== 'unicast' || marked.rule !== rule || !marked.gateway || w.ownerOf(marked.gateway, d) !== rs) continue
          const plain = d.route({dst: vip, src: w.client.ip, mark: 0, iif})
          if (plain && plain.kind === 'unicast' && plain.gateway && w.ownerOf(plain.gateway, d) === rs) continue // reached without the mark too
          policyRoutes.push({host: d, vip, mark: rule.fwmark, mask: rule.fwmask ?? 0xffffffff, rule, route: marked, realserver: rs, vipLoc, evidence: interesting(marked), unmarked: routeWords(d, plain, w)})
        }
      }
    }
  }
  return {forwards, policyRoutes}
}

function routeWords(d: HostView, r: RouteResult | undefined, w: World): string {
  if (!r || r.kind === 'none') return `${d.name} has no route for it (ENETUNREACH: the client gets an ICMP network unreachable)`
  if (r.kind === 'local') return `it is delivered to ${d.name}'s own stack`
  if (r.kind !== 'unicast') return `it meets a ${r.kind} route`
  const to = r.gateway ? w.ownerOf(r.gateway, d) : undefined
  return `it is routed ${r.gateway ? `via ${formatIp(r.gateway)}${to ? ` (${to.name})` : ''}` : 'on-link'}${r.dev ? ` dev ${r.dev}` : ''}`
}

export function describeForward(f: ForwardPath): string {
  return `${f.proto.toUpperCase()} ${formatIp(f.vip)}:${f.port} (routed by ${f.host.name} to ${f.realserver.name} via ${formatIp(f.gateway)}${f.mark ? `, fwmark 0x${f.mark.toString(16)}` : ''}${f.standIn ? `; port 80 stands in: no rule names the VIP's port, check --vip ${formatIp(f.vip)}:PORT checks the real one` : ''})`
}
