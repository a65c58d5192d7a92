// route-drops-service: the route a balanced connection needs ends in nothing. A realserver's answers to the client
// (from the VIP in LVS-DR/TUN and routed setups, from its own address in NAT) or the balancer's packets toward a
// backend are looked up by the kernel's policy rules (ip rule: from, fwmark, ...) and then a table; a table that
// holds an unreachable, blackhole or prohibit route for them (fib_table_lookup: -EHOSTUNREACH, -EINVAL, -EACCES), or
// no table that routes them at all (-ENETUNREACH), drops every packet of the service there. Policy routing added for
// another purpose (a source-based rule toward a second uplink whose table lacks a default route, a fwmark rule that
// also catches the service's marks) is the usual cause.
import {formatIp, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {routeEvidence, type RouteResult} from '../dataplane/routing.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {isDefaultRule} from './engine/returnpath.js'
import {backendOutcome} from './engine/flows.js'
import {describeBackend, describeService} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'route-drops-service',
  title: 'a route the balanced connections need is unreachable, blackhole or prohibit, or missing',
  severity: 'error',
  description:
    "A realserver's answers to the clients, and the balancer's packets toward a backend, are routed through the policy rules (ip rule) and a table. When that lookup ends in an unreachable, blackhole or prohibit route, or in no route at all, the kernel drops every such packet: the service fails for those clients while the rest of the host's traffic may work. Policy routing added for another purpose (a source rule toward a second uplink whose table has no default route, a fwmark rule that catches the service's marks) is the usual cause.",
  sources: [
    'net/ipv4/fib_rules.c, fib_trie.c fib_table_lookup (route types unreachable, blackhole, prohibit: -EHOSTUNREACH, -EINVAL, -EACCES; no match: the next rule, then -ENETUNREACH)',
    'ip-rule(8), ip-route(8) (route types)',
    'test/kernel random scenarios (policy routing of the realservers\' answers and of marked packets: the kernel dropped them, trace said so, check was silent)',
  ],
}

const FATE: Readonly<Record<string, string>> = {
  unreachable: 'an unreachable route: the kernel drops them and answers ICMP host unreachable',
  blackhole: 'a blackhole route: the kernel drops them silently',
  prohibit: 'a prohibit route: the kernel drops them and answers ICMP administratively prohibited',
  none: 'no route at all (no table any rule reaches has one): the kernel drops them (network unreachable)',
}

function dead(r: RouteResult | undefined): r is Exclude<RouteResult, {kind: 'local' | 'broadcast' | 'unicast'}> {
  return !!r && (r.kind === 'unreachable' || r.kind === 'blackhole' || r.kind === 'prohibit' || r.kind === 'none')
}

function evidenceOf(r: RouteResult, host: string): Evidence[] {
  return routeEvidence(r)
    .filter((l) => !isDefaultRule(l.text))
    .map((l) => ev(l, host))
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  const report = (h: HostView, r: RouteResult, what: string, base: readonly Evidence[]) => {
    const key = `${h.name}|${what}`
    if (seen.has(key)) return
    seen.add(key)
    const rule = r.kind !== 'none' ? r.rule : undefined
    const viaRule = rule && !isDefaultRule(rule.loc.text) ? ` (the policy rule ${rule.loc.text.trim()} chooses the table)` : ''
    out.push(
      finding(meta, h.name, {
        message: `${what}: ${h.name} looks them up to ${FATE[r.kind]}${viaRule}. The connections fail there.`,
        evidence: [...base, ...evidenceOf(r, h.name)],
        fix: {
          summary:
            r.kind === 'none'
              ? `give ${h.name} a route for them (a default route toward the router the clients are behind)`
              : `remove the ${r.kind} route or the policy rule that sends these packets to it, or add a usable route to that table`,
          ops: [],
        },
      }),
    )
  }
  const client = w.client.ip
  for (const svc of w.services) {
    const probe = svc.probes[0]
    if (!probe) continue
    for (const b of svc.backends) {
      if (b.local || b.share === 0 || b.weight === 0) continue
      // the balancer toward the backend (LVS-NAT, DNAT: the translated packet; DR/TUN: toward the realserver)
      const d = svc.host
      if (d.rt && d.isLocal(b.ip) === false) {
        const o = backendOutcome(svc, b)
        const r = d.route({dst: b.ip, src: svc.kind === 'dnat' ? client : undefined, mark: o?.mark ?? probe.mark})
        if (dead(r)) report(d, r, `${d.name} sends the connections of ${describeService(svc)} on to ${describeBackend(b)}`, [ev(svc.loc, d.name), ev(b.loc, d.name)])
      }
      // the realserver's answers to the client
      const rs = b.owner
      if (!rs?.rt || rs === d) continue
      const direct = b.method === 'route' || b.method === 'tunnel'
      const src: IpAddr = direct ? probe.dst : b.ip
      if (direct && rs.isLocal(src) !== true) continue // dr-realserver-no-vip's
      const r = rs.route({dst: client, src})
      if (dead(r)) report(rs, r, `${rs.name} answers the clients of ${describeService(svc)} from ${formatIp(src)} (e.g. ${formatIp(client)})`, [ev(svc.loc, d.name), ev(b.loc, d.name)])
    }
  }
  for (const f of w.forwards) {
    const rs = f.realserver
    if (!rs.rt) continue
    const r = rs.route({dst: client, src: f.vip})
    if (dead(r)) report(rs, r, `${rs.name} answers the clients of ${describeForward(f)} from ${formatIp(f.vip)} (e.g. ${formatIp(client)})`, [...f.routeEvidence.map((e) => ({...e, host: f.host.name})), ev(f.vipLoc, rs.name)])
  }
  return out
})
