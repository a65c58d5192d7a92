// Address classes: many simulated packets differ only in one address (the replies of 30,000 backends differ in
// their source, the packets a balancer sends to them in their destination). Two such packets take exactly the
// same way through a firewall when no rule that can see them tells the two addresses apart. This module names
// the class of an address with respect to the rules of some hooks, so that a rule can replay one packet per
// class instead of one per backend.
//
// What the iptables interpreter (dataplane/netfilter.ts evalMatch) reads of a packet's source or destination
// address: `-s`/`-d` prefixes (addr), `-m iprange`, `-m addrtype --src-type/--dst-type` (the host's route type
// of the address), and `-m set` when ipset-save.txt holds the set (its entries' addresses). Every other match
// reads other fields, the match environment, or is assumed whatever the packet (recent, mac, limit, a set the
// snapshot does not hold: it has no contents for them). The chain index (chain-index.ts)
// only skips rules whose `-d` could not match. So two addresses in the same prefixes and ranges, of the same
// route type where an addrtype match looks, are indistinguishable to those rules; a match kind this module
// does not know makes every address its own class (never a guess).
//
// The class covers the firewall only: a caller that routes the packet by the varied address (or whose
// evaluation depends on it elsewhere) adds what the routing sees to its key (see `routeSrcClass`).
import {prefixContains, type IpAddr, type Prefix} from '../../model/ip.js'
import type {IpsetSnapshot} from '../../model/ipset.js'
import type {IptablesRuleset, IptChain, IptTable, Match} from '../../model/iptables.js'
import {HOOK_TABLES, type Hook} from './firewall.js'
import type {HostView} from './host.js'

/** The hooks whose tables a packet may meet, and whether the nat table is among them (a new connection). */
export interface Scope {
  readonly hooks: readonly Hook[]
  readonly nat: boolean
}

interface Analysis {
  /** every address is its own class (a match kind not known here, or a firewall that is not iptables) */
  readonly opaque: boolean
  /** the class texts of an analysis with one prefix length and nothing else, by prefix number (made once each) */
  readonly texts?: string[]
  /** prefix length -> (prefix value under that length -> class bit number) */
  readonly prefixes: readonly PrefixGroup[]
  readonly ranges: readonly {readonly from: IpAddr; readonly to: IpAddr}[]
  readonly addrtype: boolean
}

/** The prefixes of one family and length: prefix value -> class bit number (IPv4 also by number: no bigint per lookup). */
interface PrefixGroup {
  readonly family: 4 | 6
  readonly mask: bigint
  readonly ids: Map<bigint, number>
  /** IPv4: the netmask as a 32-bit pattern, and the prefix values as unsigned numbers */
  readonly mask4: number
  readonly ids4: Map<number, number>
}

/** The class bit of the group's prefix holding `ip` (of the group's family), if any. */
function idIn(g: PrefixGroup, ip: IpAddr): number | undefined {
  if (g.family === 4) return g.ids4.get((Number(ip.value) & g.mask4) >>> 0)
  return g.ids.get(ip.value & g.mask)
}

const OPAQUE: Analysis = {opaque: true, prefixes: [], ranges: [], addrtype: false}

/** per ruleset list (a host's firewall), per scope object and field, the analysis */
const analyses = new WeakMap<readonly IptablesRuleset[], WeakMap<Scope, {src?: Analysis; dst?: Analysis}>>()

function maskOf(family: 4 | 6, len: number): bigint {
  const bits = family === 4 ? 32 : 128
  return len <= 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len)
}

/** Reads `m` the address `field` of the packet? undefined: a match kind not known here. */
function reads(m: Match, field: 'src' | 'dst'): 'prefix' | 'range' | 'addrtype' | false | undefined {
  switch (m.kind) {
    case 'addr':
      return m.dir === field ? 'prefix' : false
    case 'iprange':
      return m.dir === field ? 'range' : false
    case 'addrtype':
      return (field === 'src' ? m.src : m.dst) ? 'addrtype' : false
    case 'iface':
    case 'proto':
    case 'fragment':
    case 'port':
    case 'tcpflags':
    case 'ctstate':
    case 'ctaddr':
    case 'ctport':
    case 'ctstatus':
    case 'ctproto':
    case 'ctdir':
    case 'mark':
    case 'statistic':
    case 'comment':
    case 'icmp':
    case 'ipvs':
    case 'mac':
    case 'set':
    case 'limit':
    case 'recent':
    case 'unknown':
      return false
    default:
      return undefined
  }
}

/** The chains of `t` reachable from its builtin chain `hook` by jumps and gotos (walked from it: a hook of a kube-proxy nat table reaches a few of its 34,000 chains, or all). */
function reachable(t: IptTable, hook: string): IptChain[] {
  const first = t.chains.get(hook)
  if (!first) return []
  const seen = new Set<string>([hook])
  const out: IptChain[] = [first]
  for (let i = 0; i < out.length; i++) {
    for (const r of out[i]!.rules) {
      const tg = r.target
      if (tg?.kind !== 'jump' && tg?.kind !== 'goto') continue
      if (seen.has(tg.chain)) continue
      seen.add(tg.chain)
      const c = t.chains.get(tg.chain)
      if (c) out.push(c)
    }
  }
  return out
}

/**
 * The addresses a `-m set` match reads as the packet's `field` (ipset-save.txt): each entry's address part of a
 * dimension whose flag is `field`, as a prefix or a range (list:set: its members'). A set the snapshot does not
 * hold is assumed whatever the packet: it reads nothing.
 */
function setAddresses(ipsets: IpsetSnapshot, m: Extract<Match, {kind: 'set'}>, field: 'src' | 'dst', prefix: (p: Prefix) => void, range: (from: IpAddr, to: IpAddr) => void, depth = 0): void {
  const set = ipsets.sets.get(m.name)
  if (!set?.dims || depth > 1) return
  for (const e of set.entries) {
    for (let k = 0; k < e.parts.length; k++) {
      const x = e.parts[k]!
      if (x.kind === 'set') setAddresses(ipsets, {...m, name: x.name}, field, prefix, range, depth + 1)
      if (m.flags[k] !== field) continue
      if (x.kind === 'net') prefix(x.prefix)
      else if (x.kind === 'ip') {
        // hash:ip / bitmap:ip netmask N: an entry is the whole network
        const total = x.from.family === 4 ? 32 : 128
        const n = set.netmask !== undefined && set.netmask < total ? set.netmask : total
        const hi = x.to.value | ((1n << BigInt(total - n)) - 1n)
        if (n === total && x.from.value === x.to.value) prefix({family: x.from.family, value: x.from.value, len: total})
        else range(x.from, {family: x.to.family, value: hi})
      }
    }
  }
}

function analyse(rulesets: readonly IptablesRuleset[], scope: Scope, field: 'src' | 'dst', ipsets?: IpsetSnapshot): Analysis {
  const byLen = new Map<string, PrefixGroup>()
  const ranges: {from: IpAddr; to: IpAddr}[] = []
  let addrtype = false
  let next = 0
  const addPrefix = (p: Prefix): void => {
    const k = `${p.family}/${p.len}`
    let g = byLen.get(k)
    if (!g) {
      const mask = maskOf(p.family, p.len)
      g = {family: p.family, mask, ids: new Map(), mask4: p.family === 4 ? Number(mask) | 0 : 0, ids4: new Map()}
      byLen.set(k, g)
    }
    if (!g.ids.has(p.value)) {
      g.ids.set(p.value, next)
      if (p.family === 4) g.ids4.set(Number(p.value), next)
      next++
    }
  }
  const addRange = (from: IpAddr, to: IpAddr): void => {
    ranges.push({from, to})
  }
  for (const rs of rulesets) {
    for (const hook of scope.hooks) {
      for (const tname of HOOK_TABLES[hook]) {
        if (tname === 'nat' && !scope.nat) continue
        const t = rs.tables.get(tname)
        if (!t || !t.chains.has(hook)) continue
        for (const c of reachable(t, hook)) {
          for (const r of c.rules) {
            for (const m of r.matches) {
              // a set match decided from ipset-save.txt tells the addresses of its entries apart
              if (m.kind === 'set' && ipsets) setAddresses(ipsets, m, field, addPrefix, addRange)
              const how = reads(m, field)
              if (how === false) continue
              if (how === undefined) return OPAQUE
              if (how === 'addrtype') addrtype = true
              else if (how === 'range') {
                const x = m as Extract<Match, {kind: 'iprange'}>
                ranges.push({from: x.from, to: x.to})
              } else addPrefix((m as Extract<Match, {kind: 'addr'}>).prefix)
            }
          }
        }
      }
    }
  }
  return {opaque: false, prefixes: [...byLen.values()], ranges, addrtype, texts: []}
}

const NONE: Analysis = {opaque: false, prefixes: [], ranges: [], addrtype: false}

/** The analysis of `field` in the tables of `scope` (remembered per scope object: scopes are constants). */
/** the last firewall and scope asked about, and their analyses (callers ask for one backend after another) */
let lastRulesets: readonly IptablesRuleset[] | undefined
let lastScope: Scope | undefined
let lastBoth: {src?: Analysis; dst?: Analysis} = {}

function analysisOf(h: HostView, scope: Scope, field: 'src' | 'dst'): Analysis {
  const fw = h.fw
  if (!fw) return NONE
  if (fw.kind !== 'iptables') return OPAQUE
  if (fw.rulesets === lastRulesets && scope === lastScope) return (lastBoth[field] ??= analyse(fw.rulesets, scope, field, h.snap.ipsets))
  let m = analyses.get(fw.rulesets)
  if (!m) {
    m = new WeakMap()
    analyses.set(fw.rulesets, m)
  }
  let both = m.get(scope)
  if (!both) {
    both = {}
    m.set(scope, both)
  }
  lastRulesets = fw.rulesets
  lastScope = scope
  lastBoth = both
  return (both[field] ??= analyse(fw.rulesets, scope, field, h.snap.ipsets))
}

/**
 * The class of `ip` as the `field` address of a packet meeting the tables of `scope` on `h`: equal for two
 * addresses exactly when no rule there can tell them apart (prefixes, ranges and route type they fall in).
 * `assumeLocal` is the path's (addrtype sees it).
 */
export function addrClass(h: HostView, scope: Scope, field: 'src' | 'dst', ip: IpAddr, assumeLocal?: readonly IpAddr[]): string {
  const a = analysisOf(h, scope, field)
  if (a.opaque) return `=${ip.family}:${ip.value}`
  // no rule looks at the address: one class per family
  if (a.prefixes.length === 0 && a.ranges.length === 0 && !a.addrtype) return ip.family === 4 ? '4' : '6'
  const fam = ip.family === 4 ? '4' : '6'
  if (a.prefixes.length === 1 && a.ranges.length === 0 && !a.addrtype) {
    // the common shape (one prefix length): the class text of each prefix made once, no text per call
    const g = a.prefixes[0]!
    const id = g.family === ip.family ? idIn(g, ip) : undefined
    if (id === undefined) return fam
    return (a.texts![id] ??= `${fam},${id}`)
  }
  let key = fam
  for (const g of a.prefixes) {
    if (g.family !== ip.family) continue
    const id = idIn(g, ip)
    if (id !== undefined) key += `,${id}`
  }
  for (let i = 0; i < a.ranges.length; i++) {
    const r = a.ranges[i]!
    if (ip.family === r.from.family && ip.value >= r.from.value && ip.value <= r.to.value) key += `,r${i}`
  }
  if (a.addrtype) key += `,${h.addrType(ip, assumeLocal)}`
  return key
}

/**
 * What a route lookup can see of a packet's source (policy rules `from PREFIX`): the rules whose `from`
 * holds the address. Empty without routing tables (no lookup is made).
 */
export function routeSrcClass(h: HostView, ip: IpAddr): string {
  const rules = h.rt?.rules
  if (!rules) return ''
  let key = ''
  for (let i = 0; i < rules.length; i++) {
    const f = rules[i]!.from
    if (f && prefixContains(f, ip)) key += `,${i}`
  }
  return key
}
