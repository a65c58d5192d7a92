// fwmark-service-unmarked: an IPVS fwmark service (-f MARK) receives only packets whose skb->mark equals its
// mark when they reach LOCAL_IN. If no reachable MARK rule sets it, or a later MARK rule overwrites it, the
// service receives nothing. The same holds for policy routing by fwmark (`ip rule add fwmark M table T`, LVS-HOWTO
// 29.3): a table that routes a VIP to the realserver holding it is used only for packets mangle PREROUTING marked.
// When the caller names a flow (trace --vip), the rule also checks that this flow gets the mark: a MARK rule
// written for another port is then a finding too.
import {formatEndpoint, formatIp, hostPrefix, ipEquals, isLoopback, makePrefix, prefixContains, type IpAddr} from '../model/ip.js'
import type {IptablesRuleset, IptRule} from '../model/iptables.js'
import type {Evidence} from '../model/finding.js'
import type {Loc} from '../model/source.js'
import type {Packet} from '../dataplane/packet.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, locRefs, UNKNOWN_IF, type HostView} from './engine/host.js'
import {ctView} from './engine/ctmodel.js'
import {enumerate, reachableStatRules} from './engine/cascade.js'
import {markSetters, selectorOf, describeService, clientIifOf, type LbService, type World} from './engine/world.js'
import {flowPacket} from './engine/packets.js'
import {selectorSpec, type PacketSelector} from './engine/firewall.js'
import {specTokens, joinSpec, type FixOp} from './engine/fix.js'
import type {PolicyRoute} from './engine/forward.js'
import type {FlowHint, RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'fwmark-service-unmarked',
  title: 'an fwmark virtual service whose mark no rule sets',
  severity: 'error',
  description:
    "IPVS looks up an fwmark service by the packet's mark (skb->mark) at LOCAL_IN, and an `ip rule fwmark` policy route applies to marked packets only. The mark must be set before, in mangle PREROUTING (LVS-HOWTO 29.8: packets may never get to the FWMARK rules if they come after ACCEPT rules). A service or policy route whose mark no reachable MARK rule sets, that a later non-terminating MARK rule overwrites, or that the flow asked about does not get, never receives that connection.",
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3, 29.8, 29.11.2)', 'ipvsadm(8) (-f, --fwmark-service)', 'net/netfilter/ipvs/ip_vs_core.c ip_vs_in (ip_vs_service_find by fwmark)', 'net/core/fib_rules.c fib_rule_match (fwmark)'],
}

const hex = (n: number) => `0x${n.toString(16)}`

/** What is marked: an IPVS fwmark service, or a policy route by fwmark. */
interface Marked {
  readonly h: HostView
  readonly mark: number
  /** the bits compared (ip rule fwmark M/MASK; IPVS compares the whole mark) */
  readonly mask: number
  readonly label: string
  readonly evidence: readonly Evidence[]
  /** VIPs this mark is for, when known (the policy route's VIP) */
  readonly vips: readonly IpAddr[]
  readonly ipvs: boolean
  /** the IPVS fwmark service */
  readonly svc?: LbService
}

interface Analysis {
  evidence: Evidence[]
  problems: string[]
  ops: FixOp[]
  /** the fix adds a MARK rule (rather than moving or restricting one) */
  adds: boolean
  /** what the added rule marks, for the summary ("203.0.113.100, every TCP port") */
  marks?: string
  /** the finding rests on files the snapshot does not have */
  unverified?: string[]
  /** the summary of a fix that moves or restricts MARK rules */
  fixSays?: string
}

const gets = (m: Marked, mark: number) => ((mark & m.mask) >>> 0) === ((m.mark & m.mask) >>> 0)

/** The mark a packet leaves mangle PREROUTING with (every outcome of statistic draws), and what decided. */
function preroutingMarks(h: HostView, rs: IptablesRuleset, pkt: Packet, iif: string, rule?: IptRule) {
  const env = h.env({iif, ct: ctView('NEW'), assumeLocal: [pkt.dst]})
  const stat = reachableStatRules([rs], ['PREROUTING'], pkt, env, ['raw', 'mangle'])
  return enumerate(
    [rs],
    stat,
    (f, orig) => {
      const r = f.runHook('PREROUTING', pkt, env, false)
      const mangle = r.runs.find((x) => x.table === 'mangle')
      const trail = (mangle?.result.trail ?? []).map(orig)
      const markers = trail.filter((t) => t.target?.kind === 'MARK')
      return {mark: r.packet.mark, reached: rule ? trail.includes(rule) : false, last: markers.at(-1), decided: mangle?.decision.rule ? orig(mangle.decision.rule) : undefined}
    },
    (o) => `${o.mark}|${o.reached}|${o.last?.loc.line}|${o.decided?.loc.line}`,
  )
}

/** A MARK rule for the selected packets, placed where they still pass: before the rule that ends mangle PREROUTING for them, else appended. */
function addMarkRule(h: HostView, w: World, pkt: Packet | undefined, m: Marked, sel: PacketSelector): FixOp[] {
  const spec = joinSpec([...selectorSpec(sel), '-j', 'MARK', '--set-mark', hex(m.mark)])
  const rs = h.fw?.rulesets.find((r) => r.family === 4)
  if (!h.fw || !rs) return [{kind: 'cmd', text: `iptables -t mangle -A PREROUTING ${spec}`}]
  if (pkt) {
    const o = preroutingMarks(h, rs, pkt, clientIifOf(h, w, pkt.dst)).outcomes[0]?.value
    const by = o?.decided
    if (by) return h.fw.fixer.insertAt(rs, 'mangle', by.chain, by.index, spec)
  }
  return h.fw.fixer.insertAt(rs, 'mangle', 'PREROUTING', Infinity, spec)
}

const FIREWALL_FILES = ['iptables-save.txt', 'iptables-legacy-save.txt', 'nft-ruleset.json']

/** A client's first packet to vip:port (port 80 stands for "some port" when the port is not known). */
function probeTo(w: World, vip: IpAddr, port?: number): Packet {
  return flowPacket({src: w.client.ip, sport: w.client.port, dst: vip, dport: port ?? 80, proto: 'tcp'}, 'SYN')
}

/**
 * The traffic an IPVS fwmark service that nothing marks is meant for, when no flow was asked about: the
 * snapshot never says it (the mark is the only thing that ties packets to the service), so it is derived, in
 * this order, from
 *   - IPVS connection entries (ipvsadm -Lnc) of the service's destinations: their virtual VIP:port;
 *   - its LVS-DR/TUN realservers' snapshots: a VIP is an address the realserver holds on lo (or a non-ARP
 *     device) that is also the director's;
 *   - the director's own addresses that look like VIPs (on lo, a /32, a secondary address, keepalived's VRRP
 *     addresses), leaving out the addresses of the realservers' networks and the VIPs of its other services.
 * The ports are known only from connection entries: otherwise every TCP port of the VIP is marked, and the
 * message says so. Several candidate VIPs of the last kind are not guessed between: no command then.
 */
function intendedTraffic(svc: LbService, w: World): {vips: IpAddr[]; ports: number[]; says: string; evidence: Evidence[]} {
  const h = svc.host
  const others = w.services.filter((o) => o !== svc && o.host === h && o.vip)
  const taken = (ip: IpAddr, port?: number) => others.some((o) => ipEquals(o.vip!, ip) && (port === undefined || o.port === undefined || o.port === port))
  const ofSvc = (ip: IpAddr, port: number) => svc.backends.some((b) => ipEquals(b.ip, ip) && (!b.port || b.port === port))
  // 1. connection entries of this service
  // (an fwmark persistence template holds the mark where the VIP goes: not a VIP)
  const conns = (h.snap.ipvsConns ?? []).filter((c) => c.fwmark === undefined && ofSvc(c.dest.ip, c.dest.port) && h.isLocal(c.virtual.ip) !== false && !taken(c.virtual.ip, c.virtual.port))
  if (conns.length) {
    const vips = uniqIps(conns.map((c) => c.virtual.ip))
    const ports = [...new Set(conns.map((c) => c.virtual.port))].sort((a, b) => a - b)
    return {vips, ports, says: `the connection table shows what it served: ${conns.slice(0, 3).map((c) => `${formatIp(c.virtual.ip)}:${c.virtual.port}`).filter((x, i, a) => a.indexOf(x) === i).join(', ')} (ipvsadm -Lnc)`, evidence: conns.slice(0, 3).map((c) => ev(c.loc))}
  }
  // 2. the VIP the DR/TUN realservers hold
  const held: {ip: IpAddr; loc: Loc; host: string}[] = []
  for (const b of svc.backends) {
    if ((b.method !== 'route' && b.method !== 'tunnel') || !b.owner) continue
    for (const i of b.owner.snap.interfaces ?? []) {
      if (i.name !== 'lo' && !i.flags.includes('NOARP') && i.kind !== 'dummy' && i.kind !== 'ipip') continue
      for (const a of i.addresses) if (a.family === 4 && !isLoopback(a.ip) && h.isLocal(a.ip) === true && !taken(a.ip)) held.push({ip: a.ip, loc: a.loc, host: b.owner.name})
    }
  }
  const heldVips = uniqIps(held.map((x) => x.ip))
  const noPorts = 'which ports it is for is not in the snapshot (nothing marks them, and no connection entry names them), so the rule marks every TCP port of the VIP: restrict it with `-m multiport --dports ...` to the service\'s ports'
  if (heldVips.length) {
    return {vips: heldVips, ports: [], says: `its realservers hold ${heldVips.map(formatIp).join(', ')} (${[...new Set(held.map((x) => x.host))].join(', ')}), an address of ${h.name} too: taken as the VIP; ${noPorts}`, evidence: held.map((x) => ev(x.loc, x.host))}
  }
  // 3. the director's VIP-shaped addresses
  const vrrp = h.snap.keepalived?.vrrpAddresses ?? []
  const cands: {ip: IpAddr; loc: Loc; why: string}[] = []
  for (const i of h.snap.interfaces ?? []) {
    for (const a of i.addresses) {
      if (a.family !== 4 || isLoopback(a.ip) || (a.scope !== 'global' && i.name !== 'lo')) continue
      const why = i.name === 'lo' ? 'on lo' : a.prefixlen === 32 ? `a /32 on ${i.name}` : a.secondary ? `a secondary address of ${i.name}` : vrrp.some((v) => ipEquals(v.ip, a.ip)) ? "keepalived's VRRP address" : undefined
      if (!why || taken(a.ip)) continue
      if (svc.backends.some((b) => a.prefixlen < 32 && prefixContains(makePrefix(a.ip, a.prefixlen), b.ip))) continue
      cands.push({ip: a.ip, loc: a.loc, why})
    }
  }
  for (const v of vrrp) if (v.ip.family === 4 && !taken(v.ip) && !cands.some((c) => ipEquals(c.ip, v.ip))) cands.push({ip: v.ip, loc: v.loc, why: "keepalived's VRRP address"})
  if (cands.length === 1) {
    const c = cands[0]!
    return {vips: [c.ip], ports: [], says: `the snapshot does not say which VIP it is for: ${formatIp(c.ip)} (${c.why}) is ${h.name}'s only address that looks like a VIP and serves no other service, taken as the VIP; ${noPorts}`, evidence: [ev(c.loc)]}
  }
  if (cands.length > 1) {
    return {vips: [], ports: [], says: `the snapshot does not say which VIP and ports it is for: ${cands.map((c) => `${formatIp(c.ip)} (${c.why})`).join(', ')} could all be, so no command is proposed`, evidence: cands.map((c) => ev(c.loc))}
  }
  return {vips: [], ports: [], says: `the snapshot does not say which VIP and ports it is for (no connection entry, no realserver holding a VIP, no address of ${h.name} that looks like one), so no command is proposed`, evidence: []}
}

function uniqIps(ips: readonly IpAddr[]): IpAddr[] {
  const out: IpAddr[] = []
  for (const ip of ips) if (!out.some((x) => ipEquals(x, ip))) out.push(ip)
  return out
}

/** The MARK rules that set the mark: reached by the packets they select, and not overwritten? */
function analyseSetters(m: Marked, w: World): Analysis | undefined {
  const {h} = m
  const fw = h.fw
  const setters = (fw?.rulesets ?? []).flatMap((rs) => markSetters(rs, m.mark, m.mask).map((rule) => ({rule, rs})))
  if (setters.length === 0) {
    const files = FIREWALL_FILES.filter((f) => h.snap.files.includes(f))
    const problems = [
      files.length === 0
        ? `the snapshot has no ${FIREWALL_FILES.join(' or ')}: no MARK rule is known to set mark ${hex(m.mark)}, and without one no packet is given to it`
        : `no MARK rule reachable from mangle PREROUTING sets mark ${hex(m.mark)}${fw ? '' : ` (${files.join(' and ')} hold no rules at all)`}, so no packet is ever given to it`,
    ]
    const evidence: Evidence[] = [...m.evidence]
    const ops: FixOp[] = []
    let marks: string | undefined
    if (m.vips.length) {
      for (const vip of m.vips) ops.push(...addMarkRule(h, w, probeTo(w, vip), m, {dst: hostPrefix(vip)}))
      marks = m.vips.map(formatIp).join(', ')
    } else if (m.svc) {
      const t = intendedTraffic(m.svc, w)
      problems.push(t.says)
      evidence.push(...t.evidence)
      for (const vip of t.vips) {
        for (const port of t.ports.length ? t.ports : [undefined]) ops.push(...addMarkRule(h, w, probeTo(w, vip, port), m, {dst: hostPrefix(vip), proto: 'tcp', dport: port}))
      }
      if (t.vips.length) marks = `${t.vips.map(formatIp).join(', ')}, ${t.ports.length ? `TCP port${t.ports.length > 1 ? 's' : ''} ${t.ports.join(', ')}` : 'every TCP port'}`
    }
    return {evidence, problems, ops, adds: true, marks, unverified: files.length === 0 ? [`the director's packet filter (${FIREWALL_FILES.join(', ')}): not in the snapshot`] : undefined}
  }
  const problems: string[] = []
  const evidence: Evidence[] = [...m.evidence]
  const ops: FixOp[] = []
  let moved = false
  let guarded = false
  for (const {rule, rs} of setters) {
    const sel = selectorOf(rs, rule)
    if (!sel.dst && sel.dport === undefined) continue
    const dst = sel.dst ? {family: sel.dst.family, value: sel.dst.value} : (h.primaryAddress() ?? w.client.ip)
    const pkt = flowPacket({src: w.client.ip, sport: w.client.port, dst, dport: sel.dport ?? 80, proto: sel.proto ?? 'tcp'}, 'SYN')
    const res = preroutingMarks(h, rs, pkt, UNKNOWN_IF, rule)
    if (res.outcomes.some((o) => gets(m, o.value.mark))) return undefined // some packets get the mark: it works
    const o = res.outcomes[0]!.value
    evidence.push(ev(rule.loc))
    if (!o.reached) {
      const by = o.decided
      problems.push(`${locRef(rule.loc)} sets ${hex(m.mark)}, but the packets it selects never reach it${by ? `: ${locRef(by.loc)} ends the chain first` : ''}`)
      if (by) {
        evidence.push(ev(by.loc))
        if (by.chain === rule.chain) {
          ops.push(...fw!.fixer.insertAt(rs, 'mangle', by.chain, by.index, joinSpec(specTokens(rule.loc.text))))
          moved = true
        }
      }
    } else if (o.last && o.last !== rule) {
      problems.push(`${locRef(rule.loc)} sets ${hex(m.mark)}, but ${locRef(o.last.loc)} later sets the mark to ${hex(o.mark)} (MARK does not end the chain: the last one wins)`)
      evidence.push(ev(o.last.loc))
      const r = fw!.fixer.replaceUnmarkedOnly(o.last as IptRule, rs)
      if (r) {
        ops.push(...r)
        guarded = true
      }
    } else {
      problems.push(`${locRef(rule.loc)} sets ${hex(m.mark)}, but the packets it selects leave mangle PREROUTING with mark ${hex(o.mark)}`)
    }
  }
  if (problems.length === 0) return undefined
  const says = [
    ...(moved ? ['move the MARK rules before the rule that ends mangle PREROUTING for their packets'] : []),
    ...(guarded ? ['let the later MARK rule mark only packets still unmarked (-m mark --mark 0x0)'] : []),
  ]
  return {evidence, problems, ops, adds: false, fixSays: says.length ? `let the mark survive mangle PREROUTING: ${says.join('; ')}` : 'let the mark survive mangle PREROUTING'}
}

/**
 * Is the flow asked about meant for this mark? Its VIP is the policy route's, or one the mark's MARK rules
 * name; or, for an IPVS fwmark service nothing marks at all, a local address of the director that no
 * VIP:port service of the director takes.
 */
function meantFor(m: Marked, f: FlowHint, w: World): boolean {
  if (m.vips.some((v) => ipEquals(v, f.vip.ip))) return true
  let setters = 0
  for (const rs of m.h.fw?.rulesets ?? []) {
    for (const r of markSetters(rs, m.mark, m.mask)) {
      setters++
      const sel = selectorOf(rs, r)
      if (sel.dst && prefixContains(sel.dst, f.vip.ip) && sel.dst.len > 0) return true
    }
  }
  return m.ipvs && setters === 0 && m.h.isLocal(f.vip.ip) === true && !w.services.some((s) => s.host === m.h && s.vip && ipEquals(s.vip, f.vip.ip) && s.port === f.vip.port)
}

/** The flows asked about that are meant for the mark but leave mangle PREROUTING without it. */
function analyseFlows(m: Marked, w: World): Analysis | undefined {
  const {h} = m
  const problems: string[] = []
  const evidence: Evidence[] = [...m.evidence]
  const ops: FixOp[] = []
  for (const f of w.flows) {
    if (f.vip.ip.family !== 4 || !meantFor(m, f, w)) continue
    const pkt = flowPacket({src: w.client.ip, sport: w.client.port, dst: f.vip.ip, dport: f.vip.port, proto: f.proto}, 'SYN')
    const rs = h.fw?.rulesets.find((r) => r.family === 4)
    const outcomes = rs ? preroutingMarks(h, rs, pkt, clientIifOf(h, w, f.vip.ip)).outcomes : [{value: {mark: 0, reached: false, last: undefined, decided: undefined}, p: 1}]
    if (outcomes.some((o) => gets(m, o.value.mark))) continue
    const o = outcomes[0]!.value
    const setters = (h.fw?.rulesets ?? []).flatMap((r) => markSetters(r, m.mark, m.mask))
    evidence.push(...setters.map((r) => ev(r.loc)))
    if (o.last) evidence.push(ev(o.last.loc))
    if (o.decided) evidence.push(ev(o.decided.loc))
    const others = locRefs(setters.map((r) => r.loc))
    problems.push(
      `the flow asked about, ${f.proto.toUpperCase()} ${formatEndpoint(f.vip)}, leaves mangle PREROUTING with mark ${hex(o.mark)}` +
        (setters.length ? `: the MARK rules that set ${hex(m.mark)} (${others}) do not select it` : `: no rule sets ${hex(m.mark)}`) +
        (o.decided ? ` (${locRef(o.decided.loc)} ends the chain for it)` : ''),
    )
    ops.push(...addMarkRule(h, w, pkt, m, {dst: hostPrefix(f.vip.ip), proto: f.proto, dport: f.vip.port}))
  }
  if (problems.length === 0) return undefined
  return {evidence, problems, ops, adds: true}
}

function report(m: Marked, w: World): RuleFinding | undefined {
  const a = analyseSetters(m, w)
  const b = analyseFlows(m, w)
  if (!a && !b) return undefined
  // with flows asked about, their MARK rules are the fix (the generic "all of the VIP" rule is not needed)
  const ops = b ? [...(a && !a.adds ? a.ops : []), ...b.ops] : a!.ops
  const adds = b ? true : a!.adds
  const problems = [...(a?.problems ?? []), ...(b?.problems ?? [])]
  const marks = b ? "the flow's packets" : a?.marks ? `the packets to ${a.marks}` : "the VIP's packets"
  const unverified = !!a?.unverified && !b
  return finding(meta, m.h.name, {
    severity: unverified ? 'info' : undefined,
    // as every rule's finding that rests on files the snapshot lacks (helpers.ts unverifiedFinding)
    title: unverified ? `${meta.title} (not verified)` : undefined,
    message: `${m.label}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    evidence: [...(a?.evidence ?? []), ...(b?.evidence ?? [])],
    unverified: b ? undefined : a?.unverified,
    fix: {
      summary: adds
        ? `add a MARK rule in mangle PREROUTING that sets ${hex(m.mark)} on ${marks}${ops.length ? '' : ` (iptables -t mangle -A PREROUTING -d <VIP> -p tcp -m multiport --dports <ports> -j MARK --set-mark ${hex(m.mark)})`}`
        : (a?.fixSays ?? 'let the mark survive mangle PREROUTING'),
      ops,
    },
  })
}

function ipvsMarked(svc: LbService): Marked {
  return {h: svc.host, mark: svc.fwmark!, mask: 0xffffffff, label: `${describeService(svc)} receives only packets whose mark is ${hex(svc.fwmark!)} when they reach LOCAL_IN`, evidence: [ev(svc.loc)], vips: [], ipvs: true, svc}
}

function policyMarked(pr: PolicyRoute): Marked {
  const loc: Loc = pr.rule.loc
  return {
    h: pr.host,
    mark: pr.mark,
    mask: pr.mask,
    label: `the policy route "${loc.text.trim()}" (${loc.file}:${loc.line}) sends ${formatIp(pr.vip)} to ${pr.realserver.name}, but only packets marked ${hex(pr.mark)} take it; unmarked, ${pr.unmarked}`,
    evidence: [...pr.evidence, ev(pr.vipLoc, pr.realserver.name)],
    vips: [pr.vip],
    ipvs: false,
  }
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    if (svc.kind !== 'ipvs' || svc.fwmark === undefined) continue
    const f = report(ipvsMarked(svc), w)
    if (f) out.push(f)
  }
  const seen = new Set<string>()
  for (const pr of w.policyRoutes) {
    const k = `${pr.host.name}|${pr.rule.loc.line}|${pr.vip.value}`
    if (seen.has(k)) continue
    seen.add(k)
    const f = report(policyMarked(pr), w)
    if (f) out.push(f)
  }
  return out
})
