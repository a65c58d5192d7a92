// route-drops-service: the route a balanced connection needs ends in nothing. A realserver's answers to the client
// (from the VIP in LVS-DR/TUN and routed setups, from its own address in NAT) or the balancer's packets toward a
// backend are looked up by the kernel's policy rules (ip rule: from, fwmark, ...) and then a table; a table that
// holds an unreachable, blackhole or prohibit route for them (fib_table_lookup: -EHOSTUNREACH, -EINVAL, -EACCES), or
// no table that routes them at all (-ENETUNREACH), drops every packet of the service there. Policy routing added for
// another purpose (a source-based rule toward a second uplink whose table lacks a default route, a fwmark rule that
// also catches the service's marks) is the usual cause.
import {formatEndpoint, formatIp, ipEquals, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {routeEvidence, type FlowKey, type RouteResult} from '../dataplane/routing.js'
import {customRule, finding} from './engine/helpers.js'
import {answerSource, ev, locRef, locRefs, UNKNOWN_IF, type HostView} from './engine/host.js'
import {markFix, markSetters, policyRuleFor, withoutRule, type MarkSetter} from './engine/marks.js'
import {clientIif} from './engine/flows.js'
import {hookByDstClass} from './engine/path.js'
import {shadowOf} from './engine/nft-view.js'
import {isDefaultRule} from './engine/returnpath.js'
import {backendOutcome} from './engine/flows.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import {arrivalOf} from './engine/arrival.js'
import {received, sent} from './engine/path.js'
import {flowPacket, PROTO_NUM, type Endpoints} from './engine/packets.js'
import type {Loc} from '../model/source.js'
import type {FixOp} from './engine/fix.js'
import type {Packet} from '../dataplane/packet.js'
import type {HookResult} from './engine/firewall.js'
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
 * The route of a host's answers (from `e.src` to `e.dst`): looked up when they are sent, then again when a mark set in
 * OUTPUT where it reroutes (iptables' mangle table, an nft chain of type route: ip_route_me_harder) changes it, with
 * that mark. `setters`: the rules that set it; `unmarked`: the route without it.
 */
interface AnswerRoute {
  readonly r: RouteResult | undefined
  readonly mark: number
  readonly marked: readonly Loc[]
  readonly setters: readonly MarkSetter[]
  readonly unmarked?: RouteResult
  /** the lookup's key (without the mark) */
  readonly key: FlowKey
}

/**
 * The connection mark the host's own rules give a connection whose first packet arrives on `iif` (a CONNMARK or nft
 * `ct mark set` in PREROUTING/INPUT for what came in on one interface, restored into the answers' mark in OUTPUT: the
 * usual reply routing of a host with two uplinks). 0 without a firewall or an interface.
 */
function requestCtMark(h: HostView, req: Endpoints, iif: string | undefined): number {
  if (!h.fw || !iif) return 0
  const res = received(h, flowPacket(req, 'SYN'), {state: 'NEW', iif, local: true})
  return res.hooks.at(-1)?.ctMark ?? 0
}

/**
 * The address the realservers of a DNAT service see the connections from, and so answer to: the client's, or the one
 * the balancer's POSTROUTING translates it to (SNAT's, MASQUERADE's: the address the balancer sends from).
 */
function answeredTo(svc: LbService, b: Backend, w: World): {ip: IpAddr; how?: string} {
  const d = svc.host
  const probe = svc.probes[0]
  const client = {ip: w.client.ip}
  if (svc.kind !== 'dnat' || !d.fw || !probe) return client
  const o = backendOutcome(svc, b)
  const e: Endpoints = {src: w.client.ip, sport: w.client.port, dst: b.ip, dport: b.port ?? probe.dport ?? 0, proto: svc.proto, mark: o?.mark ?? probe.mark}
  const post = hookByDstClass(d, 'POSTROUTING', e, 'SYN', {state: 'NEW', ctMark: o?.ctMark ?? 0, iif: clientIif(d, w, svc.vip, svc), oif: d.oifFor(b.ip) ?? UNKNOWN_IF, dnat: true, orig: {dst: probe.dst, dport: probe.dport}}, true)
  const nat = post?.nat
  if (nat?.kind === 'SNAT' && nat.to?.ip) return {ip: nat.to.ip, how: `${d.name} SNATs them to ${formatIp(nat.to.ip)} (${locRef(nat.decision.loc)})`}
  const masq = nat?.kind === 'MASQUERADE' ? d.sourceFor(b.ip) : undefined
  if (masq) return {ip: masq, how: `${d.name} masquerades them to ${formatIp(masq)} (${locRef(nat!.decision.loc)})`}
  return client
}

function answerRoute(h: HostView, e: Endpoints, ctMark = 0): AnswerRoute {
  // a UDP server on 0.0.0.0 is routed without a source (answerSource): `ip rule from ...` does not apply to it
  const src = answerSource(h, e.proto, e.src, e.sport)
  const key = {dst: e.dst, ...(src ? {src} : {}), proto: PROTO_NUM[e.proto], sport: e.sport, dport: e.dport}
  const plain = h.route(key)
  if (!h.fw) return {r: plain, mark: 0, marked: [], setters: [], key}
  const pkt = flowPacket(e, e.proto === 'tcp' ? 'SYNACK' : 'RDATA')
  const res = sent(h, pkt, {state: 'ESTABLISHED', dir: 'REPLY', ...(ctMark ? {ctMark} : {})})
  const out = res.hooks.find((x) => x.hook === 'OUTPUT')
  const setters = out ? markSetters(out, pkt).filter((x) => x.reroutes) : []
  const mark = setters.length ? out!.packet.mark : 0
  if (mark === 0) return {r: plain, mark: 0, marked: [], setters: [], key}
  return {r: h.route({...key, mark}), mark, marked: setters.map((x) => x.rule.loc), setters, unmarked: plain, key}
}

/**
 * The exact way out for answers looked up to a dead route: when a mark sends them there, an exemption before the
 * rules that mark them (engine/marks.ts); when a policy rule of the host's own picks the dead table (`ip rule add from
 * 10.1.0.0/24 lookup 100` for a second uplink), a policy rule for the service's answers just before it, to the table
 * the lookup finds without it. undefined when neither leads them to a usable route.
 */
function exemptFromMark(h: HostView, a: AnswerRoute, e: Endpoints): {summary: string; ops: FixOp[]} | undefined {
  if (!dead(a.r)) return undefined
  const what = `the answers from ${formatEndpoint({ip: e.src, port: e.sport})}`
  const m = a.mark ? markFix(h, a.setters, 'src', a.r, a.unmarked, what) : undefined
  if (m) return m
  return bypassFix(h, a.r, {...a.key, mark: a.mark}, {addr: e.src, port: e.sport}, e.proto, 'src', what)
}

/** A policy rule for the flow before the one that sends it to the dead route (engine/marks.ts policyRuleFor). */
function bypassFix(h: HostView, r: RouteResult, key: FlowKey, flow: {addr: IpAddr; port?: number}, proto: string, side: 'src' | 'dst', what: string): {summary: string; ops: FixOp[]} | undefined {
  // `from ADDR` does not match a lookup made without a source (a UDP server on 0.0.0.0)
  if (side === 'src' && !key.src) return undefined
  const alive = withoutRule(h, r, key)
  if (!alive || (alive.kind !== 'unicast' && alive.kind !== 'local')) return undefined
  const by = policyRuleFor(r, alive, flow, proto, side)
  if (!by) return undefined
  return {
    summary: `route ${what} by table ${by.table} before the policy rule ${by.rule} sends them to its table: a policy rule for them alone at preference ${by.pref} (the rule stays for the rest of ${h.name}'s traffic; or give that table a usable route, if the rule is meant for these packets too)`,
    ops: by.ops,
  }
}

/**
 * What the host's PREROUTING does to the client's first packet arriving on `iif` (marks, DNAT), and the route it is
 * looked up to afterwards; with the rules that set the mark and the route without it.
 */
function arrivingRoute(h: HostView, syn: Packet, iif: string | undefined, dst?: IpAddr): {r: RouteResult | undefined; pre?: HookResult; setters: readonly MarkSetter[]; unmarked?: RouteResult} {
  const pre = h.fw ? received(h, syn, {state: 'NEW', iif}).hooks.find((x) => x.hook === 'PREROUTING') : undefined
  const p = pre?.packet ?? syn
  const key = {dst: dst ?? p.dst, src: p.src, iif, proto: p.proto, sport: p.sport, dport: p.dport}
  const mark = pre?.packet.mark ?? 0
  const r = h.route({...key, mark})
  if (!pre || !mark) return {r, pre, setters: []}
  return {r, pre, setters: markSetters(pre, syn), unmarked: h.route({...key, mark: syn.mark})}
}

function markWords(a: {mark: number; marked: readonly Loc[]; setters: readonly MarkSetter[]}): string {
  const where = a.setters.every((x) => !shadowOf(x.ruleset)) ? 'mangle OUTPUT' : 'OUTPUT'
  return a.mark ? ` (${where} marks them 0x${a.mark.toString(16)}${a.marked.length ? `, ${a.marked.map((l) => locRef(l)).join(', ')}` : ''}, and the kernel routes them again with that mark)` : ''
}

/**
 * The answers a realserver sends back through the balancer (its route's next hop is one of the balancer's addresses:
 * NAT/DNAT replies, or a DR-shaped path routed back through it): the balancer routes them on to the client, as a
 * packet received on that interface (iif rules apply), with the mark its PREROUTING gives them. `e`: the answers as
 * the realserver sends them; `client`: where the balancer sends them on (the de-SNATed destination).
 */
function throughBalancer(d: HostView, rs: HostView, e: Endpoints, client: {ip: IpAddr; port: number}, ctMark: number): {r: RouteResult; iif: string; fix?: {summary: string; ops: FixOp[]}; marked: readonly Loc[]} | undefined {
  const src = answerSource(rs, e.proto, e.src, e.sport)
  const out = rs.route({dst: e.dst, ...(src ? {src} : {}), proto: PROTO_NUM[e.proto], sport: e.sport, dport: e.dport})
  if (!out || out.kind !== 'unicast') return undefined
  const gw = out.gateway ?? e.dst
  const iif = d.addressOf(gw)?.iface.name
  if (!iif || iif === 'lo' || !d.rt) return undefined
  const back: Endpoints = {src: e.src, sport: e.sport, dst: client.ip, dport: client.port, proto: e.proto}
  const pkt = flowPacket(back, e.proto === 'tcp' ? 'SYNACK' : 'RDATA')
  const pre = d.fw ? received(d, pkt, {state: 'ESTABLISHED', dir: 'REPLY', iif, ctMark}).hooks.find((x) => x.hook === 'PREROUTING') : undefined
  if (pre && pre.verdict !== 'ACCEPT') return undefined
  const mark = pre?.packet.mark ?? 0
  const key: FlowKey = {dst: client.ip, src: e.src, iif, proto: PROTO_NUM[e.proto], sport: e.sport, dport: client.port}
  const r = d.route({...key, mark})
  if (!dead(r)) return undefined
  const what = `the answers from ${formatEndpoint({ip: e.src, port: e.sport})}`
  const setters = pre && mark ? markSetters(pre, pkt).filter((x) => x.reroutes) : []
  const m = setters.length ? markFix(d, setters, 'src', r, d.route({...key, mark: 0}), what) : undefined
  return {r, iif, fix: m ?? bypassFix(d, r, {...key, mark}, {addr: e.src, port: e.sport}, e.proto, 'src', what), marked: m?.marked ?? []}
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  // the clients are not known (no flow asked about with its client, no client snapshot with an address): the world's
  // client is a made-up outside address, and a host with no route at all toward it may serve only the clients of its
  // connected networks (no default route): only a route that is there and refuses (unreachable, blackhole, prohibit,
  // a policy rule) is said for such answers
  const madeUpClient = !w.client.fromSnapshot && !w.flows.some((f) => f.client)
  const report = (h: HostView, r: RouteResult, what: string, base: readonly Evidence[], summary?: string, ops: readonly FixOp[] = [], toClient = false) => {
    if (toClient && madeUpClient && r.kind === 'none') return
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
        if (dead(a.r)) report(h, a.r, `${h.name}'s own service of ${describeService(svc)} answers from ${formatEndpoint({ip: b.ip, port})} to the clients (e.g. ${formatIp(client)})${markWords(a)}`, [ev(svc.loc, h.name), ...a.marked.map((l) => ev(l, h.name))], x?.summary, x?.ops, true)
        continue
      }
      // the balancer toward the backend (LVS-NAT, DNAT: the translated packet; DR/TUN: toward the realserver)
      const d = svc.host
      if (d.rt && d.isLocal(b.ip) === false) {
        const o = backendOutcome(svc, b)
        const what = `${d.name} sends the connections of ${describeService(svc)} on to ${describeBackend(b)}`
        if (svc.kind === 'dnat') {
          // the client's SYN through the whole of PREROUTING (every table's marks, not only the DNAT rules' ruleset)
          const iif = clientIif(d, w, svc.vip, svc)
          const a = arrivingRoute(d, {...probe, src: client, sport: w.client.port}, iif, b.ip)
          const r = dead(a.r) || !o?.mark ? a.r : d.route({dst: b.ip, src: client, iif, mark: o.mark})
          const port = b.port ?? probe.dport
          const x = dead(a.r) ? markFix(d, a.setters, 'dst', a.r, a.unmarked, `the connections of ${describeService(svc)}`, {addr: b.ip, port}) : undefined
          const y = !x && dead(a.r) ? bypassFix(d, a.r, {dst: b.ip, src: client, iif, mark: a.pre?.packet.mark ?? 0, proto: PROTO_NUM[svc.proto], sport: w.client.port, dport: port}, {addr: b.ip, port}, svc.proto, 'dst', `the connections of ${describeService(svc)} to ${describeBackend(b)}`) : undefined
          if (dead(r)) report(d, r, `${what}${x ? ` (PREROUTING marks them 0x${(a.pre?.packet.mark ?? 0).toString(16)}, ${locRefs(x.marked)}, and the kernel routes them with that mark)` : ''}`, [ev(svc.loc, d.name), ev(b.loc, d.name), ...(x?.marked ?? []).map((l) => ev(l, d.name))], (x ?? y)?.summary, (x ?? y)?.ops)
        } else {
          const r = d.route({dst: b.ip, mark: o?.mark ?? probe.mark})
          if (dead(r)) report(d, r, what, [ev(svc.loc, d.name), ev(b.loc, d.name)])
        }
      }
      // the realserver's answers to the client
      const rs = b.owner
      if (!rs?.rt || rs === d) continue
      const direct = b.method === 'route' || b.method === 'tunnel'
      const src: IpAddr = direct ? probe.dst : b.ip
      if (direct && rs.isLocal(src) !== true) continue // dr-realserver-no-vip's
      const to = direct ? {ip: client} : answeredTo(svc, b, w)
      const e: Endpoints = {src, sport: direct ? (probe.dport ?? 0) : b.port || (probe.dport ?? 0), dst: to.ip, dport: w.client.port, proto: svc.proto}
      // the connection mark its own rules give the request (restored into the answers' mark in OUTPUT)
      const rsIif = direct ? undefined : rs.addressOf(b.ip)?.iface.name
      const a = answerRoute(rs, e, requestCtMark(rs, {src: to.ip, sport: w.client.port, dst: src, dport: e.sport, proto: svc.proto}, rsIif))
      const x = exemptFromMark(rs, a, e)
      if (dead(a.r)) report(rs, a.r, `${rs.name} answers the clients of ${describeService(svc)} from ${formatIp(src)} ${to.how ? `to ${formatIp(to.ip)} (${to.how})` : `(e.g. ${formatIp(client)})`}${markWords(a)}`, [ev(svc.loc, d.name), ev(b.loc, d.name), ...a.marked.map((l) => ev(l, rs.name))], x?.summary, x?.ops, true)
      else if (!direct && svc.kind === 'dnat') {
        // the balancer routes the answers on to the client
        const t = throughBalancer(d, rs, e, w.client, backendOutcome(svc, b)?.ctMark ?? 0)
        if (t) report(d, t.r, `${d.name} routes the answers of ${describeService(svc)} from ${describeBackend(b)} on to the clients (e.g. ${formatIp(client)}; they arrive on ${t.iif})`, [ev(svc.loc, d.name), ev(b.loc, d.name), ...t.marked.map((l) => ev(l, d.name))], t.fix?.summary, t.fix?.ops, true)
      }
    }
  }
  for (const f of w.forwards) {
    const rs = f.realserver
    if (!rs.rt) continue
    // a balancer's own service of that VIP on the host it is routed to answers from its backends (followed above)
    if (w.services.some((svc) => svc.host === rs && svc.vip !== undefined && ipEquals(svc.vip, f.vip) && (svc.port === undefined || svc.port === f.port))) continue
    const e: Endpoints = {src: f.vip, sport: f.port, dst: client, dport: w.client.port, proto: f.proto}
    const a = answerRoute(rs, e, requestCtMark(rs, {src: client, sport: w.client.port, dst: f.vip, dport: f.port, proto: f.proto}, f.rsIif))
    const base = [...f.routeEvidence.map((x) => ({...x, host: f.host.name})), ev(f.vipLoc, rs.name)]
    if (a.r && dead(a.r)) {
      const x = exemptFromMark(rs, a, e)
      report(rs, a.r, `${rs.name} answers the clients of ${describeForward(f)} from ${formatIp(f.vip)} (e.g. ${formatIp(client)})${markWords(a)}`, [...base, ...a.marked.map((l) => ev(l, rs.name))], x?.summary, x?.ops, true)
      continue
    }
    // answers routed back through the forwarding host: it routes them on to the client
    const t = throughBalancer(f.host, rs, e, w.client, 0)
    if (t) report(f.host, t.r, `${f.host.name} routes the answers of ${describeForward(f)} on to the clients (e.g. ${formatIp(client)}; they arrive on ${t.iif})`, [...base, ...t.marked.map((l) => ev(l, f.host.name))], t.fix?.summary, t.fix?.ops, true)
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
    const arr = arrivingRoute(h, syn, a.iif)
    const pre = arr.pre
    // a DNAT/REDIRECT service (its backends are routed above)
    if (pre && (pre.nat?.kind === 'DNAT' || pre.nat?.kind === 'REDIRECT')) continue
    const r = arr.r
    if (!dead(r)) continue
    const owner = w.ownerOf(f.vip.ip, h)
    const vip = formatIp(f.vip.ip)
    const x = markFix(h, arr.setters, 'dst', r, arr.unmarked, `the packets of the flow to ${formatEndpoint(f.vip)}`)
    // dropped before routing: the filter rules' (their rule says so); a mark set before the drop that sends the flow to
    // a dead route is said too, so that the flow works once the drop is fixed (a routed VIP whose route the mark hides
    // is no forwarded path to the rules that judge those)
    if (pre && pre.verdict !== 'ACCEPT' && !x) continue
    report(
      h,
      r,
      `The packets of the flow asked about, ${formatIp(a.client)} to ${formatEndpoint(f.vip)}, arrive at ${h.name} (${a.how}); ${vip} is ${owner ? `an address of ${owner.name}, not of ${h.name},` : 'an address of none of the hosts given'} and no balancer of ${h.name} takes them, so ${h.name} routes them on${x ? ` (PREROUTING marks them 0x${(pre?.packet.mark ?? 0).toString(16)}, ${locRefs(x.marked)}, and the kernel routes them with that mark)` : ''}`,
      [...a.evidence, ...(owner ? [ev(owner.addressOf(f.vip.ip)!.addr.loc, owner.name)] : []), ...(x?.marked ?? []).map((l) => ev(l, h.name))],
      x?.summary ??
        (owner
          ? `give ${h.name} a route for ${vip} toward ${owner.name}`
          : `put ${vip} on the host meant to serve it (ip addr add ${vip}/32 dev <if> there, with a route from ${h.name} to it if that is another host), or correct the address the clients use: which host should hold it the snapshots cannot tell`),
      x?.ops,
    )
  }
  return out
})
