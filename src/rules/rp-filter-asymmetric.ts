// rp-filter-asymmetric: strict reverse-path filtering (rp_filter effective = max(conf.all, conf.<if>) = 1)
// drops a packet whose source is routed back through another interface than the one it came in on
// (fib_validate_source). Load balancing makes such paths on purpose: IPIP realservers receive on the tunnel
// and answer via eth0; DR realservers and directors with several interfaces can do the same.
import {formatIp, type IpAddr} from '../model/ip.js'
import {customRule, finding, unverifiedFinding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {routeEvidence} from '../dataplane/routing.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'rp-filter-asymmetric',
  title: 'strict rp_filter on an interface whose return route leaves by another',
  severity: 'error',
  description:
    "With strict reverse-path filtering (rp_filter = 1, effective value max(conf.all, conf.<if>)) the kernel drops a packet when the route back to its source does not leave by the interface it arrived on. A TUN realserver receives on its IPIP tunnel and answers via its LAN interface; a DR realserver or a director with separate client- and server-side interfaces can be asymmetric too. Loose mode (2) keeps the check without the asymmetry problem.",
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3: rp_filter would probably need to be disabled)', 'Documentation/networking/ip-sysctl.rst (rp_filter)', 'net/ipv4/fib_frontend.c fib_validate_source'],
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
  for (const [svc, bs] of missing) {
    out.push(unverifiedFinding(meta, svc.host.name, `${svc.host.name} forwards ${describeService(svc)} by DR/TUN to ${bs.map(describeBackend).join(', ')}, but no snapshot of ${bs.length > 1 ? 'those realservers' : 'that realserver'} was given: their reverse-path filtering could not be checked.`, bs.map((b) => `rp_filter and routes of the host owning ${formatIp(b.ip)} (no snapshot)`), [ev(svc.loc)]))
  }
  return out
})
