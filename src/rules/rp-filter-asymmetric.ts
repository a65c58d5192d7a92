// rp-filter-asymmetric: strict reverse-path filtering (rp_filter effective = max(conf.all, conf.<if>) = 1)
// drops a packet whose source is routed back through another interface than the one it came in on
// (fib_validate_source). Load balancing makes such paths on purpose: IPIP realservers receive on the tunnel
// and answer via eth0; DR realservers and directors with several interfaces can do the same.
import {formatIp, ipEquals, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {customRule, finding, unverifiedFinding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {arpSenderAddress, routeEvidence, validateSource} from '../dataplane/routing.js'
import {isDefaultRule} from './engine/returnpath.js'
import {withoutRule} from './engine/marks.js'
import type {FixOp} from './engine/fix.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'rp-filter-asymmetric',
  title: 'strict rp_filter on an interface whose return route leaves by another',
  severity: 'error',
  description:
    "With strict reverse-path filtering (rp_filter = 1, effective value max(conf.all, conf.<if>)) the kernel drops a packet when the route back to its source does not leave by the interface it arrived on. A TUN realserver receives on its IPIP tunnel and answers via its LAN interface; a DR realserver or a director with separate client- and server-side interfaces can be asymmetric too. Loose mode (2) keeps the check without the asymmetry problem. The same check judges a neighbour's ARP requests (arp_process routes each one with its sender as the source): a host whose policy routing leaves no route from its own address back to the sender (an `ip rule from ADDR lookup T` whose table cannot reach it) never answers the director's or the realserver's ARP request under rp_filter 1 or 2, and nothing reaches it; loose mode does not help there.",
  sources: [
    '002_470e9850247cd7a0.txt (LVS-HOWTO 29.3: rp_filter would probably need to be disabled)',
    'Documentation/networking/ip-sysctl.rst (rp_filter)',
    'net/ipv4/fib_frontend.c fib_validate_source',
    'net/ipv4/arp.c arp_process (ip_route_input_noref of the request, sender as source), arp_solicit (the sender address, arp_announce)',
    'test/kernel random scenario rnd17-0 (a realserver\'s `ip rule from 10.1.0.10 lookup 100` with table 100 unreachable under rp_filter 1: the kernel logged martian source 10.1.0.10 from 10.1.0.1 for the ARP request; rp_filter 2 did not help)',
  ],
}

/** The interface a realserver receives the service's packets on. */
function arrival(rs: HostView, svc: LbService, b: Backend): string | undefined {
  if (b.method === 'tunnel') {
    const vipIf = svc.vip ? rs.addressOf(svc.vip)?.iface : undefined
    if (vipIf && vipIf.name !== 'lo') return vipIf.name
    return (rs.snap.interfaces ?? []).find((i) => i.kind === 'ipip' || i.name === 'tunl0')?.name
  }
  return rs.addressOf(b.ip)?.iface.name
}

function check(h: HostView, w: World, iif: string, dst: IpAddr, context: string): RuleFinding | undefined {
  const rpf = h.sysctl.conf('rp_filter', iif, 'max')
  if (rpf.value !== 1) return undefined
  const r = h.route({dst: w.client.ip, src: dst})
  if (!r || r.kind !== 'unicast') return undefined
  const devs = new Set([r.dev, ...(r.route.nexthops ?? []).map((n) => n.dev)].filter((d): d is string => !!d))
  if (devs.has(iif)) return undefined
  return finding(meta, h.name, {
    message: `${context}: packets from clients (e.g. ${formatIp(w.client.ip)}) arrive on ${iif}, but the route back to them leaves via ${[...devs].join(', ')}; strict rp_filter (effective max(conf.all, conf.${iif}) = 1) drops them.`,
    evidence: [...rpf.lines.map((l) => ev(l.loc)), ...routeEvidence(r).filter((l) => !/^(0|32766|32767):\s+from all lookup (local|main|default)$/.test(l.text.trim())).map((l) => ev(l))],
    fix: {summary: `use loose reverse-path filtering on ${iif} (the effective value is the larger of conf.all and conf.${iif}, so 2 on ${iif} is enough)`, ops: [{kind: 'sysctl', key: `net.ipv4.conf.${iif.replace(/\./g, '/')}.rp_filter`, value: '2'}]},
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  const missing = new Map<LbService, Backend[]>()
  for (const svc of w.services) {
    // the director: VIP traffic arrives where the VIP is, answers (NAT) or nothing (DR) go back by the route
    const d = svc.host
    if (svc.vip && svc.kind === 'ipvs') {
      const at = d.addressOf(svc.vip)
      if (at && at.iface.name !== 'lo' && !seen.has(`${d.name}|${at.iface.name}`)) {
        seen.add(`${d.name}|${at.iface.name}`)
        const f = check(d, w, at.iface.name, svc.vip, `${describeService(svc)} on ${d.name}`)
        if (f) out.push(f)
      }
    }
    for (const b of svc.backends) {
      if (b.local) continue
      if (!b.owner) {
        if (b.method === 'tunnel' || b.method === 'route') missing.set(svc, [...(missing.get(svc) ?? []), b])
        continue
      }
      const rs = b.owner
      const iif = arrival(rs, svc, b)
      if (!iif || !rs.rt || seen.has(`${rs.name}|${iif}`)) continue
      seen.add(`${rs.name}|${iif}`)
      const dst = b.method === 'route' || b.method === 'tunnel' ? (svc.vip ?? b.ip) : b.ip
      const f = check(rs, w, iif, dst, `${describeBackend(b)} is a ${b.method === 'tunnel' ? 'TUN' : b.method === 'route' ? 'DR' : 'NAT'} realserver of ${describeService(svc)} on ${d.name}`)
      if (f) out.push({...f, evidence: [ev(svc.loc, d.name), ev(b.loc, d.name), ...f.evidence]})
    }
  }
  // forwarded DR-shaped paths (engine/forward.ts): the realserver receives the VIP where the gateway address is
  for (const fp of w.forwards) {
    const rs = fp.realserver
    if (!fp.rsIif || !rs.rt || seen.has(`${rs.name}|${fp.rsIif}`)) continue
    seen.add(`${rs.name}|${fp.rsIif}`)
    const f = check(rs, w, fp.rsIif, fp.vip, `${rs.name} receives ${describeForward(fp)}`)
    if (f) out.push({...f, evidence: [...fp.routeEvidence.map((e) => ({...e, host: fp.host.name})), ev(fp.vipLoc), ...f.evidence]})
  }
  // the ARP requests of each hop of the balanced connections, as the next hop validates them
  const asked = new Set<string>()
  for (const x of arpHops(w)) {
    const key = `${x.from.name}|${x.dev}|${formatIp(x.nh)}`
    if (asked.has(key)) continue
    asked.add(key)
    const f = arpCheck(w, x)
    if (f) out.push(f)
  }
  for (const [svc, bs] of missing) {
    out.push(unverifiedFinding(meta, svc.host.name, `${svc.host.name} forwards ${describeService(svc)} by DR/TUN to ${bs.map(describeBackend).join(', ')}, but no snapshot of ${bs.length > 1 ? 'those realservers' : 'that realserver'} was given: their reverse-path filtering could not be checked.`, bs.map((b) => `rp_filter and routes of the host owning ${formatIp(b.ip)} (no snapshot)`), [ev(svc.loc)]))
  }
  return out
})

// ---- the next hop's answer to an ARP request ---------------------------------------------------------------

interface ArpHop {
  /** the host that sends, and asks for the next hop's address */
  readonly from: HostView
  readonly dev: string
  readonly nh: IpAddr
  /** the source of the packet that made it ask (arp_announce decides whether the request carries it) */
  readonly src?: IpAddr
  /** what the hop carries, in words */
  readonly what: string
  readonly evidence: readonly Evidence[]
}

/** A host sends `what` (to `dst`, from `src`) by its route: the hop to its next hop, if the route has one. */
function hopOf(from: HostView, dst: IpAddr, src: IpAddr | undefined, what: string, base: readonly Evidence[]): ArpHop | undefined {
  const r = from.route({dst, ...(src ? {src} : {})})
  if (!r || r.kind !== 'unicast' || !r.dev || r.dev === 'lo') return undefined
  const evidence = [...base, ...routeEvidence(r).filter((l) => !isDefaultRule(l.text)).map((l) => ev(l, from.name))]
  return {from, dev: r.dev, nh: r.gateway ?? dst, src, what, evidence}
}

/** The hops of the balanced connections whose next hop is a host among the snapshots. */
function arpHops(w: World): ArpHop[] {
  const out: ArpHop[] = []
  const push = (x: ArpHop | undefined) => {
    if (x) out.push(x)
  }
  const client = w.client.ip
  for (const svc of w.services) {
    const d = svc.host
    const probe = svc.probes[0]
    for (const b of svc.backends) {
      if (b.local || b.share === 0 || b.weight === 0 || !b.owner || b.owner === d || !d.rt) continue
      push(hopOf(d, b.ip, svc.kind === 'dnat' ? client : undefined, `${d.name} sends the connections of ${describeService(svc)} to ${describeBackend(b)}`, [ev(svc.loc, d.name), ev(b.loc, d.name)]))
      const rs = b.owner
      if (!rs.rt) continue
      const direct = b.method === 'route' || b.method === 'tunnel'
      const src = direct ? probe?.dst : b.ip
      if (src) push(hopOf(rs, client, src, `${rs.name} answers the clients of ${describeService(svc)} from ${formatIp(src)}`, [ev(svc.loc, d.name), ev(b.loc, d.name)]))
    }
  }
  for (const f of w.forwards) {
    const base = f.routeEvidence.map((e) => ({...e, host: f.host.name}))
    push(hopOf(f.host, f.vip, client, `${f.host.name} routes ${describeForward(f)}`, base))
    if (f.realserver.rt) push(hopOf(f.realserver, client, f.vip, `${f.realserver.name} answers the clients of ${describeForward(f)} from ${formatIp(f.vip)}`, [...base, ev(f.vipLoc, f.realserver.name)]))
  }
  return out
}

/** The host, and its interface (not lo), that holds `ip`: the one that answers the ARP request for it. */
function linkOwner(w: World, ip: IpAddr, except: HostView): {host: HostView; iface: string} | undefined {
  for (const h of w.hosts) {
    if (h === except) continue
    for (const i of h.snap.interfaces ?? []) if (i.name !== 'lo' && i.addresses.some((a) => ipEquals(a.ip, ip))) return {host: h, iface: i.name}
  }
  return undefined
}

/**
 * The next hop's own validation of the ARP request (arp_process: ip_route_input of a packet from the sender address
 * to the address asked for; fib_validate_source with rp_filter). A failure means no answer: the sender never learns
 * where to send, and every packet of the hop is dropped. Judged only where rp_filter decides (1 or 2).
 */
function arpCheck(w: World, x: ArpHop): RuleFinding | undefined {
  const owner = linkOwner(w, x.nh, x.from)
  if (!owner?.host.rt || !x.from.rt) return undefined
  const h = owner.host
  const sip = arpSenderAddress(x.from.rt, x.from.inetConf(), x.dev, x.nh, x.src)
  if (!sip || ipEquals(sip, x.nh)) return undefined
  const conf = h.inetConf()
  const rpf = conf.max('rp_filter', owner.iface)
  if (rpf === 0) return undefined
  const bad = validateSource(h.rt!, conf, {src: sip, dst: x.nh, iif: owner.iface})
  if (!bad) return undefined
  const key = {dst: sip, src: x.nh, iif: 'lo'}
  const rev = h.route(key)
  if (!rev) return undefined
  const rpLines = h.sysctl.conf('rp_filter', owner.iface, 'max').lines.map((l) => ev(l.loc, h.name))
  const revEvidence = routeEvidence(rev).filter((l) => !isDefaultRule(l.text)).map((l) => ev(l, h.name))
  const asks = `${x.from.name} asks for ${formatIp(x.nh)} on ${x.dev} (ARP request from ${formatIp(sip)})`
  let summary: string
  let ops: FixOp[] = []
  // arp_announce 0 puts the packet's own source in the request, even one of another subnet (a realserver answering
  // from its address on the other link); the address of the device in the next hop's subnet would pass
  const own = arpSenderAddress(x.from.rt, x.from.inetConf(), x.dev, x.nh, undefined)
  if (own && !ipEquals(own, sip) && !validateSource(h.rt!, conf, {src: own, dst: x.nh, iif: owner.iface})) {
    const announce = x.from.sysctl.conf('arp_announce', x.dev, 'max')
    return finding(meta, x.from.name, {
      message: `${x.what}; ${asks}, but ${h.name} never answers it: arp_process validates the request's sender like a packet's source on ${owner.iface}, and ${bad}. ${x.from.name} puts the packet's own source ${formatIp(sip)} in the request (arp_announce ${announce.value}); its address ${formatIp(own)} on ${x.dev} would be answered. ${x.from.name} never learns where to send, so the packets are dropped before they leave.`,
      evidence: [...x.evidence, ...announce.lines.map((l) => ev(l.loc, x.from.name)), ...rpLines, ...revEvidence],
      fix: {
        summary: `let ${x.from.name} ask from its address in the next hop's subnet (arp_announce 2 on ${x.dev}: the effective value is the larger of conf.all and conf.${x.dev}), or give ${h.name} a route back to ${formatIp(sip)} on ${owner.iface}`,
        ops: [{kind: 'sysctl', key: `net.ipv4.conf.${x.dev.replace(/\./g, '/')}.arp_announce`, value: '2'}],
      },
    })
  }
  if (rev.kind === 'unicast' && rpf === 1) {
    // a route back that leaves by another interface: loose mode is enough
    summary = `use loose reverse-path filtering on ${owner.iface} (the effective value is the larger of conf.all and conf.${owner.iface}, so 2 on ${owner.iface} is enough)`
    ops = [{kind: 'sysctl', key: `net.ipv4.conf.${owner.iface.replace(/\./g, '/')}.rp_filter`, value: '2'}]
  } else {
    const rule = rev.kind !== 'none' ? rev.rule : undefined
    const alive = withoutRule(h, rev, key)
    const ok = alive && alive.kind === 'unicast' && (rpf === 2 || alive.dev === owner.iface || (alive.route.nexthops ?? []).some((n) => n.dev === owner.iface))
    if (rule && !isDefaultRule(rule.loc.text) && ok && alive.kind === 'unicast' && alive.rule?.table && rule.priority > 1) {
      const pref = rule.priority - 1
      summary = `make ${formatIp(sip)} routable from ${h.name}'s address ${formatIp(x.nh)} again: a policy rule for that pair at preference ${pref}, before ${rule.loc.text.trim()}, looks it up in table ${alive.rule.table} (the rule stays for the rest of ${h.name}'s traffic; rp_filter 2 would not help: loose mode needs a route too)`
      ops = [{kind: 'cmd', text: `ip rule add from ${formatIp(x.nh)} to ${formatIp(sip)} lookup ${alive.rule.table} pref ${pref}`}]
    } else {
      summary = `give ${h.name} a route from ${formatIp(x.nh)} back to ${formatIp(sip)} on ${owner.iface} (its policy rules and tables leave none), or turn reverse-path filtering off on ${owner.iface} (conf.all and conf.${owner.iface})`
    }
  }
  return finding(meta, h.name, {
    message: `${x.what}; ${asks}, but ${h.name} never answers it: arp_process validates the request's sender like a packet's source on ${owner.iface}, and ${bad}. ${x.from.name} never learns where to send, so the packets are dropped before they leave.`,
    evidence: [...x.evidence, ...rpLines, ...revEvidence],
    fix: {summary, ops},
  })
}
