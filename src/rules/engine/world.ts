// What `check` knows about the hosts together: the load-balanced services of each director (IPVS virtual
// services, and DNAT rules in nat PREROUTING that send a VIP:port to backends), which snapshot owns each
// backend address (a realserver host is the one owning the destination address), and a representative
// client.
import {formatEndpoint, formatIp, hostPrefix, ipEquals, isLoopback, makePrefix, parseIp, prefixContains, type IpAddr, type Prefix} from '../../model/ip.js'
import type {IpvsMethod, IpvsService} from '../../model/ipvs.js'
import type {IptablesRuleset, IptChain, IptRule, IptTable, Match, NatRange} from '../../model/iptables.js'
import type {Loc} from '../../model/source.js'
import type {Packet} from '../../dataplane/packet.js'
import type {FlowHint, RuleContext} from '../types.js'
import {arrivalOf} from './arrival.js'
import {ctView} from './ctmodel.js'
import {enumerate, reachableStatRules, type Enumeration} from './cascade.js'
import {HostView, UNKNOWN_IF} from './host.js'
import {flowPacket, l4Name, PROTO_NUM, type L4} from './packets.js'
import {findForwards, type ForwardPath, type PolicyRoute} from './forward.js'
import {rulesetFacts} from './path.js'
import {tableGraph} from '../../dataplane/chain-index.js'
import {firstCallerOfUserChain, firstCallerOfUserChainId, reachableChainList, reachableChainMark, reachableChains, type Reach} from './chain-graph.js'

export type BackendMethod = IpvsMethod | 'dnat'

export interface Backend {
  readonly ip: IpAddr
  readonly port?: number
  readonly method: BackendMethod
  readonly weight?: number
  /** the ipvsadm destination line, or the DNAT rule */
  readonly loc: Loc
  readonly rule?: IptRule
  /** the snapshot owning this address (the realserver), when it is among the hosts */
  readonly owner?: HostView
  /** the director itself owns it (LocalNode, a DNAT to a local port) */
  readonly local: boolean
  /** share of new connections (DNAT cascades) */
  readonly share?: number
}

export interface LbService {
  readonly host: HostView
  readonly kind: 'ipvs' | 'dnat'
  readonly proto: L4
  readonly vip?: IpAddr
  /** the VIP was not in the rule (`-d` absent): the director's own address stands in for it */
  readonly vipAssumed: boolean
  readonly port?: number
  readonly fwmark?: number
  /** ipvsadm service line, or the first DNAT rule */
  readonly loc: Loc
  readonly backends: readonly Backend[]
  readonly ipvs?: IpvsService
  /** the first packet of a client's connection, as it arrives (for fwmark services: as the MARK rules select it) */
  readonly probes: readonly Packet[]
  /** DNAT services: the distribution of new connections over backends (key "none" = no DNAT) */
  readonly cascade?: Enumeration<DnatOutcome>
  /** DNAT services: the ruleset holding the DNAT rules */
  readonly ruleset?: IptablesRuleset
  /** the interface clients' packets arrive on, when the rules name it (`-i`) */
  readonly iif?: string
}

export interface DnatOutcome {
  readonly rule?: IptRule
  readonly to?: {readonly ip?: IpAddr; readonly port?: number}
  readonly mark: number
  /** the connection mark PREROUTING leaves (CONNMARK, nft `ct mark set`: nftlb marks its farms' connections) */
  readonly ctMark?: number
}

export interface World {
  readonly hosts: readonly HostView[]
  readonly client: {readonly ip: IpAddr; readonly port: number; readonly fromSnapshot?: HostView}
  readonly services: readonly LbService[]
  /** hosts that route a VIP unchanged to a realserver holding it (DR-shaped paths without IPVS) */
  readonly forwards: readonly ForwardPath[]
  /** `ip rule fwmark M lookup T` routes that lead a VIP to the realserver holding it */
  readonly policyRoutes: readonly PolicyRoute[]
  /** the flows the caller asked about (RuleContext.flows) */
  readonly flows: readonly FlowHint[]
  /** the host (other than `except`) whose addresses include ip */
  ownerOf(ip: IpAddr, except?: HostView): HostView | undefined
  view(name: string): HostView | undefined
  /** stands for a DNAT VIP when the rule names none and the snapshot has no addresses */
  readonly placeholderVip: IpAddr
}

export function describeService(s: LbService): string {
  if (s.fwmark !== undefined) return `FWM ${s.fwmark} (0x${s.fwmark.toString(16)})`
  // a DNAT rule without a destination address takes any: the address the checks probe with only stands for it
  if (s.vipAssumed) return `${s.proto.toUpperCase()} *:${s.port ?? "*"} (DNAT; the rule names no single destination address)`
  const ep = s.vip ? (s.port !== undefined ? formatEndpoint({ip: s.vip, port: s.port}) : formatIp(s.vip)) : `*:${s.port ?? '*'}`
  return `${s.proto.toUpperCase()} ${ep}${s.kind === 'dnat' ? ' (DNAT)' : ''}`
}

export function describeBackend(b: Backend): string {
  return b.port !== undefined && b.port !== 0 ? formatEndpoint({ip: b.ip, port: b.port}) : formatIp(b.ip)
}

const cache = new WeakMap<RuleContext, World>()

export function world(ctx: RuleContext): World {
  let w = cache.get(ctx)
  if (!w) {
    w = buildWorld(ctx)
    cache.set(ctx, w)
  }
  return w
}

// Documentation ranges first (RFC 5737); a firewall that names one of them (bogon filters do) would decide
// about that range, not about clients in general, so an address no rule mentions is taken.
const CLIENT_CANDIDATES = ['203.0.113.10', '198.51.100.10', '192.0.2.10', '11.22.33.44', '44.55.66.77']
const PLACEHOLDER_VIPS = ['192.0.2.1', '198.51.100.1', '203.0.113.1', '11.22.33.1', '44.55.66.1']

/** Which of the candidate addresses the rules of every host name (source/destination prefixes, not 0/0). */
function mentioned(hosts: readonly HostView[], cands: readonly IpAddr[]): (ip: IpAddr) => boolean {
  // one pass over the rules (a kube-proxy dump names ~70,000 prefixes) with one lookup per prefix: the
  // candidates under each prefix length, by value (a prefix names a candidate when it is that value)
  const byLen: Map<bigint, IpAddr[]>[][] = [[], []]
  for (const c of cands) {
    const lens = byLen[c.family === 4 ? 0 : 1]!
    for (let len = 1; len <= (c.family === 4 ? 32 : 128); len++) {
      const m = (lens[len] ??= new Map())
      const v = makePrefix(c, len).value
      const list = m.get(v)
      if (list) list.push(c)
      else m.set(v, [c])
    }
  }
  // the first octet of each IPv4 candidate: a prefix of /8 or longer outside all of their /8s names none (no
  // map lookup; one table lookup instead of two bigint comparisons per candidate, mostly in unoptimised code)
  const octet = new Uint8Array(256)
  for (const c of cands) if (c.family === 4) octet[Number(makePrefix(c, 8).value >> 24n) & 255] = 1
  const hit = new Set<IpAddr>()
  const onMatch = (m: Match) => {
    if (m.kind !== 'addr' || m.prefix.len <= 0) return
    const p = m.prefix
    if (p.family === 4 && p.len >= 8) {
      // its first octet: the top 8 bits of a 32-bit value (any other value is in no candidate's /8)
      const v = Number(p.value)
      if (!(v >= 0 && v <= 0xffffffff) || octet[v >>> 24] === 0) return
    }
    const named = byLen[p.family === 4 ? 0 : 1]![p.len]?.get(p.value)
    if (named) for (const x of named) hit.add(x)
  }
  // the pass over every match that path.ts makes for its ruleset facts (one pass over a big dump, not two)
  for (const h of hosts) for (const rs of h.fw?.rulesets ?? []) rulesetFacts(rs, onMatch)
  return (ip) => hit.has(ip)
}

function connectedTo(hosts: readonly HostView[], ip: IpAddr): boolean {
  return hosts.some((h) => h.isLocal(ip) || (h.snap.interfaces ?? []).some((i) => i.addresses.some((a) => a.family === ip.family && prefixContains(makePrefix(a.ip, a.prefixlen), ip))))
}

function buildWorld(ctx: RuleContext): World {
  const hosts = ctx.hosts.map((h) => new HostView(h))
  // a loop, not find(): a closure per call for each of a kube-proxy dump's 31,704 DNAT backends
  const ownerOf = (ip: IpAddr, except?: HostView): HostView | undefined => {
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!
      if (h !== except && h.addressOf(ip) !== undefined) return h
    }
    return undefined
  }
  const clientCands = CLIENT_CANDIDATES.map((c) => parseIp(c)!)
  const vipCands = PLACEHOLDER_VIPS.map((c) => parseIp(c)!)
  const named = mentioned(hosts, [...clientCands, ...vipCands])
  const pick = (cands: readonly IpAddr[]) => cands.find((c) => !connectedTo(hosts, c) && !named(c)) ?? {...cands[0]!}
  // A client snapshot, when given, is the client; otherwise an outside address that no host owns or
  // reaches on a connected network and no rule names.
  // The client of a flow asked about comes first (a loopback client is a local process, not a client the
  // balancer receives: the rules keep their outside client then).
  const flows = ctx.flows ?? []
  const hinted = flows.find((f) => f.client && f.client.family === 4 && !isLoopback(f.client))
  const clientHost = hosts.find((h) => h.snap.role === 'client')
  const cip = clientHost?.primaryAddress()
  const client: World['client'] = hinted?.client
    ? {ip: hinted.client, port: hinted.clientPort ?? 40000, fromSnapshot: hosts.find((h) => h.isLocal(hinted.client!))}
    : clientHost && cip
      ? {ip: cip, port: 40000, fromSnapshot: clientHost}
      : {ip: pick(clientCands), port: 40000}
  const services: LbService[] = []
  const forwards: ForwardPath[] = []
  const policyRoutes: PolicyRoute[] = []
  const w: World = {hosts, client, services, forwards, policyRoutes, flows, ownerOf, view: (n) => hosts.find((h) => h.name === n), placeholderVip: pick(vipCands)}
  for (const h of hosts) {
    services.push(...ipvsServices(h, w))
    services.push(...dnatServices(h, w))
  }
  const fw = findForwards(w, flows)
  forwards.push(...fw.forwards)
  policyRoutes.push(...fw.policyRoutes)
  return w
}

/** The interface client packets arrive on: where the host routes the client (the snapshot's routes). */
export function clientIifOf(h: HostView, w: World, vip?: IpAddr): string {
  // a client whose snapshot is given sends by its own route: its packets arrive on the interface holding its next
  // hop, which need not be the one h routes the client by (asymmetric routes: what rp_filter and -m rpfilter judge)
  if (vip && w.client.fromSnapshot && w.client.fromSnapshot !== h) {
    const a = arrivalOf(w, {vip: {ip: vip, port: 0}, proto: 'tcp', client: w.client.ip})
    if (a && a.host === h) return a.iif
  }
  const dev = h.oifFor(w.client.ip)
  if (dev && dev !== 'lo') return dev
  if (vip) {
    const a = h.addressOf(vip)
    if (a && a.iface.name !== 'lo') return a.iface.name
  }
  return UNKNOWN_IF
}

/** An IPVS destination (its fields in the order the model has always made them); `local`: the director's own (LocalNode). */
function ipvsBackend(w: World, h: HostView, ip: IpAddr, port: number | undefined, method: IpvsMethod, weight: number | undefined, loc: Loc): Backend {
  const local = isLoopback(ip) || h.isLocal(ip) === true
  const owner = local ? undefined : w.ownerOf(ip, h)
  return {port, method, weight, loc, ip, local, owner}
}

/**
 * A DNAT backend, made whole in one literal (completing a literal afterwards gave every one of a kube-proxy
 * dump's 31,704 backends a property array as well: ~1.3 MB kept to the end).
 */
function dnatBackend(w: World, h: HostView, ip: IpAddr, port: number | undefined, rule: IptRule, share: number): Backend {
  const local = isLoopback(ip) || h.isLocal(ip) === true
  const owner = local ? undefined : w.ownerOf(ip, h)
  return {port, method: 'dnat', loc: rule.loc, rule, share, ip, local, owner}
}

// ---- IPVS ----------------------------------------------------------------------------------------------

function ipvsServices(h: HostView, w: World): LbService[] {
  const out: LbService[] = []
  for (const s of h.snap.ipvs?.services ?? []) {
    if (s.family !== 4) continue
    const proto: L4 = s.proto === 'fwmark' ? 'tcp' : s.proto
    const backends = s.dests.map((d) => ipvsBackend(w, h, d.ip, d.port, d.method, d.weight, d.loc))
    let probes: Packet[] = []
    if (s.proto !== 'fwmark' && s.vip && s.port !== undefined) {
      probes = [flowPacket({src: w.client.ip, sport: w.client.port, dst: s.vip, dport: s.port, proto}, 'SYN')]
    } else if (s.fwmark !== undefined) {
      probes = markProbes(h, w, s.fwmark)
    }
    out.push({host: h, kind: 'ipvs', proto, vip: s.vip, vipAssumed: false, port: s.port, fwmark: s.fwmark, loc: s.loc, backends, ipvs: s, probes})
  }
  return out
}

// ---- selectors: what packets a rule (and the rules jumping to its chain) is about -------------------------

export interface Selector {
  /** `-i NAME` (no wildcard): the interface the selected packets arrive on */
  iif?: string
  dst?: Prefix
  proto?: L4
  dport?: number
  mark?: {value: number; mask: number}
}

function selectorOfMatches(matches: readonly Match[], sel: Selector): void {
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i]!
    if (m.kind === 'addr' && m.dir === 'dst' && !m.neg && sel.dst === undefined) sel.dst = m.prefix
    else if (m.kind === 'iface' && m.dir === 'in' && !m.neg && !m.name.endsWith('+') && sel.iif === undefined) sel.iif = m.name
    else if (m.kind === 'proto' && !m.neg && m.proto !== 'all' && sel.proto === undefined) sel.proto = l4Name(m.proto)
    else if (m.kind === 'port' && !m.neg && (m.dir === 'dst' || m.dir === 'any') && sel.dport === undefined && m.ranges[0]) sel.dport = m.ranges[0][0]
    else if (m.kind === 'mark' && m.module === 'mark' && !m.neg && sel.mark === undefined) sel.mark = {value: m.value, mask: m.mask}
  }
}

/** Per ruleset, the selectors computed so far (one weak entry per ruleset: a weak entry per rule burdens the GC). */
const selectors = new WeakMap<IptablesRuleset, SelectorCache>()

/** The rule's own dst/proto/dport/mark, completed from the rules that jump to its chain (computed once per rule: do not change it). */
export function selectorOf(rs: IptablesRuleset, rule: IptRule): Selector {
  return selectorIn(rs, rule, undefined, -1)
}

type SelectorCache = {byRule: Map<IptRule, Selector>; byChain: Map<string, {depth: number; sel: Selector | undefined}>}

/** selectorOf, for a rule of chain number `chainId` of `table` (-1: not known; dnatServices walks chains by number). */
function selectorIn(rs: IptablesRuleset, rule: IptRule, table: IptTable | undefined, chainId: number): Selector {
  let cache = selectors.get(rs)
  if (!cache) {
    cache = {byRule: new Map(), byChain: new Map()}
    selectors.set(rs, cache)
  }
  let sel = cache.byRule.get(rule)
  if (!sel) {
    sel = {}
    selectorOfMatches(rule.matches, sel)
    table ??= rs.tables.get(rule.table)
    // callersSelector's first step written into `sel` (no selector of its own per rule): each field the rule does
    // not name is taken from its first caller's matches, then from that caller's own callers
    const caller = !table ? undefined : chainId >= 0 ? firstCallerOfUserChainId(table, chainId) : firstCallerOfUserChain(table, rule.chain)
    if (caller) {
      selectorOfMatches(caller.matches, sel)
      const up = callersSelector(table!, cache.byChain, caller.chain, 1)
      if (up) {
        fillFrom(sel, up)
        // the same fields as its callers' (the DNAT rules of a kube-proxy service: only `-p` of their own, the
        // service's): their selector stands for this one too (selectors are never changed once made)
        if (sameSelector(sel, up)) sel = up
      }
    }
    cache.byRule.set(rule, sel)
  }
  return sel
}

function sameSelector(a: Selector, b: Selector): boolean {
  return a.iif === b.iif && a.dst === b.dst && a.proto === b.proto && a.dport === b.dport && a.mark === b.mark
}

/** The fields `sel` lacks, from `from` (each field is taken from the first source that names it). */
function fillFrom(sel: Selector, from: Selector): void {
  if (sel.iif === undefined && from.iif !== undefined) sel.iif = from.iif
  if (sel.dst === undefined && from.dst !== undefined) sel.dst = from.dst
  if (sel.proto === undefined && from.proto !== undefined) sel.proto = from.proto
  if (sel.dport === undefined && from.dport !== undefined) sel.dport = from.dport
  if (sel.mark === undefined && from.mark !== undefined) sel.mark = from.mark
}

/**
 * What the first callers of `chain` select, up the call chain from nesting `depth` (at most 8 levels above a
 * rule), until a builtin chain; undefined when nothing calls it. Remembered per chain above the rule's own
 * (kube-proxy: each KUBE-SVC chain's, for the KUBE-SEP chains it calls).
 */
function callersSelector(table: IptTable, byChain: SelectorCache['byChain'], chain: string, depth: number, chainId = -1): Selector | undefined {
  if (depth >= 8) return undefined
  const known = depth > 0 ? byChain.get(chain) : undefined
  if (known && known.depth === depth) return known.sel
  let sel: Selector | undefined
  const caller = chainId >= 0 ? firstCallerOfUserChainId(table, chainId) : firstCallerOfUserChain(table, chain)
  if (caller) {
    sel = {}
    selectorOfMatches(caller.matches, sel)
    const up = callersSelector(table, byChain, caller.chain, depth + 1)
    if (up) fillFrom(sel, up)
  }
  if (depth > 0 && !known) byChain.set(chain, {depth, sel})
  return sel
}

/** The last reachability sets asked for (callers ask chain after chain of one table, often from two builtins in turn). */
const lastReach: {rs?: IptablesRuleset; table?: string; from?: string; reach?: Reach}[] = [{}, {}]
let lastReachNext = 0

/** Is the chain reachable from a builtin chain of its table (following jumps and gotos)? */
export function reachableFrom(rs: IptablesRuleset, table: string, chain: string, builtins: readonly string[]): boolean {
  if (builtins.length === 1) {
    const from = builtins[0]!
    for (const m of lastReach) if (m.rs === rs && m.table === table && m.from === from) return m.reach!.has(chain)
    const t = rs.tables.get(table)
    if (!t) return false
    const reach = reachableChains(t, builtins)
    const m = lastReach[lastReachNext]!
    lastReachNext = 1 - lastReachNext
    m.rs = rs
    m.table = table
    m.from = from
    m.reach = reach
    return reach.has(chain)
  }
  const t = rs.tables.get(table)
  return !!t && reachableChains(t, builtins).has(chain)
}

/** MARK rules of mangle (reachable from PREROUTING) that can set `mark` (value under the rule's mask). */
/** Per ruleset, once: the MARK rules of mangle reachable from PREROUTING that set, xset or or a non-zero value. */
const markRules = new WeakMap<IptablesRuleset, readonly IptRule[]>()

export function markSetters(rs: IptablesRuleset, mark: number, maskOfUse = 0xffffffff): IptRule[] {
  let all = markRules.get(rs)
  if (!all) {
    const found: IptRule[] = []
    const mangle = rs.tables.get('mangle')
    for (const c of mangle ? reachableChainList(mangle, ['PREROUTING']) : []) {
      for (const r of c.rules) {
        const t = r.target
        if (t?.kind === 'MARK' && (t.op === 'set' || t.op === 'xset' || t.op === 'or') && t.value !== 0) found.push(r)
      }
    }
    all = found
    markRules.set(rs, all)
  }
  return all.filter((r) => {
    const t = r.target as Extract<IptRule['target'], {kind: 'MARK'}>
    return ((t.value & maskOfUse) >>> 0) === ((mark & maskOfUse) >>> 0)
  })
}

function probeFromSelector(h: HostView, w: World, sel: Selector): {pkt: Packet; vip?: IpAddr; vipAssumed: boolean; iif?: string} {
  const proto: L4 = sel.proto ?? 'tcp'
  let vip: IpAddr | undefined
  let vipAssumed = false
  if (sel.dst) {
    const full = sel.dst.len === (sel.dst.family === 4 ? 32 : 128)
    if (full) vip = {family: sel.dst.family, value: sel.dst.value}
    else {
      const inside = (h.snap.interfaces ?? []).flatMap((i) => i.addresses).find((a) => prefixContains(sel.dst!, a.ip))
      vip = inside?.ip ?? {family: sel.dst.family, value: sel.dst.value + 1n}
      vipAssumed = !inside
    }
  } else {
    // no destination (`fib daddr type local`, `-m addrtype --dst-type LOCAL`): the VIP of a flow asked about that
    // is this host's own address on the rule's port, else the host's primary address
    const asked = w.flows.find((f) => f.vip.ip.family === 4 && h.isLocal(f.vip.ip) === true && (sel.dport === undefined || sel.dport === f.vip.port) && (sel.proto === undefined || sel.proto === f.proto))
    vip = asked?.vip.ip ?? h.primaryAddress()
    vipAssumed = !asked
    if (!vip) vip = w.placeholderVip
  }
  const pkt = flowPacket({src: w.client.ip, sport: w.client.port, dst: vip, dport: sel.dport ?? 80, proto}, 'SYN')
  return {pkt, vip, vipAssumed, iif: sel.iif}
}

function markProbes(h: HostView, w: World, mark: number): Packet[] {
  const out: Packet[] = []
  for (const rs of h.fw?.rulesets ?? []) {
    for (const r of markSetters(rs, mark)) {
      const sel = selectorOf(rs, r)
      const p = probeFromSelector(h, w, sel).pkt
      if (!out.some((q) => ipEquals(q.dst, p.dst) && q.dport === p.dport && q.proto === p.proto)) out.push(p)
    }
  }
  return out
}

// ---- DNAT balancers (iptables L4xNAT and the like) ------------------------------------------------------

function dnatServices(h: HostView, w: World): LbService[] {
  const fw = h.fw
  if (!fw) return []
  const out: LbService[] = []
  for (const rs of fw.rulesets) {
    if (rs.family !== 4) continue
    const nat = rs.tables.get('nat')
    if (!nat) continue
    const groups = new Groups()
    // the DNAT and REDIRECT rules of the table in table order (found by the pass rulesetFacts made over every rule),
    // those of chains PREROUTING reaches: the order of a walk over the reachable chains' rules, without one
    const graph = tableGraph(nat)
    const reach = reachableChainMark(nat, ['PREROUTING'])
    const targets = rulesetFacts(rs).natTargets
    for (let ti = 0; ti < targets.length; ti++) {
      const r = targets[ti]!
      const cid = graph.ids.get(r.chain)
      if (cid === undefined || cid >= graph.chains.length || reach[cid] !== 1) continue
      const tk = r.target?.kind
      // REDIRECT: a DNAT to the host's own address on the arriving device (a local service)
      if (tk !== 'DNAT' && tk !== 'REDIRECT') continue
      // NAT to IPv6 (`dnat ip6 to` in an inet table): the service model is IPv4; check lists the rule as not evaluated
      if (tk === 'DNAT' && natToIpv6((r.target as {to: readonly NatRange[]}).to)) continue
      const sel = selectorIn(rs, r, nat, cid)
      if (sel.mark) {
        // DNAT by mark (L4xNAT): the packets are the ones the MARK rules select
        for (const m of markSetters(rs, sel.mark.value, sel.mark.mask)) {
          const msel = selectorOf(rs, m)
          const probe = probeFromSelector(h, w, {...msel, proto: msel.proto ?? sel.proto})
          addGroup(groups, probe, msel, r)
        }
        continue
      }
      // a VIP/32 rule of a group seen already joins it without a probe packet being made (the group's key is
      // the probe's destination, protocol, port and interface, which such a selector gives directly)
      const dst = sel.dst
      if (dst && dst.len === (dst.family === 4 ? 32 : 128)) {
        const g = groups.find(dst.value, PROTO_NUM[sel.proto ?? 'tcp'], sel.dport ?? 80, sel.iif)
        if (g) {
          if (!g.rules.includes(r)) g.rules.push(r)
          continue
        }
      }
      addGroup(groups, probeFromSelector(h, w, sel), sel, r)
    }
    for (const g of groups.order) {
      const svc = dnatService(h, w, rs, g)
      if (svc) out.push(svc)
    }
  }
  return out
}

/** Does a NAT target name an IPv6 address? (a loop: a closure per DNAT rule of a big dump costs) */
function natToIpv6(to: readonly NatRange[]): boolean {
  for (let i = 0; i < to.length; i++) {
    const t = to[i]!
    if (t.from?.family === 6 || t.to?.family === 6) return true
  }
  return false
}

interface Group {
  pkt: Packet
  vip?: IpAddr
  vipAssumed: boolean
  iif?: string
  sel: Selector
  rules: IptRule[]
}

/** Groups by (protocol, destination, port, interface), in the order of their first rule. */
class Groups {
  /** destination address -> the groups of that address (a few: one per port, protocol and interface) */
  private readonly byDst = new Map<bigint, Group[]>()
  readonly order: Group[] = []

  get(pkt: Packet, iif: string | undefined): Group | undefined {
    return this.find(pkt.dst.value, pkt.proto, pkt.dport, iif)
  }

  find(dst: bigint, proto: number, dport: number | undefined, iif: string | undefined): Group | undefined {
    const list = this.byDst.get(dst)
    if (!list) return undefined
    // an interface named '' and none are one key (as in the `proto|dport|iif` text this replaced)
    const i = iif ?? ''
    for (let k = 0; k < list.length; k++) {
      const g = list[k]!
      if (g.pkt.proto === proto && g.pkt.dport === dport && (g.iif ?? '') === i) return g
    }
    return undefined
  }

  add(g: Group): void {
    const list = this.byDst.get(g.pkt.dst.value)
    if (list) {
      // a group of the same key is replaced where it stands (Map.set of the same key did)
      const i = list.findIndex((x) => x.pkt.proto === g.pkt.proto && x.pkt.dport === g.pkt.dport && (x.iif ?? '') === (g.iif ?? ''))
      if (i >= 0) list[i] = g
      else list.push(g)
    } else this.byDst.set(g.pkt.dst.value, [g])
    this.order.push(g)
  }
}

function addGroup(groups: Groups, probe: {pkt: Packet; vip?: IpAddr; vipAssumed: boolean; iif?: string}, sel: Selector, r: IptRule): void {
  const g = groups.get(probe.pkt, probe.iif)
  if (g) {
    if (!g.rules.includes(r)) g.rules.push(r)
  } else groups.add({pkt: probe.pkt, vip: probe.vip, vipAssumed: probe.vipAssumed, iif: probe.iif, sel, rules: [r]})
}

/** Runs the first packet of a connection through PREROUTING for every outcome of the statistic draws. */
export function dnatCascade(h: HostView, rs: IptablesRuleset, pkt: Packet, assumeLocal: readonly IpAddr[], iif = UNKNOWN_IF): Enumeration<DnatOutcome> {
  const env = h.env({iif, ct: ctView('NEW'), assumeLocal})
  const stat = reachableStatRules([rs], ['PREROUTING'], pkt, env)
  const ruleKeys = new RuleKeys()
  return enumerate(
    [rs],
    stat,
    (fw, orig) => {
      const res = fw.runHook('PREROUTING', pkt, env, true)
      const nat = res.nat
      if (nat && (nat.kind === 'DNAT' || nat.kind === 'REDIRECT') && nat.decision.rule) return {rule: orig(nat.decision.rule), to: nat.to, mark: res.packet.mark, ctMark: res.ctMark}
      return {mark: res.packet.mark, ctMark: res.ctMark}
    },
    // a rule by its line and text (nft rules share one JSON line; their text names the handle)
    (o) => (o.rule ? ruleKeys.of(o.rule) : `none|${o.mark}`),
  )
}

/**
 * An object per (line, text) of the rules asked about: merges outcomes as `${line}|${text}` would, without making
 * and hashing that string. The first few lines are kept in a list (a kube-proxy cascade meets <= 20: a Map per
 * cascade cost ~2 MB of growing tables on a 100k dump), more in a Map.
 */
class RuleKeys {
  private readonly lines: number[] = []
  private readonly heads: RuleKey[] = []
  private byLine: Map<number, RuleKey> | undefined

  of(rule: IptRule): RuleKey {
    const {line, text} = rule.loc
    const first = this.head(line)
    for (let k = first; k; k = k.next) if (k.text === text) return k
    const key: RuleKey = {text, next: first}
    this.setHead(line, key)
    return key
  }

  private head(line: number): RuleKey | undefined {
    if (this.byLine) return this.byLine.get(line)
    const lines = this.lines
    for (let i = 0; i < lines.length; i++) if (lines[i] === line) return this.heads[i]
    return undefined
  }

  private setHead(line: number, key: RuleKey): void {
    if (this.byLine) {
      this.byLine.set(line, key)
      return
    }
    const lines = this.lines
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] === line) {
        this.heads[i] = key
        return
      }
    }
    if (lines.length < RULE_KEYS_SCAN) {
      lines.push(line)
      this.heads.push(key)
      return
    }
    const m = new Map<number, RuleKey>()
    for (let i = 0; i < lines.length; i++) m.set(lines[i]!, this.heads[i]!)
    m.set(line, key)
    this.byLine = m
  }
}

/** RuleKeys: lines kept in a list up to this many. */
const RULE_KEYS_SCAN = 32

interface RuleKey {
  readonly text: string
  readonly next: RuleKey | undefined
}

function hasBackendOf(backends: readonly Backend[], rule: IptRule): boolean {
  for (let i = 0; i < backends.length; i++) if (backends[i]!.rule === rule) return true
  return false
}

function dnatService(h: HostView, w: World, rs: IptablesRuleset, g: Group): LbService | undefined {
  const assumeLocal = g.vip && g.vipAssumed ? [g.vip] : g.vip && h.isLocal(g.vip) === undefined ? [g.vip] : []
  const cascade = dnatCascade(h, rs, g.pkt, assumeLocal, g.iif ?? clientIifOf(h, w))
  const backends: Backend[] = []
  // indexed loops here and below: a kube-proxy dump's 31,704 outcomes, mostly before this is optimised (a for-of
  // allocates an iterator result per step there)
  const outcomes = cascade.outcomes
  for (let oi = 0; oi < outcomes.length; oi++) {
    const o = outcomes[oi]!
    const rule = o.value.rule
    if (!rule) continue
    const redirect = rule.target?.kind === 'REDIRECT'
    // a REDIRECT on a device whose address the snapshot does not show: the host's own stack all the same
    const ip = o.value.to?.ip ?? (redirect ? (h.primaryAddress() ?? g.pkt.dst) : undefined)
    if (!ip) continue
    if (hasBackendOf(backends, rule)) continue
    const b = dnatBackend(w, h, ip, o.value.to?.port ?? g.pkt.dport, rule, o.p)
    backends.push(redirect && !b.local ? {...b, local: true, owner: undefined} : b)
  }
  // DNAT rules of the group that no outcome reaches are backends with a 0% share
  for (let ri = 0; ri < g.rules.length; ri++) {
    const r = g.rules[ri]!
    if (hasBackendOf(backends, r)) continue
    const t = r.target
    if (t?.kind !== 'DNAT' || !t.to[0]?.from) continue
    backends.push(dnatBackend(w, h, t.to[0].from, t.to[0].portFrom ?? g.pkt.dport, r, 0))
  }
  if (backends.length === 0) return undefined
  const first = g.rules[0]!
  return {
    host: h,
    kind: 'dnat',
    proto: l4Name(g.pkt.proto) ?? 'tcp',
    vip: g.vip,
    vipAssumed: g.vipAssumed,
    port: g.pkt.dport,
    loc: first.loc,
    backends,
    probes: [g.pkt],
    cascade,
    ruleset: rs,
    iif: g.iif,
  }
}

/**
 * Is the host part of a load-balancing setup (IPVS services, DNAT rules, a backend of a service, or a
 * realserver by its manifest/inferred role)? Load-balancer rules stay quiet on every other host.
 */
export function isLbHost(w: World, h: HostView): boolean {
  if ((h.snap.ipvs?.services.length ?? 0) > 0) return true
  if (w.services.some((s) => s.host === h || s.backends.some((b) => b.owner === h))) return true
  if (w.forwards.some((f) => f.host === h || f.realserver === h)) return true
  if (h.snap.role === 'realserver' || h.snap.role === 'director') return true
  for (const rs of h.fw?.rulesets ?? []) for (const c of rs.tables.get('nat')?.chains.values() ?? []) if (c.rules.some((r) => r.target?.kind === 'DNAT')) return true
  return false
}

/** The services on `h` whose backends include an address `rs` owns. */
export function servicesServedBy(w: World, rs: HostView): {svc: LbService; backend: Backend}[] {
  const out: {svc: LbService; backend: Backend}[] = []
  const services = w.services
  for (let i = 0; i < services.length; i++) {
    const svc = services[i]!
    const backends = svc.backends
    for (let j = 0; j < backends.length; j++) if (backends[j]!.owner === rs) out.push({svc, backend: backends[j]!})
  }
  return out
}

export function isNatMethod(m: BackendMethod): boolean {
  return m === 'masq' || m === 'dnat'
}

export function vipSelector(svc: LbService): {dst?: Prefix; proto?: L4; dport?: number; mark?: number} {
  if (svc.fwmark !== undefined) return {mark: svc.fwmark}
  return {dst: svc.vip ? hostPrefix(svc.vip) : undefined, proto: svc.proto, dport: svc.port}
}

export {PROTO_NUM}
