// route-drops-service: the route a balanced connection needs ends in nothing. A realserver's answers to the client
// (from the VIP in LVS-DR/TUN and routed setups, from its own address in NAT) or the balancer's packets toward a
// backend are looked up by the kernel's policy rules (ip rule: from, fwmark, ...) and then a table; a table that
// holds an unreachable, blackhole or prohibit route for them (fib_table_lookup: -EHOSTUNREACH, -EINVAL, -EACCES), or
// no table that routes them at all (-ENETUNREACH), drops every packet of the service there. Policy routing added for
// another purpose (a source-based rule toward a second uplink whose table lacks a default route, a fwmark rule that
// also catches the service's marks) is the usual cause.
import {formatEndpoint, formatIp, ipEquals, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {routeEvidence, type RouteResult} from '../dataplane/routing.js'
import {customRule, finding} from './engine/helpers.js'
import {answerSource, ev, locRef, type HostView} from './engine/host.js'
import {isDefaultRule} from './engine/returnpath.js'
import {backendOutcome} from './engine/flows.js'
import {describeBackend, describeService} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import {arrivalOf} from './engine/arrival.js'
import {received, sent} from './engine/path.js'
import {flowPacket, PROTO_NUM, type Endpoints} from './engine/packets.js'
import type {Loc} from '../model/source.js'
import type {IptRule} from '../model/iptables.js'
import type {FixOp} from './engine/fix.js'
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

/**
 * The route of a host's answers (from `e.src` to `e.dst`): looked up when they are sent, then again when mangle OUTPUT
 * changes their mark (ipt_mangle_out / an nft route chain: ip_route_me_harder), with that mark. `marked`: the rules
 * that set it, for the message and the evidence.
 */
function answerRoute(h: HostView, e: Endpoints): {r: RouteResult | undefined; mark: number; marked: readonly Loc[]; markRule?: IptRule} {
  // a UDP server on 0.0.0.0 is routed without a source (answerSource): `ip rule from ...` does not apply to it
  const src = answerSource(h, e.proto, e.src, e.sport)
  const key = {dst: e.dst, ...(src ? {src} : {}), proto: PROTO_NUM[e.proto], sport: e.sport, dport: e.dport}
  if (!h.fw) return {r: h.route(key), mark: 0, marked: []}
  const res = sent(h, flowPacket(e, e.proto === 'tcp' ? 'SYNACK' : 'RDATA'), {state: 'ESTABLISHED', dir: 'REPLY'})
  const mangle = res.hooks.find((x) => x.hook === 'OUTPUT')?.runs.find((x) => x.table === 'mangle')
  const mark = mangle?.result.packet.mark ?? 0
  if (mark === 0) return {r: h.route(key), mark: 0, marked: []}
  const rules = mangle!.result.trail.filter((x) => x.target?.kind === 'MARK' || x.target?.kind === 'CONNMARK')
  return {r: h.route({...key, mark}), mark, marked: rules.map((x) => x.loc), markRule: rules[0]}
}

/**
 * The exact way out when mangle OUTPUT's mark sends the answers to the dead route: an ACCEPT for them just before
 * the first rule that marks them (it ends the mangle table for these packets only; their mark stays, nothing
 * reroutes them). undefined when the marking rule is not an iptables rule of the snapshot.
 */
function exemptFromMark(h: HostView, a: {mark: number; markRule?: IptRule}, e: Endpoints): {summary: string; ops: FixOp[]} | undefined {
  const rule = a.markRule
  if (!a.mark || !rule || !h.fw) return undefined
  const rs = h.fw.rulesets.find((x) => x.tables.get('mangle')?.chains.get(rule.chain)?.rules.includes(rule))
  if (!rs) return undefined
  const spec = `-s ${formatIp(e.src)}/32 -p ${e.proto} -m ${e.proto} --sport ${e.sport} -j ACCEPT`
  return {
    summary: `let the answers from ${formatEndpoint({ip: e.src, port: e.sport})} leave unmarked: an ACCEPT for them before ${locRef(rule.loc)} ends the mangle table for them alone (or remove the policy rule or the route that sends the marked packets nowhere, if the mark is for nothing else)`,
    ops: h.fw.fixer.insertAt(rs, 'mangle', rule.chain, rule.index, spec),
  }
}

function markWords(a: {mark: number; marked: readonly Loc[]}): string {
  return a.mark ? ` (mangle OUTPUT marks them 0x${a.mark.toString(16)}${a.marked.length ? `, ${a.marked.map((l) => locRef(l)).join(', ')}` : ''}, and the kernel routes them again with that mark)` : ''
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  const report = (h: HostView, r: RouteResult, what: string, base: readonly Evidence[], summary?: string, ops: readonly FixOp[] = []) => {
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
            summary ??
            (r.kind === 'none'
              ? `give ${h.name} a route for them (a default route toward the router the clients are behind)`
              : `remove the ${r.kind} route or the policy rule that sends these packets to it, or add a usable route to that table`),
          ops,
        },
      }),
    )
  }
  const client = w.client.ip
  for (const svc of w.services) {
    const probe = svc.probes[0]
    if (!probe) continue
    for (const b of svc.backends) {
      if (b.share === 0 || b.weight === 0) continue
      if (b.local) {
        // the balancer's own service behind its DNAT/REDIRECT answers from the translated address (un-DNATed in POSTROUTING, after the route)
        const h = svc.host
        if (svc.kind !== 'dnat' || !h.rt) continue
        const port = b.port || probe.dport || 0
        const e: Endpoints = {src: b.ip, sport: port, dst: client, dport: w.client.port, proto: svc.proto}
        const a = answerRoute(h, e)
        const x = exemptFromMark(h, a, e)
        if (dead(a.r)) report(h, a.r, `${h.name}'s own service of ${describeService(svc)} answers from ${formatEndpoint({ip: b.ip, port})} to the clients (e.g. ${formatIp(client)})${markWords(a)}`, [ev(svc.loc, h.name), ...a.marked.map((l) => ev(l, h.name))], x?.summary, x?.ops)
        continue
      }
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
      const e: Endpoints = {src, sport: direct ? (probe.dport ?? 0) : b.port || (probe.dport ?? 0), dst: client, dport: w.client.port, proto: svc.proto}
      const a = answerRoute(rs, e)
      const x = exemptFromMark(rs, a, e)
      if (dead(a.r)) report(rs, a.r, `${rs.name} answers the clients of ${describeService(svc)} from ${formatIp(src)} (e.g. ${formatIp(client)})${markWords(a)}`, [ev(svc.loc, d.name), ev(b.loc, d.name), ...a.marked.map((l) => ev(l, rs.name))], x?.summary, x?.ops)
    }
  }
  for (const f of w.forwards) {
    const rs = f.realserver
    if (!rs.rt) continue
    const src = answerSource(rs, f.proto, f.vip, f.port)
    const r = rs.route({dst: client, ...(src ? {src} : {})})
    if (dead(r)) report(rs, r, `${rs.name} answers the clients of ${describeForward(f)} from ${formatIp(f.vip)} (e.g. ${formatIp(client)})`, [...f.routeEvidence.map((e) => ({...e, host: f.host.name})), ev(f.vipLoc, rs.name)])
  }
  // a flow asked about (check --vip) that no balancer takes, arriving at a host that does not hold its VIP: the
  // kernel routes it on (ip_route_input_slow), and a VIP that is nowhere and routed nowhere ends there
  for (const f of w.flows) {
    const a = arrivalOf(w, f)
    const h = a?.host
    if (!a || !h?.rt) continue
    if (h.isLocal(f.vip.ip) === true) {
      // a service on the host's own stack (realserver-filter-blocks-service follows its filter): its answers' route
      if (w.services.some((svc) => svc.host === h && svc.vip !== undefined && ipEquals(svc.vip, f.vip.ip) && (svc.port === undefined || svc.port === f.vip.port))) continue
      const e: Endpoints = {src: f.vip.ip, sport: f.vip.port, dst: a.client, dport: f.clientPort ?? w.client.port, proto: f.proto}
      const ans = answerRoute(h, e)
      const x = exemptFromMark(h, ans, e)
      if (dead(ans.r)) report(h, ans.r, `${h.name} serves the flow asked about (${formatIp(a.client)} to ${formatEndpoint(f.vip)}) on its own stack and answers from ${formatIp(f.vip.ip)}${markWords(ans)}`, [...a.evidence, ...ans.marked.map((l) => ev(l, h.name))], x?.summary, x?.ops)
      continue
    }
    if (h.isLocal(f.vip.ip) !== false) continue
    // an IPVS service of that VIP is vip-not-local's
    if ((h.snap.ipvs?.services ?? []).some((s) => s.vip !== undefined && ipEquals(s.vip, f.vip.ip))) continue
    const syn = flowPacket({src: a.client, sport: f.clientPort ?? w.client.port, dst: f.vip.ip, dport: f.vip.port, proto: f.proto}, 'SYN')
    const pre = received(h, syn, {state: 'NEW', iif: a.iif}).hooks.find((x) => x.hook === 'PREROUTING')
    // dropped before routing (the filter rules'), or a DNAT/REDIRECT service (its backends are routed above)
    if (pre && (pre.verdict !== 'ACCEPT' || pre.nat?.kind === 'DNAT' || pre.nat?.kind === 'REDIRECT')) continue
    const r = h.route({dst: f.vip.ip, src: a.client, mark: pre?.packet.mark ?? 0, iif: a.iif, proto: PROTO_NUM[f.proto], sport: syn.sport, dport: syn.dport})
    if (!dead(r)) continue
    const owner = w.ownerOf(f.vip.ip, h)
    const vip = formatIp(f.vip.ip)
    report(
      h,
      r,
      `The packets of the flow asked about, ${formatIp(a.client)} to ${formatEndpoint(f.vip)}, arrive at ${h.name} (${a.how}); ${vip} is ${owner ? `an address of ${owner.name}, not of ${h.name},` : 'an address of none of the hosts given'} and no balancer of ${h.name} takes them, so ${h.name} routes them on`,
      [...a.evidence, ...(owner ? [ev(owner.addressOf(f.vip.ip)!.addr.loc, owner.name)] : [])],
      owner
        ? `give ${h.name} a route for ${vip} toward ${owner.name}`
        : `put ${vip} on the host meant to serve it (ip addr add ${vip}/32 dev <if> there, with a route from ${h.name} to it if that is another host), or correct the address the clients use: which host should hold it the snapshots cannot tell`,
    )
  }
  return out
})
