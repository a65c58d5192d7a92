// Routing decisions as fib_lookup makes them: policy rules in priority order (net/core/fib_rules.c),
// then longest prefix, then lowest metric within the table (net/ipv4/fib_trie.c), and source address
// selection (inet_select_addr, net/ipv4/devinet.c) for locally generated packets.
import {prefixContains, type IpAddr} from '../model/ip.js'
import type {Interface, IpRule, Route} from '../model/net.js'
import type {Loc} from '../model/source.js'

export interface RoutingTables {
  readonly interfaces: readonly Interface[]
  readonly routes: readonly Route[]
  /** undefined: the kernel's default rules (0 local, 32766 main, 32767 default) */
  readonly rules?: readonly IpRule[]
}

export interface FlowKey {
  readonly dst: IpAddr
  readonly src?: IpAddr
  readonly mark?: number
  /** input interface (forwarded/received packets); locally generated packets use 'lo' as the kernel does */
  readonly iif?: string
  readonly oif?: string
  readonly proto?: number
  readonly sport?: number
  readonly dport?: number
}

export type RouteResult =
  | {readonly kind: 'local' | 'broadcast'; readonly route: Route; readonly rule?: IpRule}
  | {readonly kind: 'unicast'; readonly route: Route; readonly rule?: IpRule; readonly dev?: string; readonly gateway?: IpAddr}
  | {readonly kind: 'blackhole' | 'unreachable' | 'prohibit'; readonly route?: Route; readonly rule?: IpRule}
  /** no rule and no route matched: ENETUNREACH */
  | {readonly kind: 'none'}

const DEFAULT_RULES = [
  {priority: 0, table: 'local'},
  {priority: 32766, table: 'main'},
  {priority: 32767, table: 'default'},
]

/** `table` as the model spells it: 'local' | 'main' | 'default' | number string. 255/254/253 are the names. */
export function tableName(t: string | number | undefined): string {
  const s = String(t ?? 'main')
  return s === '255' ? 'local' : s === '254' ? 'main' : s === '253' ? 'default' : s
}

function ruleMatches(r: IpRule, k: FlowKey): boolean {
  let hit = true
  if (r.from && (!k.src || !prefixContains(r.from, k.src))) hit = false
  if (hit && r.to && !prefixContains(r.to, k.dst)) hit = false
  if (hit && r.fwmark !== undefined && (((k.mark ?? 0) & (r.fwmask ?? 0xffffffff)) >>> 0) !== r.fwmark >>> 0) hit = false
  if (hit && r.iif !== undefined && r.iif !== (k.iif ?? 'lo')) hit = false
  if (hit && r.oif !== undefined && r.oif !== k.oif) hit = false
  if (hit && r.ipproto !== undefined && r.ipproto !== k.proto) hit = false
  if (hit && r.sport && (k.sport === undefined || k.sport < r.sport[0] || k.sport > r.sport[1])) hit = false
  if (hit && r.dport && (k.dport === undefined || k.dport < r.dport[0] || k.dport > r.dport[1])) hit = false
  return hit !== r.not
}

/** Longest prefix, then lowest metric, then first listed (fib_table_lookup). */
export function lookupTable(routes: readonly Route[], table: string, dst: IpAddr, oif?: string): Route | undefined {
  let best: Route | undefined
  for (const r of routes) {
    if (tableName(r.table) !== table || r.family !== dst.family) continue
    if (!prefixContains(r.dst, dst)) continue
    if (oif !== undefined && r.dev !== undefined && r.dev !== oif && r.type !== 'local') continue
    if (!best || r.dst.len > best.dst.len || (r.dst.len === best.dst.len && r.metric < best.metric)) best = r
  }
  return best
}

export function routeLookup(t: RoutingTables, k: FlowKey): RouteResult {
  // `ip -j rule show` lists IPv4 rules only: a family without rules in the snapshot gets the defaults
  let sorted = (t.rules ?? []).filter((r) => r.family === k.dst.family)
  if (sorted.length === 0) sorted = DEFAULT_RULES.map((d) => ({...d, family: k.dst.family, not: false, action: 'lookup' as const}) as unknown as IpRule)
  sorted = [...sorted].sort((a, b) => a.priority - b.priority)
  for (let i = 0; i < sorted.length; i++) {
    const rule = sorted[i]!
    if (!ruleMatches(rule, k)) continue
    switch (rule.action) {
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        return {kind: rule.action, rule}
      case 'nop':
        continue
      case 'goto': {
        const j = sorted.findIndex((r) => r.priority >= (rule.goto ?? Infinity))
        if (j < 0) return {kind: 'none'}
        i = j - 1
        continue
      }
      case 'lookup': {
        const route = lookupTable(t.routes, tableName(rule.table), k.dst, k.oif)
        if (!route) continue
        if (rule.suppressPrefixlen !== undefined && route.dst.len <= rule.suppressPrefixlen) continue
        const res = resultOf(route, rule)
        if (res === undefined) continue // throw: go on with the next rule
        return res
      }
    }
  }
  return {kind: 'none'}
}

function resultOf(route: Route, rule: IpRule | undefined): RouteResult | undefined {
  switch (route.type) {
    case 'local':
    case 'broadcast':
      return {kind: route.type, route, rule}
    case 'blackhole':
    case 'unreachable':
    case 'prohibit':
      return {kind: route.type, route, rule}
    case 'throw':
      return undefined
    default: {
      const hop = route.nexthops?.[0]
      return {kind: 'unicast', route, rule, dev: route.dev ?? hop?.dev, gateway: route.gateway ?? hop?.gateway}
    }
  }
}

/** Is `ip` one of this host's addresses (a `local` route in any table, or an address on an interface)? */
export function isLocalAddress(t: RoutingTables, ip: IpAddr): boolean {
  for (const i of t.interfaces) for (const a of i.addresses) if (a.ip.family === ip.family && a.ip.value === ip.value) return true
  return t.routes.some((r) => r.type === 'local' && r.family === ip.family && prefixContains(r.dst, ip))
}

/**
 * The source address a locally generated packet gets (inet_select_addr): the route's prefsrc, else a
 * primary address of the output device in the subnet of the next hop, else the first global address of
 * the device, else the first global address of the host.
 */
export function selectSource(t: RoutingTables, res: RouteResult, dst: IpAddr): IpAddr | undefined {
  if (res.kind !== 'local' && res.kind !== 'broadcast' && res.kind !== 'unicast') return undefined
  if (res.route.src) return res.route.src
  if (res.kind === 'local') return dst
  const dev = res.kind === 'unicast' ? res.dev : res.route.dev
  const hop = res.kind === 'unicast' ? (res.gateway ?? dst) : dst
  const iface = t.interfaces.find((i) => i.name === dev)
  const fam = iface?.addresses.filter((a) => a.family === dst.family && a.scope !== 'host') ?? []
  const inSubnet = fam.find((a) => prefixContains({family: a.family, value: a.ip.value & maskOf(a.family, a.prefixlen), len: a.prefixlen}, hop))
  if (inSubnet) return inSubnet.ip
  const global = fam.find((a) => a.scope === 'global') ?? fam[0]
  if (global) return global.ip
  for (const i of t.interfaces) for (const a of i.addresses) if (a.family === dst.family && a.scope === 'global') return a.ip
  return undefined
}

function maskOf(family: 4 | 6, len: number): bigint {
  const total = family === 4 ? 32 : 128
  return len <= 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(total - len)
}

/** The loc of whatever decided a route result, for evidence. */
export function routeEvidence(res: RouteResult): Loc[] {
  const out: Loc[] = []
  if (res.kind !== 'none') {
    if (res.rule && res.rule.loc) out.push(res.rule.loc)
    if ('route' in res && res.route) out.push(res.route.loc)
  }
  return out
}
