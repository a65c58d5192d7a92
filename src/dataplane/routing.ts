// Routing decisions as fib_lookup makes them: policy rules in priority order (net/core/fib_rules.c),
// then longest prefix, then lowest metric within the table (net/ipv4/fib_trie.c), and source address
// selection (inet_select_addr, net/ipv4/devinet.c) for locally generated packets.
import {formatIp, prefixContains, type IpAddr} from '../model/ip.js'
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
  /** the packet's TOS byte (0: nothing here sets one) */
  readonly tos?: number
  /** the socket's uid; forwarded and received packets have 0 (sock_net_uid(net, NULL)), and so do local sockets here */
  readonly uid?: number
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
  // fib_rule_match: (rule->mark ^ mark) & mark_mask; a mark without a mask compares every bit
  if (hit && r.fwmark !== undefined && ((((k.mark ?? 0) ^ r.fwmark) & (r.fwmask ?? (r.fwmark ? 0xffffffff : 0))) >>> 0) !== 0) hit = false
  // a tos selector matches that TOS only (fib4_rule_match compares the DSCP), and a uid range the socket's uid
  if (hit && r.tos && r.tos !== (k.tos ?? 0)) hit = false
  if (hit && r.uidrange && ((k.uid ?? 0) < r.uidrange[0] || (k.uid ?? 0) > r.uidrange[1])) hit = false
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
        // the rule of exactly that preference (ctarget); without one the goto is [unresolved] and fib_rules_lookup
        // goes on with the next rule as if it were not there
        const j = sorted.findIndex((r) => r.priority === rule.goto)
        if (j < 0) continue
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

// ---------------------------------------------------------------------------------------------------------
// Input-route checks of ip_route_input_slow / fib_validate_source (net/ipv4/route.c, net/ipv4/fib_frontend.c)
// and the output-route check of __mkroute_output. Per-interface settings are read through `conf`, which
// answers the kernel's combination of `all` and the interface (IN_DEV_ORCONF / IN_DEV_MAXCONF).

/** Reads a per-interface IPv4 setting the way include/linux/inetdevice.h combines `all` and the device. */
export interface InetConf {
  /** IN_DEV_ORCONF: on when either `all` or the device has it */
  or(name: string, iface: string | undefined): boolean
  /** IN_DEV_MAXCONF: the larger of `all` and the device (rp_filter) */
  max(name: string, iface: string | undefined): number
  /** IN_DEV_CONF_GET on the device alone (forwarding) */
  dev(name: string, iface: string | undefined): number | undefined
}

export type InputVerdict =
  | {readonly ok: true; readonly route: RouteResult}
  | {readonly ok: false; readonly reason: string; readonly route?: RouteResult}

function isV4(a: IpAddr, top8: bigint): boolean {
  return a.family === 4 && a.value >> 24n === top8
}
const isLoopback4 = (a: IpAddr) => isV4(a, 127n)
const isZeronet4 = (a: IpAddr) => isV4(a, 0n)
const isMulticast4 = (a: IpAddr) => a.family === 4 && a.value >> 28n === 0xen
const isLbcast4 = (a: IpAddr) => a.family === 4 && a.value === 0xffffffffn

/**
 * The routing decision for a packet received on `iif` (ip_route_input_slow): martian checks, the FIB
 * lookup, source validation (rp_filter with the effective value max(all, iif), a source that is one of our
 * own addresses without accept_local) and, for a packet to forward, the input device's forwarding switch.
 */
export function routeInput(
  t: RoutingTables,
  conf: InetConf,
  k: {readonly src: IpAddr; readonly dst: IpAddr; readonly iif: string; readonly mark?: number; readonly proto?: number; readonly sport?: number; readonly dport?: number},
): InputVerdict {
  if (k.dst.family === 4) {
    if (isMulticast4(k.src) || isLbcast4(k.src) || isZeronet4(k.src)) return {ok: false, reason: `martian source ${fmt(k.src)} on ${k.iif}`}
    if (isZeronet4(k.dst)) return {ok: false, reason: `martian destination ${fmt(k.dst)}`}
    const localnet = conf.or('route_localnet', k.iif)
    if (isLoopback4(k.dst) && !localnet && k.iif !== 'lo')
      return {ok: false, reason: `martian destination ${fmt(k.dst)} arrived on ${k.iif}: a 127/8 destination is only routed when net.ipv4.conf.${k.iif}.route_localnet=1`}
    if (isLoopback4(k.src) && !localnet && k.iif !== 'lo')
      return {ok: false, reason: `martian source ${fmt(k.src)} arrived on ${k.iif}: a 127/8 source is dropped unless net.ipv4.conf.${k.iif}.route_localnet=1`}
  }
  const route = routeLookup(t, {dst: k.dst, src: k.src, iif: k.iif, mark: k.mark, proto: k.proto, sport: k.sport, dport: k.dport})
  if (route.kind === 'none') return {ok: false, reason: `no route to ${fmt(k.dst)} (network unreachable)`, route}
  if (route.kind === 'blackhole' || route.kind === 'unreachable' || route.kind === 'prohibit') return {ok: false, reason: `route to ${fmt(k.dst)} is ${route.kind}`, route}
  if (k.iif !== 'lo') {
    // a packet to forward is validated with the forward route's output device as the reverse lookup's iif
    // (__mkroute_input passes FIB_RES_OIF; local delivery passes 0, the loopback device)
    const bad = validateSource(t, conf, {...k, oif: route.kind === 'unicast' ? route.dev : undefined})
    if (bad) return {ok: false, reason: bad, route}
  }
  if (route.kind === 'unicast') {
    const fwd = conf.dev('forwarding', k.iif)
    if (fwd === 0) return {ok: false, reason: `forwarding is off on ${k.iif} (net.ipv4.conf.${k.iif}.forwarding=0 / net.ipv4.ip_forward=0): the packet to ${fmt(k.dst)} is not routed on`, route}
  }
  return {ok: true, route}
}

/**
 * fib_validate_source: undefined when the source is acceptable, else the reason the kernel drops it. `oif` is the
 * output device of the forward route of a packet to forward (undefined for local delivery); proto and ports are the
 * packet's own.
 */
export function validateSource(
  t: RoutingTables,
  conf: InetConf,
  k: {readonly src: IpAddr; readonly dst: IpAddr; readonly iif: string; readonly mark?: number; readonly oif?: string; readonly proto?: number; readonly sport?: number; readonly dport?: number},
): string | undefined {
  const rpf = conf.max('rp_filter', k.iif)
  const acceptLocal = conf.or('accept_local', k.iif)
  // The reverse lookup (__fib_validate_source): daddr=src, saddr=dst, iif the forward route's output device (else
  // the loopback device), mark only with src_valid_mark, and the packet's protocol with its ports swapped
  // (fib4_rules_early_flow_dissect, when a rule has ipproto/sport/dport): `ip rule ipproto tcp sport 80` applies
  // to the requests' source check as it does to the answers.
  const rev = routeLookup(t, {dst: k.src, src: k.dst, iif: k.oif ?? 'lo', mark: conf.or('src_valid_mark', k.iif) ? k.mark : 0, proto: k.proto, sport: k.dport, dport: k.sport})
  if (rev.kind === 'local' && !acceptLocal)
    return `martian source ${fmt(k.src)} on ${k.iif}: it is one of this host's own addresses (net.ipv4.conf.${k.iif}.accept_local=0)`
  if (rpf === 0) return undefined
  if (rev.kind !== 'unicast' && rev.kind !== 'local') {
    return `rp_filter=${rpf} (effective max(conf.all, conf.${k.iif})) drops it: this host has no route back to the source ${fmt(k.src)}`
  }
  // strict: the route back must use the arrival device (fib_info_nh_uses_dev); a source of our own (accept_local)
  // too: its local route's device is the one that holds the address (a local route's device is lo only for lo's)
  if (rpf === 1 && (rev.kind === 'unicast' || rev.kind === 'local')) {
    const devs = new Set<string>()
    const dev = rev.kind === 'unicast' ? rev.dev : rev.route.dev
    if (dev) devs.add(dev)
    for (const h of rev.route.nexthops ?? []) if (h.dev) devs.add(h.dev)
    if (!devs.has(k.iif)) {
      return `strict rp_filter (effective max(conf.all, conf.${k.iif}) = 1) drops it: the packet from ${fmt(k.src)} arrived on ${k.iif}, but the route back to ${fmt(k.src)} leaves via ${[...devs].join(',') || '?'}`
    }
  }
  return undefined
}

/**
 * The sender address of the ARP request a host sends on `dev` for the next hop `nh` (arp_solicit): with arp_announce
 * 0 the packet's source when it is one of the host's addresses, with 1 only when it is in the next hop's subnet on
 * `dev`, else (and with 2) an address of `dev` in the next hop's subnet, or its first global one (inet_select_addr).
 */
export function arpSenderAddress(t: RoutingTables, conf: InetConf, dev: string, nh: IpAddr, src: IpAddr | undefined): IpAddr | undefined {
  const iface = t.interfaces.find((i) => i.name === dev)
  const fam = iface?.addresses.filter((a) => a.family === nh.family && a.scope !== 'host') ?? []
  const sameNet = (a: {ip: IpAddr; prefixlen: number}, x: IpAddr) => prefixContains({family: a.ip.family, value: a.ip.value & maskOf(a.ip.family, a.prefixlen), len: a.prefixlen}, x)
  const announce = conf.max('arp_announce', dev)
  if (src && isLocalAddress(t, src)) {
    if (announce === 0) return src
    if (announce === 1 && fam.some((a) => sameNet(a, nh) && sameNet(a, src))) return src
  }
  return (fam.find((a) => sameNet(a, nh)) ?? fam.find((a) => a.scope === 'global') ?? fam[0])?.ip
}

/** __mkroute_output: a 127/8 source may not leave through a non-loopback device unless route_localnet. */
export function checkOutputSource(conf: InetConf, src: IpAddr | undefined, dev: string | undefined): string | undefined {
  if (!src || src.family !== 4 || !isLoopback4(src) || dev === undefined || dev === 'lo') return undefined
  if (conf.or('route_localnet', dev)) return undefined
  return `the source ${fmt(src)} is a loopback address and may not leave through ${dev} (net.ipv4.conf.${dev}.route_localnet=0): the output route fails with EINVAL and the packet is dropped`
}

const fmt = formatIp
