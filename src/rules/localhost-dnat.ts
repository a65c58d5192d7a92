// localhost-dnat: a connection to 127.0.0.1 DNAT'ed to another host keeps its 127/8 source; the output route
// refuses a loopback source on a non-loopback device unless route_localnet (__mkroute_output), and even then
// the backend could not answer 127.0.0.1 without a SNAT ("Networking is a little more than IPs and netmasks").
// The other way round, a PREROUTING DNAT of outside clients to 127.0.0.1 (a service bound to localhost published
// on the host's address): ip_route_input_slow drops a 127/8 destination that arrives on a device without
// route_localnet as a martian (IN_DEV_NET_ROUTE_LOCALNET: the device's or conf.all), and the local answer's
// 127.0.0.1 source may not leave through it either (__mkroute_output).
import {formatEndpoint, formatIp, hostPrefix, isLoopback, parseIp, parsePrefix, prefixCovers, type IpAddr} from '../model/ip.js'
import type {IptablesRuleset, IptRule} from '../model/iptables.js'
import {hostRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {received, rulesetFacts, sent} from './engine/path.js'
import {flowPacket, type Endpoints} from './engine/packets.js'
import {ctView, PACKET_ORDER, SERVER_PACKETS, type FlowPacket} from './engine/ctmodel.js'
import {describeReplay, guessesOf, type Replay} from './engine/flows.js'
import {acceptBeforeFirst} from './engine/stateful.js'
import type {Decision, HookResult} from './engine/firewall.js'
import type {RouteResult} from '../dataplane/routing.js'
import type {Loc} from '../model/source.js'
import {reachableFrom, selectorOf} from './engine/world.js'
import {specTokens} from './engine/fix.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {routeEvidence} from '../dataplane/routing.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'localhost-dnat',
  title: 'DNAT between 127.0.0.0/8 and a real interface that the kernel will not route',
  severity: 'error',
  description:
    "A local connection to 127.0.0.1 that nat OUTPUT redirects to another host still has the source 127.0.0.1: the kernel refuses to route a loopback source out of a real interface unless net.ipv4.conf.<if>.route_localnet = 1, and the backend could not answer it anyway without a SNAT/MASQUERADE. Local connections never pass nat PREROUTING, so a PREROUTING DNAT for 127/8 never applies to them. The other way round, a PREROUTING DNAT of outside clients to 127.0.0.1 (a service bound to localhost published on the host's address) is dropped as a martian destination unless net.ipv4.conf.<in-if>.route_localnet = 1 (or conf.all).",
  sources: ['004_71e2450df16223ab.txt (case one: 3306 -> 3197)', 'net/ipv4/route.c __mkroute_output (IN_DEV_ROUTE_LOCALNET), ip_route_input_slow (martian_destination)', 'Documentation/networking/ip-sysctl.rst (route_localnet)'],
}

const LOOPBACK = parsePrefix('127.0.0.0/8')!
const LO = parseIp('127.0.0.1')!
const SPORT = 40000

function matchesLoopback(rule: IptRule, rs: IptablesRuleset): {dst: IpAddr} | undefined {
  const sel = selectorOf(rs, rule)
  if (sel.dst && !prefixCovers(LOOPBACK, sel.dst) && !prefixCovers(sel.dst, LOOPBACK)) return undefined
  const dst = sel.dst && prefixCovers(LOOPBACK, sel.dst) ? {family: 4 as const, value: sel.dst.value === LOOPBACK.value ? LO.value : sel.dst.value} : LO
  return {dst}
}

function outputCase(h: HostView, rs: IptablesRuleset, rule: IptRule): RuleFinding | undefined {
  const fw = h.fw!
  const m = matchesLoopback(rule, rs)
  if (!m) return undefined
  const sel = selectorOf(rs, rule)
  const proto = sel.proto ?? 'tcp'
  const pkt = flowPacket({src: LO, sport: SPORT, dst: m.dst, dport: sel.dport ?? 80, proto}, 'SYN')
  const r = sent(h, pkt, {state: 'NEW', oif: 'lo'})
  const out = r.hooks.find((x) => x.hook === 'OUTPUT')
  if (!out?.nat || out.nat.kind !== 'DNAT' || out.nat.decision.rule?.loc !== rule.loc) return undefined
  const to = out.nat.to?.ip
  if (!to || isLoopback(to) || h.isLocal(to) === true) return undefined
  const toPort = out.nat.to?.port ?? pkt.dport ?? 0
  // the DNAT routes the packet again (ip_route_me_harder in nat OUTPUT), with the mark the raw, mangle and nat
  // tables gave it so far (a mark of the filter table comes later and routes nothing)
  const natMark = out.runs.find((x) => x.table === 'nat')?.result.packet.mark ?? 0
  const dev = h.oifFor(to, LO, natMark) ?? h.oifFor(to, LO) ?? 'all'
  const localnet = h.sysctl.conf('route_localnet', dev, 'or')
  // nat POSTROUTING on that device, also when filter OUTPUT stopped the SYN before it
  const post = fw.runHook('POSTROUTING', out.packet, h.env({oif: dev === 'all' ? UNKNOWN_IF : dev, ct: ctView('NEW')}), true)
  const masq = post.nat && (post.nat.kind === 'SNAT' || post.nat.kind === 'MASQUERADE') ? post.nat.decision : undefined
  // the filter table sees the connection after the DNAT: OUTPUT addressed to the backend (the SYN NEW, the rest
  // ESTABLISHED), INPUT the answers from the backend to 127.0.0.1 (the masquerade undone in PREROUTING, the DNAT
  // only after INPUT's filter)
  const drops = filterDrops(h, {src: LO, sport: SPORT, dst: to, dport: toPort, proto}, dev)
  const rerouted = h.route({dst: to, src: LO, mark: natMark})
  const deadRoute = rerouted && (rerouted.kind === 'unreachable' || rerouted.kind === 'blackhole' || rerouted.kind === 'prohibit' || rerouted.kind === 'none') ? rerouted : undefined
  if (localnet.value === 1 && masq && drops.length === 0 && !deadRoute) return undefined
  const problems: string[] = []
  const ops: FixOp[] = []
  const markLocs: Loc[] = []
  if (localnet.value !== 1) problems.push(`net.ipv4.conf.${dev === 'all' ? 'all' : `{all,${dev}}`}.route_localnet is ${localnet.lines.length ? '0' : 'not set (default 0)'}: the kernel will not route the 127.0.0.1 source out of ${dev === 'all' ? 'a real interface' : dev} and drops the SYN`)
  if (!masq) problems.push(`no SNAT/MASQUERADE in nat POSTROUTING rewrites the 127.0.0.1 source: ${formatIp(to)} could not answer it`)
  if (deadRoute) {
    const via = deadRoute.kind !== 'none' && deadRoute.rule && !/from all lookup (local|main|default)$/.test(deadRoute.rule.loc.text.trim()) ? ` (${deadRoute.rule.loc.text.trim()})` : ''
    const exempt = natMark ? exemptFromMark(h, out, rerouted, to, {dst: m.dst, dport: pkt.dport ?? 0, proto}) : undefined
    problems.push(
      `after the DNAT the kernel routes the SYN again (ip_route_me_harder)${natMark ? ` with mark 0x${natMark.toString(16)}` : ''} and finds ${deadRoute.kind === 'none' ? 'no route' : `a ${deadRoute.kind} route`} to ${formatIp(to)}${via}: it is dropped there ` +
        (exempt ? `(${locRef(exempt.rule.loc)} sets that mark; without it the route is usable)` : '(no command below changes that: the route or the rule that marks the packet has to)'),
    )
    if (exempt) {
      ops.push(...exempt.ops)
      markLocs.push(exempt.rule.loc)
    }
  }
  for (const d of drops) problems.push(`${describeReplay(d.replay)}${d.side === 'out' ? ` (filter OUTPUT sees the connection addressed to ${formatEndpoint({ip: to, port: toPort})})` : ` (filter INPUT sees the answers from ${formatEndpoint({ip: to, port: toPort})}, before the DNAT is undone)`}`)
  if (localnet.value !== 1) ops.unshift({kind: 'sysctl', key: `net.ipv4.conf.${dev === 'all' ? 'all' : dev.replace(/\./g, '/')}.route_localnet`, value: '1'})
  if (!masq) {
    const d = post.runs.find((x) => x.table === 'nat')?.decision
    const s = {src: LOOPBACK, dst: {family: 4 as const, value: to.value, len: 32}, proto, dport: toPort}
    if (d) ops.push(...fw.fixer.masqueradeBefore(d, s))
    else ops.push(...fw.fixer.insertAt(rs, 'nat', 'POSTROUTING', Infinity, `-s 127.0.0.0/8 -d ${formatIp(to)}/32 -p ${s.proto} -m ${s.proto} --dport ${s.dport} -j MASQUERADE`))
  }
  ops.push(...acceptBeforeFirst(fw, drops, {out: {dst: hostPrefix(to), proto, dport: toPort}, in: {src: hostPrefix(to), proto, sport: toPort}}))
  return finding(meta, h.name, {
    message:
      `${locRef(rule.loc)} DNATs local connections for ${formatEndpoint({ip: m.dst, port: pkt.dport ?? 0})} to ${formatEndpoint({ip: to, port: toPort})}, but ` +
      (localnet.value === 1 && masq ? `${h.name}'s own filter drops them:\n` : 'they keep the source 127.0.0.1:\n') +
      problems.map((p) => `  ${p}`).join('\n') +
      (localnet.value === 1 && masq ? '' : `\nConnecting to the host's own LAN address instead of 127.0.0.1 works, because its source is then that address.`),
    ...(localnet.value === 1 && masq ? {title: "the host's own connections DNATed from 127/8 are dropped after the DNAT"} : {}),
    evidence: [ev(rule.loc), ...localnet.lines.map((l) => ev(l.loc)), ...(masq ? [ev(masq.loc)] : []), ...(deadRoute ? routeEvidence(deadRoute).map((l) => ev(l)) : []), ...markLocs.map((l) => ev(l)), ...drops.map((d) => ev(d.decision.loc))],
    unverified: guessesOf(drops.map((d) => d.replay)),
    fix: {summary: `allow the loopback source to be routed out and masquerade it toward the backend${drops.length ? ', and accept the DNATed connection where the filter drops it' : ''}`, ops},
  })
}

/**
 * The rule of the raw or mangle OUTPUT chain that gives the local connection the mark its DNAT is rerouted with,
 * when the unmarked packet has a usable route: an ACCEPT for the connection just before it (the packet is not yet
 * translated there: 127.0.0.1:port) ends that table for it, and the DNAT routes it unmarked.
 */
function exemptFromMark(h: HostView, out: HookResult, marked: RouteResult | undefined, to: IpAddr, pre: {dst: IpAddr; dport: number; proto: string}): {rule: IptRule; ops: FixOp[]} | undefined {
  const plain = h.route({dst: to, src: LO})
  if (!marked || plain?.kind !== 'unicast') return undefined
  for (const run of out.runs) {
    if (run.table !== 'raw' && run.table !== 'mangle') continue
    const rule = run.result.trail.find((x) => x.target?.kind === 'MARK' || x.target?.kind === 'CONNMARK')
    if (!rule) continue
    const rs = h.fw!.rulesets.find((x) => x.tables.get(run.table)?.chains.get(rule.chain)?.rules.includes(rule))
    if (!rs) return undefined
    return {rule, ops: h.fw!.fixer.insertAt(rs, run.table, rule.chain, rule.index, `-d ${formatIp(pre.dst)}/32 -p ${pre.proto} -m ${pre.proto} --dport ${pre.dport} -j ACCEPT`)}
  }
  return undefined
}

/**
 * The packets of a local connection DNATed to `e.dst` that the host's filter drops whatever their conntrack state
 * says: the client's (OUTPUT, after the DNAT) and the backend's answers (INPUT, to 127.0.0.1 from the backend).
 */
function filterDrops(h: HostView, e: Endpoints, dev: string): {replay: Replay; decision: Decision; side: 'in' | 'out'}[] {
  const out: {replay: Replay; decision: Decision; side: 'in' | 'out'}[] = []
  const oif = dev === 'all' ? UNKNOWN_IF : dev
  const back: Endpoints = {src: e.dst, sport: e.dport, dst: e.src, dport: e.sport, proto: e.proto}
  const kinds: readonly FlowPacket[] = e.proto === 'tcp' ? PACKET_ORDER : ['SYN', 'RDATA']
  for (const kind of kinds) {
    const answer = SERVER_PACKETS.includes(kind)
    const state = kind === 'SYN' ? 'NEW' : 'ESTABLISHED'
    // one report per chain: the first packet it drops
    if (out.some((x) => x.side === (answer ? 'in' : 'out'))) continue
    const pkt = flowPacket(answer ? back : e, kind)
    // the client's packets are already translated (the filter hooks only: nat OUTPUT ran for the SYN above)
    const res = answer ? received(h, pkt, {state, dir: 'REPLY', iif: oif, local: true}) : sent(h, pkt, {state, oif})
    const b = res.blocked
    if (!b || (b.hook.hook !== 'OUTPUT' && b.hook.hook !== 'INPUT')) continue
    out.push({replay: {kind, state, place: 'both-ways', result: res, packet: pkt}, decision: b.decision, side: answer ? 'in' : 'out'})
  }
  return out
}

function preroutingCase(h: HostView, rs: IptablesRuleset, rule: IptRule): RuleFinding | undefined {
  const sel = selectorOf(rs, rule)
  const viaLo = viaLoopback(rule)
  if (!viaLo && !(sel.dst && prefixCovers(LOOPBACK, sel.dst))) return undefined
  const t = rule.target
  const to = t?.kind === 'DNAT' ? t.to[0]?.from : undefined
  if (!to || isLoopback(to) || h.isLocal(to) === true) return undefined
  // a local process serving the address itself (Docker's docker-proxy for `-p 127.0.0.1:8080:80`, whose nft rules
  // keep such a dead PREROUTING DNAT and skip 127/8 in nat OUTPUT on purpose): the connections are served anyway
  const lo = sel.dst && prefixCovers(LOOPBACK, sel.dst) ? {family: 4 as const, value: sel.dst.value} : LO
  const proto = sel.proto === 'udp' ? 'udp' : 'tcp'
  const listeners = h.snap.listeners
  if (listeners && sel.dport !== undefined && listenerFor(listeners, proto, lo, sel.dport, 'lo')) return undefined
  const tokens = specTokens(rule.loc.text).map((x, i, a) => (x === '-i' && a[i + 1] === 'lo' ? '-o' : x))
  const ops: FixOp[] = [...h.fw!.fixer.insertAt(rs, 'nat', 'OUTPUT', Infinity, tokens.join(' '))]
  ops.push({kind: 'sysctl', key: 'net.ipv4.conf.all.route_localnet', value: '1'})
  ops.push(...h.fw!.fixer.insertAt(rs, 'nat', 'POSTROUTING', Infinity, `-s 127.0.0.0/8 -d ${formatIp(to)}/32 -j MASQUERADE`))
  return finding(meta, h.name, {
    message:
      `${locRef(rule.loc)} DNATs ${viaLo ? 'packets arriving on lo' : 'packets to 127.0.0.0/8'} in nat PREROUTING to ${formatIp(to)}, but local connections are NATed in nat OUTPUT and never consult nat PREROUTING, ` +
      'and packets for 127/8 from other hosts are martians: the rule never redirects anything.',
    evidence: [ev(rule.loc)],
    // without the socket list a local server of that address (docker-proxy) cannot be ruled out
    severity: listeners ? undefined : 'warning',
    unverified: listeners || sel.dport === undefined ? [] : [`whether a local process serves ${formatEndpoint({ip: lo, port: sel.dport})} itself (docker-proxy does for Docker's -p 127.0.0.1:...): the snapshot has no listening sockets (ss-ltnu.txt)`],
    fix: {summary: 'do the DNAT in nat OUTPUT for local connections, route the loopback source out and masquerade it', ops},
  })
}

/**
 * A PREROUTING DNAT of packets from other hosts to 127/8: routed as local only where route_localnet is on for the
 * device they arrive on. The rule's `-i` names it; without one, it fires only when no interface of the host with
 * an address has route_localnet (conf.all or its own): then no outside client can reach the service.
 */
function toLoopbackCase(h: HostView, rs: IptablesRuleset, rule: IptRule): RuleFinding | undefined {
  const t = rule.target
  const to = t?.kind === 'DNAT' ? t.to[0]?.from : undefined
  if (!to || !isLoopback(to) || viaLoopback(rule)) return undefined
  let iif: string | undefined
  for (const m of rule.matches) if (m.kind === 'iface' && m.dir === 'in' && !m.neg && !m.name.endsWith('+')) iif = m.name
  const devs = iif ? [iif] : (h.snap.interfaces ?? []).filter((i) => i.name !== 'lo' && i.addresses.some((a) => a.family === 4)).map((i) => i.name)
  if (devs.length === 0) devs.push('all')
  const values = devs.map((d) => ({dev: d, c: h.sysctl.conf('route_localnet', d, 'or')}))
  if (values.some((v) => v.c.value === 1)) return undefined
  const dev = iif ?? 'all'
  const sel = selectorOf(rs, rule)
  const port = t?.kind === 'DNAT' ? (t.to[0]?.portFrom ?? sel.dport) : sel.dport
  const lines = values.flatMap((v) => v.c.lines)
  const seen = new Set<unknown>()
  return finding(meta, h.name, {
    message:
      `${locRef(rule.loc)} DNATs ${sel.dst ? `connections for ${formatIp(sel.dst)}` : 'connections'}${iif ? ` arriving on ${iif}` : ''} to ${formatEndpoint({ip: to, port: port ?? 0})}, ` +
      `but net.ipv4.conf.${iif ? `{all,${iif}}` : 'all'}.route_localnet is ${lines.length ? '0' : 'not set (default 0)'}${iif ? '' : ` (and on ${devs.join(', ')})`}: ` +
      `the kernel drops a 127/8 destination arriving on a real interface as a martian, so the SYN never reaches the local service, and its answer from 127.0.0.1 could not leave either.\n` +
      `Binding the service to the host's address (or 0.0.0.0) and DNATing to that address needs no route_localnet.`,
    evidence: [ev(rule.loc), ...lines.filter((l) => !seen.has(l) && seen.add(l)).map((l) => ev(l.loc))],
    fix: {summary: `let ${iif ?? 'the interfaces'} route 127/8 destinations (kube-proxy sets the same for its localhost node ports)`, ops: [{kind: 'sysctl', key: `net.ipv4.conf.${dev.replace(/\./g, '/')}.route_localnet`, value: '1'}]},
  })
}

/** `-i lo` among the rule's own matches (a PREROUTING DNAT of packets arriving on lo). */
function viaLoopback(rule: IptRule): boolean {
  const ms = rule.matches
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!
    if (m.kind === 'iface' && m.dir === 'in' && !m.neg && m.name === 'lo') return true
  }
  return false
}

/** matchesLoopback's test alone (no packet made): is the rule's destination unknown, or about 127/8? */
function aboutLoopback(rule: IptRule, rs: IptablesRuleset): boolean {
  const dst = selectorOf(rs, rule).dst
  return !dst || prefixCovers(LOOPBACK, dst) || prefixCovers(dst, LOOPBACK)
}

export default hostRule(meta, (h) => {
  const out: RuleFinding[] = []
  for (const rs of h.fw?.rulesets ?? []) {
    if (rs.family !== 4) continue
    const nat = rs.tables.get('nat')
    if (!nat) continue
    // the DNAT rules in table order (found by the pass path.ts makes over the ruleset for its own needs);
    // a chain's reachability asked once, and only for a DNAT rule that could be about 127/8
    let chain: string | undefined
    let fromOutput: boolean | undefined
    let fromPre: boolean | undefined
    for (const r of rulesetFacts(rs).natDnat) {
      // a DNAT of outside clients to 127/8
      const toLo = r.target?.kind === 'DNAT' && !!r.target.to[0]?.from && isLoopback(r.target.to[0].from)
      // neither other case applies to a DNAT whose destination lies outside 127/8 and that does not match -i lo
      if (!toLo && !aboutLoopback(r, rs) && !viaLoopback(r)) continue
      if (r.chain !== chain) {
        chain = r.chain
        fromOutput = reachableFrom(rs, 'nat', chain, ['OUTPUT'])
        fromPre = reachableFrom(rs, 'nat', chain, ['PREROUTING'])
      }
      const f = (fromOutput ? outputCase(h, rs, r) : undefined) ?? (fromPre ? (toLo ? toLoopbackCase(h, rs, r) : preroutingCase(h, rs, r)) : undefined)
      if (f) out.push(f)
    }
  }
  return out
})
