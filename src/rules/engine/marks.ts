// The rules that mark a flow's packets, and the exact way to spare one flow from them.
//
// Policy routing by mark (`ip rule add fwmark M lookup T`) routes every packet whose mark matches through table T.
// A mark set for another purpose (a second uplink, a VPN, traffic shaping) can catch a balanced flow and send it to a
// table whose route loses it. The mark is set by a rule before the route lookup: in PREROUTING for what the host
// forwards or receives (the lookup follows the hook), in OUTPUT for what it sends itself (a mark changed there makes
// the kernel route the packet again: iptables' mangle table, ipt_mangle_out, and an nft chain of type route,
// nf_route_table_hook; a filter table's or a filter chain's mark reroutes nothing).
//
// The fix an engineer runs to spare one flow is an exemption just before the rule that marks it: a rule matching the
// flow whose verdict ends the marking chain for those packets alone (ACCEPT in a builtin/base chain, RETURN in a user
// chain, where it goes back to the caller). The mark stays what it was, nothing else changes for other packets.
// Where that is not possible (the mark is what an IPVS fwmark service selects, the nft rule that marks also
// translates addresses), a policy rule for the flow at a lower preference than the one that diverts it: `ip rule add
// to ADDR ipproto P dport N lookup TABLE pref N-1` (ipproto/sport/dport since Linux 4.17).
import {formatIp, formatPrefix, hostPrefix, type IpAddr} from '../../model/ip.js'
import type {IptablesRuleset, IptRule} from '../../model/iptables.js'
import type {Loc} from '../../model/source.js'
import type {Packet} from '../../dataplane/packet.js'
import {routeLookup, type FlowKey, type RouteResult} from '../../dataplane/routing.js'
import {selectorSpec, type HookResult, type PacketSelector} from './firewall.js'
import {joinSpec, type FixOp} from './fix.js'
import {locRef, type HostView} from './host.js'
import {l4Name} from './packets.js'
import {shadowOf} from './nft-view.js'

export interface MarkSetter {
  /** the rule (for nft: the shadow rule standing for it) */
  readonly rule: IptRule
  readonly ruleset: IptablesRuleset
  /** the table of the hook run (nft: the shadow class) */
  readonly table: string
  /** the packet as it entered the table (or nft base chain) that holds the rule */
  readonly packet: Packet
  /** the rule's chain is a builtin (iptables) or base (nft) chain */
  readonly builtin: boolean
  /** OUTPUT: a mark set here makes the kernel route the packet again */
  readonly reroutes: boolean
  /** the rule does more than set a mark (nft: also translates, jumps or decides): an exemption would skip that too */
  readonly mixed: boolean
}

function setsMark(rule: IptRule, rs: IptablesRuleset): boolean {
  const shadow = shadowOf(rs)
  const nft = shadow?.origin.get(rule)
  if (nft) return nft.stmts.some((s) => s.kind === 'mangle' && s.key.kind === 'meta' && s.key.key === 'mark')
  const t = rule.target
  return t?.kind === 'MARK' || (t?.kind === 'CONNMARK' && t.op === 'restore')
}

function isMixed(rule: IptRule, rs: IptablesRuleset): boolean {
  const nft = shadowOf(rs)?.origin.get(rule)
  if (!nft) return false
  return nft.stmts.some((s) => s.kind === 'nat' || s.kind === 'vmap' || s.kind === 'reject' || s.kind === 'queue' || (s.kind === 'verdict' && s.verdict.kind !== 'continue'))
}

function chainIsBuiltin(rule: IptRule, rs: IptablesRuleset): boolean {
  const shadow = shadowOf(rs)
  const nft = shadow?.origin.get(rule)
  if (shadow && nft) return !!shadow.table.chains.get(nft.chain)?.base
  return rs.tables.get(rule.table)?.chains.get(rule.chain)?.builtin ?? false
}

/** nft: only a chain of type route routes a local packet again after its mark changed. */
function nftReroutes(rule: IptRule, rs: IptablesRuleset): boolean {
  const shadow = shadowOf(rs)!
  const nft = shadow.origin.get(rule)
  const own = nft ? shadow.table.chains.get(nft.chain)?.base : undefined
  if (own) return own.type === 'route'
  // a regular chain: reached from the base chains of this table at OUTPUT
  return shadow.bases.some((b) => b.hook === 'OUTPUT' && b.chain.base?.type === 'route')
}

/**
 * The rules of a hook run that set the packet's mark, in the order they fired, each with the packet as it entered
 * its table. `entering`: the packet as the hook received it.
 */
export function markSetters(hook: HookResult, entering: Packet): MarkSetter[] {
  const out: MarkSetter[] = []
  let p = entering
  for (const run of hook.runs) {
    const rs = run.decision.ruleset
    const nft = !!shadowOf(rs)
    for (const rule of run.result.trail) {
      if (!setsMark(rule, rs)) continue
      const reroutes = hook.hook !== 'OUTPUT' ? true : nft ? nftReroutes(rule, rs) : run.table === 'mangle'
      out.push({rule, ruleset: rs, table: run.table, packet: p, builtin: chainIsBuiltin(rule, rs), reroutes, mixed: isMixed(rule, rs)})
    }
    // the next table sees this one's marks, and the destination the nat core translated
    p = run.result.packet
    if (hook.nat && run.decision === hook.nat.decision && (hook.nat.kind === 'DNAT' || hook.nat.kind === 'REDIRECT')) p = {...p, dst: hook.nat.to?.ip ?? p.dst, dport: hook.nat.to?.port ?? p.dport}
  }
  return out
}

export type FlowSide = 'dst' | 'src'

/** The flow's packets as a rule matches them where the setter sits: by destination (requests) or source (answers). */
export function flowSelector(s: MarkSetter, side: FlowSide): PacketSelector {
  const p = s.packet
  const proto = l4Name(p.proto)
  return side === 'dst'
    ? {dst: hostPrefix(p.dst), ...(proto ? {proto, ...(p.dport !== undefined ? {dport: p.dport} : {})} : {})}
    : {src: hostPrefix(p.src), ...(proto ? {proto, ...(p.sport !== undefined ? {sport: p.sport} : {})} : {})}
}

export interface MarkFix {
  readonly summary: string
  readonly ops: FixOp[]
  /** the rules that set the mark (evidence) */
  readonly marked: readonly Loc[]
}

/**
 * The fix for a flow whose mark (set by `setters`) sends it to a dead route, when `unmarked` (the route the same
 * lookup finds without the mark) is usable: an exemption before each marking rule that still runs, or, where a rule
 * cannot be spared, a policy rule for the flow before the one that diverts it. undefined when neither is exact.
 */
export function markFix(
  h: HostView,
  setters: readonly MarkSetter[],
  side: FlowSide,
  dead: RouteResult,
  unmarked: RouteResult | undefined,
  what: string,
  /** the flow's address and port as the route lookup sees them (after a DNAT), for the policy rule */
  routed?: {readonly addr: IpAddr; readonly port?: number},
): MarkFix | undefined {
  const used = setters.filter((s) => s.reroutes)
  if (!used.length || !h.fw || !unmarked || (unmarked.kind !== 'unicast' && unmarked.kind !== 'local')) return undefined
  const marked = used.map((s) => s.rule.loc)
  const ipvsMarks = new Set((h.snap.ipvs?.services ?? []).map((s) => s.fwmark).filter((m): m is number => m !== undefined))
  const spare = used.every((s) => !s.mixed) && !used.some((s) => [...ipvsMarks].some((m) => m !== 0 && (s.packet.mark === m || markOf(s) === m)))
  if (spare) {
    const ops: FixOp[] = []
    const ended = new Set<string>()
    for (const s of used) {
      const key = `${s.ruleset.file}|${s.table}|${shadowOf(s.ruleset) ? (shadowOf(s.ruleset)!.origin.get(s.rule)?.chain ?? s.rule.chain) : 'table'}`
      if (ended.has(key)) continue
      const spec = joinSpec([...selectorSpec(flowSelector(s, side)), '-j', s.builtin ? 'ACCEPT' : 'RETURN'])
      ops.push(...h.fw.fixer.insertAt(s.ruleset, s.table, s.rule.chain, s.rule.index, spec))
      // iptables: an ACCEPT ends the table for the packet; nft: the base chain (the next base chain still runs)
      if (s.builtin) ended.add(key)
    }
    if (ops.length && !ops.some((o) => o.kind === 'cmd' && o.text.startsWith('#'))) {
      const verdict = used.every((s) => s.builtin) ? 'an accept' : 'an exemption (accept in a base chain, return in a user chain)'
      return {
        summary: `spare ${what} from the mark: ${verdict} for them just before ${[...new Set(used.map((s) => locRef(s.rule.loc, {element: false})))].join(', ')} ends the marking chain for them alone, so they keep their mark and the lookup finds ${describeRoute(unmarked)} again (or remove the policy rule or route that sends the marked packets nowhere, if the mark is for nothing else)`,
        ops,
        marked,
      }
    }
  }
  const p = used[0]!.packet
  const flow = routed ?? (side === 'dst' ? {addr: p.dst, port: p.dport} : {addr: p.src, port: p.sport})
  const by = policyRuleFor(dead, unmarked, flow, l4Name(p.proto), side)
  if (!by) return undefined
  return {summary: `route ${what} by table ${by.table} before the mark's policy rule (${by.rule}) sends them to its table: a policy rule for them at preference ${by.pref}`, ops: by.ops, marked}
}

/**
 * A policy rule for one flow (`side` 'dst': the packets to addr:port, 'src': the packets from it) just before the rule
 * whose table holds the dead route, looking up `alive`'s table instead: `ip rule add to|from ADDR ipproto P
 * dport|sport N lookup TABLE pref PREF`. undefined when the dead lookup was chosen by no rule of the host's own.
 */
export function policyRuleFor(
  dead: RouteResult,
  alive: RouteResult,
  flow: {readonly addr: IpAddr; readonly port?: number},
  proto: string | undefined,
  side: FlowSide,
): {ops: FixOp[]; table: string; pref: number; rule: string} | undefined {
  const rule = dead.kind !== 'none' ? dead.rule : undefined
  const table = alive.kind !== 'none' ? alive.rule?.table : undefined
  if (!rule || !table || rule.priority <= 1) return undefined
  const pref = rule.priority - 1
  const port = flow.port !== undefined && flow.port !== 0 ? ` ${side === 'dst' ? 'dport' : 'sport'} ${flow.port}` : ''
  const text = `ip rule add ${side === 'dst' ? 'to' : 'from'} ${formatPrefix(hostPrefix(flow.addr))} ${proto ? `ipproto ${proto}${port} ` : ''}lookup ${table} pref ${pref}`
  return {ops: [{kind: 'cmd', text}], table, pref, rule: rule.loc.text.trim()}
}

/**
 * The route a lookup finds when the policy rule that chose the dead route's table is left out (the rules after it
 * decide): a usable one says that rule is what loses the packets.
 */
export function withoutRule(h: HostView, dead: RouteResult, key: FlowKey): RouteResult | undefined {
  const rule = dead.kind !== 'none' ? dead.rule : undefined
  if (!h.rt || !rule || !h.rt.rules) return undefined
  return routeLookup({...h.rt, rules: h.rt.rules.filter((r) => r !== rule)}, key)
}

function markOf(s: MarkSetter): number | undefined {
  const t = s.rule.target
  return t?.kind === 'MARK' ? t.value : undefined
}

function describeRoute(r: RouteResult): string {
  if (r.kind === 'unicast') return `the route ${r.gateway ? `via ${formatIp(r.gateway)}` : 'on-link'}${r.dev ? ` dev ${r.dev}` : ''}`
  return `a ${r.kind} route`
}

