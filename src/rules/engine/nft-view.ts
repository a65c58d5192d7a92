// The iptables view of an nftables table, for the rule engine. The rules read rulesets through the iptables model
// (selectors, DNAT targets, MARK setters, ctstate accepts, statistic cascades); this module translates each
// `ip`/`inet` nft table into that model, one "shadow" IptablesRuleset per table, so that every rule works on nft
// rulesets unchanged. The translation is exact where iptables can say the same thing and an `unknown` match
// (which the iptables interpreter assumes, and says so) where it cannot:
//
// - a base chain becomes the builtin chain of its hook (`INPUT`...) in the table its type and priority make it
//   (nat type: nat; route type: mangle; filter type: raw <= -200 < mangle < -75 <= filter < 25 <= security < 75
//   <= filter), with its policy; regular chains keep their names (one copy in every table that reaches them);
//   two base chains of one table in the same place go to a second shadow ruleset;
// - a rule with anonymous sets, vmaps or maps becomes several rules, one per alternative, in order: a vmap entry
//   is the entry's key as matches with the entry's verdict; a NAT or mark map keyed by `numgen`/`jhash`/`symhash`
//   is a `-m statistic --mode random` cascade with each element's share of the key space (first match wins for
//   NAT, last match wins for marks: the probabilities are computed for that), which is also the share a hash
//   gives over many clients;
// - statements with an effect that does not end the rule (`meta mark set`, `ct mark set`, `notrack`) become one
//   rule each, with the matches written before them.
//
// Shadow rules carry the nft rule's place (file, line) and, as text, `FAMILY TABLE CHAIN: RULE # handle N` (with
// ` (element KEY : VALUE)` for one alternative of a map);
// `shadowOf(ruleset)` and `nftRuleOf` lead back to the nft rule for fixes in nft syntax (nft-firewall.ts).
import {makePrefix, type IpAddr, type Prefix} from '../../model/ip.js'
import type {AddrType, CtState, IptablesRuleset, IptChain, IptRule, IptTable, Match, PortRange, Target} from '../../model/iptables.js'
import {formatNftExpr, formatNftRule, type NftChain, type NftExpr, type NftRule, type NftRuleset, type NftSetElem, type NftStmt, type NftTable, type NftVerdict} from '../../model/nft.js'
import type {Loc} from '../../model/source.js'
import {rejectWith} from '../../dataplane/nft.js'

export type ShadowClass = 'raw' | 'mangle' | 'nat' | 'filter' | 'security'
export type IpHook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING'

const HOOKS: Readonly<Record<string, IpHook>> = {prerouting: 'PREROUTING', input: 'INPUT', forward: 'FORWARD', output: 'OUTPUT', postrouting: 'POSTROUTING'}
const BUILTIN_NAMES = new Set<string>(Object.values(HOOKS))

export interface ShadowBase {
  readonly cls: ShadowClass
  readonly hook: IpHook
  readonly chain: NftChain
  readonly priority: number
}

export interface NftShadow {
  /** the iptables view */
  readonly ruleset: IptablesRuleset
  readonly nft: NftRuleset
  readonly table: NftTable
  /** the base chains of this view */
  readonly bases: readonly ShadowBase[]
  /** shadow rule -> the nft rule it was translated from */
  readonly origin: ReadonlyMap<IptRule, NftRule>
  /** `${class}/${shadow chain}` -> nft chain */
  readonly chains: ReadonlyMap<string, NftChain>
  /** the shadow rules of an nft rule in a class, in order */
  rulesOf(cls: string, rule: NftRule): readonly IptRule[]
  /** the shadow chain name of an nft chain */
  shadowName(chain: string): string
}

const registry = new WeakMap<IptablesRuleset, NftShadow>()

export function shadowOf(rs: IptablesRuleset): NftShadow | undefined {
  return registry.get(rs)
}

export function nftRuleOf(rs: IptablesRuleset, rule: IptRule): NftRule | undefined {
  return registry.get(rs)?.origin.get(rule)
}

/** The class a base chain's type and priority put it in. */
export function classOf(c: NftChain): ShadowClass {
  const b = c.base!
  if (b.type === 'nat') return 'nat'
  if (b.type === 'route') return 'mangle'
  const p = b.priority
  if (p <= -200) return 'raw'
  if (p < -75) return 'mangle'
  if (p < 25) return 'filter'
  if (p < 75) return 'security'
  return 'filter'
}

/** Evidence text of an nft rule: where it is and what it says. */
export function nftRuleText(r: NftRule): string {
  return `${r.family} ${r.table} ${r.chain}: ${formatNftRule(r)} # handle ${r.handle}`
}

// ---- matches --------------------------------------------------------------------------------------------

const ALWAYS: readonly Match[] = []
const NEVER: Match = {kind: 'proto', neg: true, proto: 'all', name: 'all'}
const L4: Readonly<Record<string, number>> = {icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, udplite: 136, dccp: 33, ipip: 4, ipencap: 4, vrrp: 112}
const PORT_MODULE: Readonly<Record<string, {module: string; proto?: number}>> = {
  tcp: {module: 'tcp', proto: 6},
  udp: {module: 'udp', proto: 17},
  sctp: {module: 'sctp', proto: 132},
  udplite: {module: 'udplite', proto: 136},
  dccp: {module: 'dccp', proto: 33},
  th: {module: 'multiport'},
}
const ICMP_TYPES: Readonly<Record<string, number>> = {'echo-reply': 0, 'destination-unreachable': 3, redirect: 5, 'echo-request': 8, 'time-exceeded': 11, 'parameter-problem': 12}
const CT_STATUS: Readonly<Record<string, string>> = {dnat: 'DNAT', snat: 'SNAT', 'seen-reply': 'SEEN_REPLY', assured: 'ASSURED', confirmed: 'CONFIRMED', expected: 'EXPECTED', dying: 'DYING'}

/** A disjunction of conjunctions: the packet matches when it matches every match of one alternative. */
type Alts = readonly (readonly Match[])[]

function unknown(text: string): Alts {
  return [[{kind: 'unknown', module: 'nft', args: [text]}]]
}

/** The constants a right-hand side stands for (one element, or the elements of an anonymous or named set). */
function elementsOf(right: NftExpr, table: NftTable): readonly NftSetElem[] | undefined {
  if (right.kind === 'set') return right.elements
  if (right.kind === 'setref') return table.sets.get(right.name)?.elements
  return [{key: right}]
}

function num(e: NftExpr): number | undefined {
  if (e.kind === 'number') return e.value
  if (e.kind === 'bignum' && e.value <= 0xffffffffn) return Number(e.value)
  return undefined
}

function addrMatch(dir: 'src' | 'dst', k: NftExpr, neg: boolean): Match | undefined {
  if (k.kind === 'addr' && k.addr.family === 4) return {kind: 'addr', dir, neg, prefix: makePrefix(k.addr, 32)}
  if (k.kind === 'prefix' && k.prefix.family === 4) return {kind: 'addr', dir, neg, prefix: k.prefix}
  if (k.kind === 'range' && k.from.kind === 'addr' && k.to.kind === 'addr' && k.from.addr.family === 4) return {kind: 'iprange', dir, neg, from: k.from.addr, to: k.to.addr}
  return undefined
}

function portRange(k: NftExpr): PortRange | undefined {
  const n = num(k)
  if (n !== undefined) return [n, n]
  if (k.kind === 'range') {
    const a = num(k.from)
    const b = num(k.to)
    if (a !== undefined && b !== undefined) return [a, b]
  }
  return undefined
}

function protoOf(k: NftExpr): number | undefined {
  const n = num(k)
  if (n !== undefined) return n
  if (k.kind === 'string') return L4[k.value]
  return undefined
}

function ifaceName(k: NftExpr): string | undefined {
  if (k.kind !== 'string') return undefined
  return k.value.endsWith('*') ? k.value.slice(0, -1) + '+' : k.value
}

function flagList(e: NftExpr): string[] | undefined {
  if (e.kind === 'string') return [e.value]
  if (e.kind === 'list') return e.items.every((i) => i.kind === 'string') ? e.items.map((i) => (i as {value: string}).value) : undefined
  if (e.kind === 'set') {
    const out: string[] = []
    for (const el of e.elements) {
      if (el.key.kind !== 'string') return undefined
      out.push(el.key.value)
    }
    return out
  }
  return undefined
}

/**
 * One match per element (an alternative each), or for `!=` one conjunction of negated matches. `make` turns an
 * element into a match (neg as asked), undefined when it cannot.
 */
function perElement(op: string, right: NftExpr, table: NftTable, make: (k: NftExpr, neg: boolean) => Match | undefined, text: () => string): Alts {
  const elems = elementsOf(right, table)
  if (!elems || elems.length > 256) return unknown(text())
  const neg = op === '!='
  const ms: Match[] = []
  for (const el of elems) {
    const m = make(el.key, neg)
    if (!m) return unknown(text())
    ms.push(m)
  }
  return neg ? [ms] : ms.map((m) => [m])
}

function markMatch(left: NftExpr, op: string, right: NftExpr, text: () => string): Alts {
  let base = left
  let mask = 0xffffffff
  if (left.kind === 'binop' && left.op === '&' && left.right.kind === 'number') {
    base = left.left
    mask = left.right.value >>> 0
  }
  const module = base.kind === 'meta' && base.key === 'mark' ? 'mark' : base.kind === 'ct' && base.key === 'mark' ? 'connmark' : undefined
  if (!module || (op !== '==' && op !== '!=' && op !== 'in')) return unknown(text())
  let value: number | undefined = num(right)
  if (right.kind === 'intprefix') {
    const m = right.len === 0 ? 0 : (0xffffffff << (32 - right.len)) >>> 0
    mask = (mask & m) >>> 0
    value = (right.value & m) >>> 0
  }
  if (value === undefined) return unknown(text())
  return [[{kind: 'mark', module: module as 'mark' | 'connmark', neg: op === '!=', value: value >>> 0, mask}]]
}

/** `left op right` as iptables matches. */
function translateMatch(s: Extract<NftStmt, {kind: 'match'}>, table: NftTable, text: () => string): Alts {
  const {op, left, right} = s
  if (op !== '==' && op !== '!=' && op !== 'in' && !(left.kind === 'payload' && (left.field === 'sport' || left.field === 'dport'))) {
    return unknown(text())
  }
  switch (left.kind) {
    case 'payload': {
      const f = `${left.protocol} ${left.field}`
      if (left.protocol === 'ip6' || left.protocol === 'icmpv6' || left.protocol === 'arp' || left.protocol === 'vlan') return [[NEVER]]
      if (f === 'ip saddr' || f === 'ip daddr') return perElement(op, right, table, (k, neg) => addrMatch(f === 'ip saddr' ? 'src' : 'dst', k, neg), text)
      if (f === 'ip protocol') return perElement(op, right, table, (k, neg) => (protoOf(k) === undefined ? undefined : {kind: 'proto', neg, proto: protoOf(k)!, name: String(protoOf(k))}), text)
      const pm = PORT_MODULE[left.protocol]
      if (pm && (left.field === 'sport' || left.field === 'dport')) {
        const dir = left.field === 'sport' ? ('src' as const) : ('dst' as const)
        const pre: Match[] = pm.proto !== undefined ? [{kind: 'proto', neg: false, proto: pm.proto, name: left.protocol}] : []
        let ranges: PortRange[] = []
        let neg = op === '!='
        if (op === '<' || op === '<=' || op === '>' || op === '>=') {
          const n = num(right)
          if (n === undefined) return unknown(text())
          ranges = [op === '<' ? [0, n - 1] : op === '<=' ? [0, n] : op === '>' ? [n + 1, 65535] : [n, 65535]]
          neg = false
        } else {
          const elems = elementsOf(right, table)
          if (!elems || elems.length > 256) return unknown(text())
          for (const el of elems) {
            const r = portRange(el.key)
            if (!r) return unknown(text())
            ranges.push(r)
          }
        }
        return [[...pre, {kind: 'port', module: pm.module, dir, neg, ranges}]]
      }
      if (f === 'tcp flags') {
        const comp = flagList(right)
        if (!comp) return unknown(text())
        const all = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG']
        const mask = op === 'in' ? comp.map((x) => x.toUpperCase()) : all
        return [[{kind: 'proto', neg: false, proto: 6, name: 'tcp'}, {kind: 'tcpflags', neg: op === '!=', mask, comp: comp.map((x) => x.toUpperCase())}]]
      }
      if (f === 'icmp type') {
        return perElement(op, right, table, (k, neg) => {
          const t = num(k) ?? (k.kind === 'string' ? ICMP_TYPES[k.value] : undefined)
          return t === undefined ? undefined : {kind: 'icmp', family: 4, neg, type: t, name: 'icmp'}
        }, text)
      }
      return unknown(text())
    }
    case 'binop': {
      if (left.left.kind === 'payload' && left.left.protocol === 'tcp' && left.left.field === 'flags' && left.op === '&') {
        const mask = flagList(left.right)
        const comp = flagList(right)
        if (!mask || !comp || (op !== '==' && op !== '!=')) return unknown(text())
        return [[{kind: 'proto', neg: false, proto: 6, name: 'tcp'}, {kind: 'tcpflags', neg: op === '!=', mask: mask.map((x) => x.toUpperCase()), comp: comp.map((x) => x.toUpperCase())}]]
      }
      return markMatch(left, op, right, text)
    }
    case 'meta': {
      switch (left.key) {
        case 'l4proto':
          return perElement(op, right, table, (k, neg) => (protoOf(k) === undefined ? undefined : {kind: 'proto', neg, proto: protoOf(k)!, name: String(protoOf(k))}), text)
        case 'nfproto':
        case 'protocol': {
          const names = flagList(right) ?? []
          const v4 = names.some((n) => n === 'ipv4' || n === 'ip')
          return (v4 !== (op === '!=')) ? [ALWAYS] : [[NEVER]]
        }
        case 'iifname':
        case 'iif':
        case 'oifname':
        case 'oif': {
          const dir = left.key.startsWith('i') ? ('in' as const) : ('out' as const)
          return perElement(op, right, table, (k, neg) => (ifaceName(k) === undefined ? undefined : {kind: 'iface', dir, neg, name: ifaceName(k)!}), text)
        }
        case 'mark':
          return markMatch(left, op, right, text)
      }
      return unknown(text())
    }
    case 'ct': {
      if (left.key === 'state') {
        const states = flagList(right)
        if (!states) return unknown(text())
        return [[{kind: 'ctstate', module: 'conntrack', neg: op === '!=', states: states.map((x) => x.toUpperCase() as CtState)}]]
      }
      if (left.key === 'status') {
        const st = flagList(right)
        if (!st || st.some((x) => !CT_STATUS[x])) return unknown(text())
        return [[{kind: 'ctstatus', neg: op === '!=', statuses: st.map((x) => CT_STATUS[x]!)}]]
      }
      if (left.key === 'direction' && right.kind === 'string' && op !== '!=') return [[{kind: 'ctdir', dir: right.value === 'reply' ? 'REPLY' : 'ORIGINAL'}]]
      if (left.key === 'mark') return markMatch(left, op, right, text)
      if ((left.key === 'ip saddr' || left.key === 'ip daddr') && left.dir) {
        const which = `${left.dir === 'original' ? 'orig' : 'repl'}${left.key === 'ip saddr' ? 'src' : 'dst'}` as 'origsrc' | 'origdst' | 'replsrc' | 'repldst'
        const m = right.kind === 'addr' || right.kind === 'prefix' ? addrMatch('src', right, op === '!=') : undefined
        if (m && m.kind === 'addr') return [[{kind: 'ctaddr', which, neg: m.neg, prefix: m.prefix}]]
      }
      return unknown(text())
    }
    case 'fib': {
      if (left.result === 'type' && !left.flags.includes('iif') && !left.flags.includes('oif')) {
        const types = flagList(right)
        if (!types) return unknown(text())
        const side = {neg: op === '!=', types: types.map((t) => t.toUpperCase() as AddrType)}
        return [[left.flags.includes('saddr') ? {kind: 'addrtype', src: side} : {kind: 'addrtype', dst: side}]]
      }
      return unknown(text())
    }
  }
  return unknown(text())
}

// ---- effects --------------------------------------------------------------------------------------------

/** One translated effect: the matches it adds and its target (undefined: continue). */
interface Effect {
  readonly matches: readonly Match[]
  readonly target?: Target
  /** the map element this alternative stands for (`0-4 : 192.168.1.10`), shown in its evidence */
  readonly label?: string
}

function verdictTarget(v: NftVerdict, rename: (c: string) => string): Target | undefined {
  switch (v.kind) {
    case 'accept':
      return {kind: 'ACCEPT'}
    case 'drop':
      return {kind: 'DROP'}
    case 'queue':
      return {kind: 'QUEUE'}
    case 'return':
      return {kind: 'RETURN'}
    case 'jump':
    case 'goto':
      return {kind: v.kind, chain: rename(v.target)}
    default:
      return undefined
  }
}

/** Shares of the key space [offset, offset+mod) the elements of a numgen/jhash/symhash map cover, in order. */
function hashShares(key: NftExpr, elems: readonly NftSetElem[]): number[] | undefined {
  if (key.kind !== 'numgen' && key.kind !== 'jhash' && key.kind !== 'symhash') return undefined
  const lo = key.offset
  const hi = key.offset + key.mod - 1
  const taken = new Set<number>()
  const out: number[] = []
  for (const el of elems) {
    let a: number | undefined
    let b: number | undefined
    if (el.key.kind === 'number') a = b = el.key.value
    else if (el.key.kind === 'range' && el.key.from.kind === 'number' && el.key.to.kind === 'number') {
      a = el.key.from.value
      b = el.key.to.value
    } else return undefined
    let n = 0
    for (let v = Math.max(a, lo); v <= Math.min(b, hi); v++) {
      if (taken.has(v)) continue
      taken.add(v)
      n++
    }
    out.push(n / key.mod)
  }
  return out
}

/** The statistic probabilities that give each alternative its share: first match wins, or last match wins. */
function cascadeProbabilities(shares: readonly number[], lastWins: boolean): number[] {
  const p: number[] = []
  let used = 0
  if (!lastWins) {
    for (const w of shares) {
      p.push(used >= 1 - 1e-12 ? 0 : Math.min(1, w / (1 - used)))
      used += w
    }
    return p
  }
  for (let i = shares.length - 1; i >= 0; i--) {
    p[i] = used >= 1 - 1e-12 ? 0 : Math.min(1, shares[i]! / (1 - used))
    used += shares[i]!
  }
  return p
}

function statistic(p: number): Match {
  return {kind: 'statistic', neg: false, mode: 'random', probability: Math.round(p * 1e11) / 1e11}
}

/**
 * The alternatives of a map lookup: for each element, the matches that select it and the element's value.
 * Hash and numgen keys become a statistic cascade; packet fields become matches on the element's key.
 */
function mapAlternatives(key: NftExpr, data: NftExpr, table: NftTable, lastWins: boolean, text: () => string): {matches: readonly Match[]; value: NftExpr; label: string}[] | undefined {
  const elems = data.kind === 'set' ? data.elements : data.kind === 'setref' ? table.sets.get(data.name)?.elements : undefined
  if (!elems || elems.length > 4096) return undefined
  if (key.kind === 'concat') {
    const hashed = concatHashAlternatives(key, elems, table, lastWins, text)
    if (hashed !== null) return hashed
  }
  const shares = hashShares(key, elems)
  if (shares) {
    const p = cascadeProbabilities(shares, lastWins)
    return elems.filter((el) => el.value).map((el) => ({matches: [statistic(p[elems.indexOf(el)]!)], value: el.value!, label: elemLabel(el)}))
  }
  const out: {matches: readonly Match[]; value: NftExpr; label: string}[] = []
  for (const el of elems) {
    if (!el.value) continue
    const alts = keyMatches(key, el.key, table, text)
    if (!alts || alts.length !== 1) return undefined
    out.push({matches: alts[0]!, value: el.value, label: elemLabel(el)})
  }
  return out
}

const isHashKey = (e: NftExpr): boolean => e.kind === 'numgen' || e.kind === 'jhash' || e.kind === 'symhash'

/**
 * A concatenated key with one hash part (`ip daddr . numgen random mod 1024`, moby's nft load balancer): the
 * elements are grouped by their other parts, and each group's hash ranges become a statistic cascade behind the
 * matches on those parts. null: not such a key (the caller goes on); undefined: such a key that cannot be read.
 */
function concatHashAlternatives(key: Extract<NftExpr, {kind: 'concat'}>, elems: readonly NftSetElem[], table: NftTable, lastWins: boolean, text: () => string): {matches: readonly Match[]; value: NftExpr; label: string}[] | undefined | null {
  const at = key.parts.findIndex(isHashKey)
  if (at < 0 || key.parts.filter(isHashKey).length !== 1) return null
  const groups = new Map<string, NftSetElem[]>()
  for (const el of elems) {
    if (!el.value) continue
    if (el.key.kind !== 'concat' || el.key.parts.length !== key.parts.length) return undefined
    const g = el.key.parts.filter((_, i) => i !== at).map((x) => formatNftExpr(x)).join(' . ')
    const list = groups.get(g)
    if (list) list.push(el)
    else groups.set(g, [el])
  }
  const out: {matches: readonly Match[]; value: NftExpr; label: string}[] = []
  for (const group of groups.values()) {
    const parts = group.map((el) => (el.key as Extract<NftExpr, {kind: 'concat'}>).parts)
    const shares = hashShares(key.parts[at]!, group.map((el, j) => ({...el, key: parts[j]![at]!})))
    if (!shares) return undefined
    const p = cascadeProbabilities(shares, lastWins)
    for (let j = 0; j < group.length; j++) {
      const matches: Match[] = []
      for (let i = 0; i < key.parts.length; i++) {
        if (i === at) continue
        const a = keyMatches(key.parts[i]!, parts[j]![i]!, table, text)
        if (!a || a.length !== 1) return undefined
        matches.push(...a[0]!)
      }
      matches.push(statistic(p[j]!))
      out.push({matches, value: group[j]!.value!, label: elemLabel(group[j]!)})
    }
  }
  return out
}

function elemLabel(el: NftSetElem): string {
  return `${formatNftExpr(el.key)} : ${el.value ? formatNftExpr(el.value) : ''}`
}

/** `key == elementKey` as matches (concatenations part by part). */
function keyMatches(key: NftExpr, k: NftExpr, table: NftTable, text: () => string): Alts | undefined {
  if (key.kind === 'concat') {
    if (k.kind !== 'concat' || k.parts.length !== key.parts.length) return undefined
    const out: Match[] = []
    for (let i = 0; i < key.parts.length; i++) {
      const a = keyMatches(key.parts[i]!, k.parts[i]!, table, text)
      if (!a || a.length !== 1) return undefined
      out.push(...a[0]!)
    }
    return [out]
  }
  if (k.kind === 'wildcard') return [ALWAYS]
  const alts = translateMatch({kind: 'match', op: '==', left: key, right: k}, table, text)
  return alts.some((a) => a.some((m) => m.kind === 'unknown')) ? undefined : alts
}

function natRangeOf(e: NftExpr | undefined): {ip?: IpAddr; ipTo?: IpAddr; port?: number; portTo?: number} | undefined {
  if (!e) return {}
  if (e.kind === 'addr') return {ip: e.addr}
  if (e.kind === 'range' && e.from.kind === 'addr' && e.to.kind === 'addr') return {ip: e.from.addr, ipTo: e.to.addr}
  if (e.kind === 'number') return {port: e.value}
  if (e.kind === 'range' && e.from.kind === 'number' && e.to.kind === 'number') return {port: e.from.value, portTo: e.to.value}
  if (e.kind === 'concat' && e.parts.length === 2) {
    const a = natRangeOf(e.parts[0])
    const b = natRangeOf(e.parts[1])
    if (a && b) return {ip: a.ip, ipTo: a.ipTo, port: b.port, portTo: b.portTo}
  }
  if (e.kind === 'prefix') return {ip: {family: e.prefix.family, value: e.prefix.value}}
  return undefined
}

function natTarget(s: Extract<NftStmt, {kind: 'nat'}>, addr: NftExpr | undefined, port: NftExpr | undefined): Target | undefined {
  const a = natRangeOf(addr)
  const p = natRangeOf(port)
  if (!a || !p) return undefined
  const portFrom = a.port ?? p.port
  const portTo = a.portTo ?? p.portTo ?? portFrom
  const random = s.flags.includes('random')
  switch (s.type) {
    case 'dnat':
    case 'snat':
      return {kind: s.type === 'dnat' ? 'DNAT' : 'SNAT', to: [{from: a.ip, to: a.ipTo ?? a.ip, portFrom, portTo}], random, persistent: s.flags.includes('persistent'), randomFully: s.flags.includes('fully-random')}
    case 'masquerade':
      return {kind: 'MASQUERADE', ports: portFrom !== undefined ? [portFrom, portTo ?? portFrom] : undefined, random, randomFully: s.flags.includes('fully-random')}
    case 'redirect':
      return {kind: 'REDIRECT', ports: portFrom !== undefined ? [portFrom, portTo ?? portFrom] : undefined, random}
  }
}

/** NAT with maps in the address or the port: one alternative per element of the (first) map. */
function natEffects(s: Extract<NftStmt, {kind: 'nat'}>, table: NftTable, text: () => string): Effect[] | undefined {
  const mapAt = s.addr?.kind === 'map' ? 'addr' : s.port?.kind === 'map' ? 'port' : undefined
  if (!mapAt) {
    const t = natTarget(s, s.addr, s.port)
    return t ? [{matches: [], target: t}] : undefined
  }
  const m = s[mapAt] as Extract<NftExpr, {kind: 'map'}>
  const alts = mapAlternatives(m.key, m.data, table, false, text)
  if (!alts) return undefined
  const out: Effect[] = []
  for (const a of alts) {
    const other = mapAt === 'addr' ? s.port : s.addr
    const t = natTarget(s, mapAt === 'addr' ? a.value : other?.kind === 'map' ? undefined : other, mapAt === 'port' ? a.value : other?.kind === 'map' ? undefined : other)
    if (!t) return undefined
    out.push({matches: a.matches, target: t, label: a.label})
  }
  return out
}

function markTargetOf(isCt: boolean, value: NftExpr): Target | undefined {
  const n = num(value)
  if (n !== undefined) return {kind: isCt ? 'CONNMARK' : 'MARK', op: 'xset', value: n >>> 0, mask: 0xffffffff}
  if (value.kind === 'ct' && value.key === 'mark' && !isCt) return {kind: 'CONNMARK', op: 'restore', nfmask: 0xffffffff, ctmask: 0xffffffff}
  if (value.kind === 'meta' && value.key === 'mark' && isCt) return {kind: 'CONNMARK', op: 'save', nfmask: 0xffffffff, ctmask: 0xffffffff}
  if (value.kind === 'binop' && value.right.kind === 'number') {
    const self = value.left.kind === (isCt ? 'ct' : 'meta') && (value.left as {key: string}).key === 'mark'
    if (!self) return undefined
    const v = value.right.value >>> 0
    const kind = isCt ? 'CONNMARK' : 'MARK'
    if (value.op === '|') return {kind, op: 'or', value: v, mask: v}
    if (value.op === '&') return {kind, op: 'and', value: v, mask: ~v >>> 0}
    if (value.op === '^') return {kind, op: 'xor', value: v, mask: 0}
  }
  return undefined
}

function mangleEffects(s: Extract<NftStmt, {kind: 'mangle'}>, table: NftTable, text: () => string, prior: readonly (readonly Match[])[]): Effect[] | undefined {
  const isMark = s.key.kind === 'meta' && s.key.key === 'mark'
  const isCt = s.key.kind === 'ct' && s.key.key === 'mark'
  if (!isMark && !isCt) return undefined
  if (s.value.kind === 'map') {
    // the element shadow rules are evaluated in turn, and each sets the mark; the last one to match wins, unless
    // the rule itself matches that mark and every element's value stops the match (nftlb's `ct mark 0x0 ct mark
    // set numgen ... map`): then the first one to match wins
    let alts = mapAlternatives(s.value.key, s.value.data, table, true, text)
    if (!alts) return undefined
    const own = prior.length === 1 ? prior[0]!.filter((m): m is Extract<Match, {kind: 'mark'}> => m.kind === 'mark' && !m.neg && m.module === (isCt ? 'connmark' : 'mark')) : []
    const values = alts.map((a) => num(a.value))
    if (own.length > 0 && values.every((v) => v !== undefined && own.some((m) => ((v & m.mask) >>> 0) !== m.value >>> 0))) {
      alts = mapAlternatives(s.value.key, s.value.data, table, false, text)
      if (!alts) return undefined
    }
    const out: Effect[] = []
    for (const a of alts) {
      const t = markTargetOf(isCt, a.value)
      if (!t) return undefined
      out.push({matches: a.matches, target: t, label: a.label})
    }
    return out
  }
  const t = markTargetOf(isCt, s.value)
  return t ? [{matches: [], target: t}] : undefined
}

// ---- rules and chains -----------------------------------------------------------------------------------

const TERMINAL = new Set(['ACCEPT', 'DROP', 'REJECT', 'QUEUE', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'RETURN', 'jump', 'goto'])

/** The shadow rules of one nft rule (without chain, index and loc, added by the caller). */
export function translateRule(r: NftRule, table: NftTable, rename: (c: string) => string): {matches: Match[]; target?: Target; label?: string}[] {
  let printed: string | undefined
  const text = () => (printed ??= formatNftRule(r))
  let variants: Match[][] = [[]]
  const out: {matches: Match[]; target?: Target; label?: string}[] = []
  const cap = (v: Match[][]) => (v.length > 4096 ? [[...v[0]!, ...unknown(text())[0]!]] : v)
  const emit = (effects: readonly Effect[]) => {
    for (const v of variants) for (const e of effects) out.push({matches: [...v, ...e.matches], target: e.target, label: e.label})
  }
  for (const s of r.stmts) {
    switch (s.kind) {
      case 'match': {
        const alts = translateMatch(s, table, text)
        variants = cap(variants.flatMap((v) => alts.map((a) => [...v, ...a])))
        continue
      }
      case 'verdict': {
        const t = verdictTarget(s.verdict, rename)
        if (!t) continue
        emit([{matches: [], target: t}])
        return out
      }
      case 'vmap': {
        const elems = s.data.kind === 'set' ? s.data.elements : s.data.kind === 'setref' ? table.sets.get(s.data.name)?.elements : undefined
        const effects: Effect[] = []
        const alts = mapAlternatives(s.key, s.data, table, false, text)
        if (alts && elems) {
          for (const a of alts) {
            if (a.value.kind !== 'verdict') continue
            const t = verdictTarget(a.value.verdict, rename)
            effects.push({matches: a.matches, target: t, label: a.label})
          }
        } else effects.push({matches: unknown(text())[0]!})
        emit(effects)
        return out
      }
      case 'reject':
        emit([{matches: [], target: {kind: 'REJECT', with: rejectWith(s, {family: 4})}}])
        return out
      case 'queue':
        emit([{matches: [], target: {kind: 'QUEUE'}}])
        return out
      case 'nat': {
        const effects = natEffects(s, table, text)
        emit(effects ?? [{matches: unknown(text())[0]!, target: {kind: 'unknown', name: s.type, args: [text()]}}])
        return out
      }
      case 'mangle': {
        const effects = mangleEffects(s, table, text, variants)
        emit(effects ?? [{matches: [], target: {kind: 'unknown', name: 'mangle', args: [text()]}}])
        continue
      }
      case 'notrack':
        emit([{matches: [], target: {kind: 'NOTRACK'}}])
        continue
      case 'limit':
        if (s.inv) variants = variants.map((v) => [...v, ...unknown(text())[0]!])
        else variants = variants.map((v) => [...v, {kind: 'limit', rate: `${s.rate}/${s.per}`}])
        continue
      case 'objref':
        if (s.type === 'quota' || s.type === 'limit') variants = variants.map((v) => [...v, ...unknown(text())[0]!])
        continue
      case 'xt':
        if (s.xtType === 'match') variants = variants.map((v) => [...v, ...unknown(text())[0]!])
        else emit([{matches: [], target: {kind: 'unknown', name: `xt ${s.name}`, args: [text()]}}])
        continue
      case 'unknown':
        variants = variants.map((v) => [...v, ...unknown(text())[0]!])
        continue
      case 'dynset':
        // a per-element statement decides whether the rule goes on (nftlb's `add @s { ip saddr limit rate over
        // 10/second } drop`): a limit as the limit statement is; anything else is not decided here
        for (const x of s.stmts) {
          if (x.kind === 'counter') continue
          // `limit rate over`: the interpreter (dataplane/nft.ts) assumes the source under the limit, so the rule
          // ends here for it: no shadow rule stands for what would follow
          if (x.kind === 'limit' && x.inv) variants = []
          else if (x.kind === 'limit') variants = variants.map((v) => [...v, {kind: 'limit', rate: `${x.rate}/${x.per}`}])
          else variants = variants.map((v) => [...v, ...unknown(text())[0]!])
        }
        continue
      case 'counter':
      case 'log':
        continue
    }
  }
  // no terminal statement: the rule's last effect (or a counting rule) ends it
  if (out.length === 0 || !out.some((x) => x.target && TERMINAL.has(x.target.kind))) {
    if (out.length === 0) for (const v of variants) out.push({matches: v})
  }
  return out
}

function jumpTargets(r: NftRule, table: NftTable): string[] {
  const out: string[] = []
  const verdicts = (v: NftVerdict) => {
    if (v.kind === 'jump' || v.kind === 'goto') out.push(v.target)
  }
  for (const s of r.stmts) {
    if (s.kind === 'verdict') verdicts(s.verdict)
    if (s.kind === 'vmap') {
      const elems = s.data.kind === 'set' ? s.data.elements : s.data.kind === 'setref' ? table.sets.get(s.data.name)?.elements : []
      for (const el of elems ?? []) if (el.value?.kind === 'verdict') verdicts(el.value.verdict)
    }
  }
  return out
}

/** A shadow rule's Loc: the nft rule's place; its text (nftRuleText) printed on first use. */
class ShadowLoc implements Loc {
  readonly file: string
  readonly line: number
  #text: string | undefined
  constructor(
    private readonly rule: NftRule,
    private readonly label?: string,
  ) {
    this.file = rule.loc.file
    this.line = rule.loc.line
  }
  get text(): string {
    return (this.#text ??= nftRuleText(this.rule) + (this.label === undefined ? '' : ` (element ${this.label})`))
  }
  toJSON(): Loc {
    return {file: this.file, line: this.line, text: this.text}
  }
}

function baseLoc(c: NftChain): Loc {
  return c.loc
}

/**
 * The shadow rulesets of an nft ruleset: one per `ip`/`inet` table (and another when two base chains of a table
 * fall in the same table and hook). Tables made by iptables-nft are left out when iptables-save is beside.
 */
export function nftShadows(nft: NftRuleset, o: {iptablesBeside: boolean}): NftShadow[] {
  const out: NftShadow[] = []
  for (const t of nft.tables) {
    if (t.family !== 'ip' && t.family !== 'inet') continue
    if (t.xtables && o.iptablesBeside) continue
    if (t.flags.includes('dormant')) continue
    const slots: ShadowBase[][] = []
    for (const c of t.chains.values()) {
      const b = c.base
      const hook = b ? HOOKS[b.hook] : undefined
      if (!b || !hook) continue
      const sb: ShadowBase = {cls: classOf(c), hook, chain: c, priority: b.priority}
      let slot = slots.find((s) => !s.some((x) => x.cls === sb.cls && x.hook === sb.hook))
      if (!slot) slots.push((slot = []))
      slot.push(sb)
    }
    for (const bases of slots) out.push(buildShadow(nft, t, bases))
  }
  return out
}

function buildShadow(nft: NftRuleset, t: NftTable, bases: readonly ShadowBase[]): NftShadow {
  const rename = (c: string) => (BUILTIN_NAMES.has(c) ? `${c}~nft` : c)
  const origin = new Map<IptRule, NftRule>()
  const chainsOut = new Map<string, NftChain>()
  const byNft = new Map<string, Map<NftRule, IptRule[]>>()
  const tables = new Map<string, IptTable>()
  const locs = new Map<NftRule, Loc>()
  const locs2 = new Map<string, Loc>()
  const locOf = (r: NftRule, label?: string): Loc => {
    if (label !== undefined) {
      // one alternative of a map: its own evidence (and identity: the DNAT cascade tells backends apart by it)
      const k = `${r.family} ${r.table} ${r.chain} ${r.handle} ${label}`
      let l = locs2.get(k)
      if (!l) locs2.set(k, (l = new ShadowLoc(r, label)))
      return l
    }
    let l = locs.get(r)
    if (!l) locs.set(r, (l = new ShadowLoc(r)))
    return l
  }
  const classes = [...new Set(bases.map((b) => b.cls))]
  for (const cls of classes) {
    const mine = bases.filter((b) => b.cls === cls)
    const chains = new Map<string, IptChain>()
    const perRule = new Map<NftRule, IptRule[]>()
    byNft.set(cls, perRule)
    const addChain = (c: NftChain, name: string, base?: ShadowBase) => {
      const rules: IptRule[] = []
      for (const r of c.rules) {
        const list: IptRule[] = []
        for (const x of translateRule(r, t, rename)) {
          const ipt: IptRule = {table: cls, chain: name, index: rules.length + 1, loc: locOf(r, x.label), matches: x.matches, target: x.target}
          rules.push(ipt)
          list.push(ipt)
          origin.set(ipt, r)
        }
        perRule.set(r, list)
      }
      chains.set(name, {name, table: cls, builtin: !!base, policy: base ? (c.base?.policy === 'drop' ? 'DROP' : 'ACCEPT') : undefined, loc: baseLoc(c), rules})
      chainsOut.set(`${cls}/${name}`, c)
    }
    const queue: string[] = []
    for (const b of mine) {
      addChain(b.chain, b.hook, b)
      for (const r of b.chain.rules) queue.push(...jumpTargets(r, t))
    }
    const seen = new Set<string>()
    for (let qi = 0; qi < queue.length; qi++) {
      const name = queue[qi]!
      if (seen.has(name)) continue
      seen.add(name)
      const c = t.chains.get(name)
      if (!c || c.base) continue
      addChain(c, rename(name))
      for (const r of c.rules) queue.push(...jumpTargets(r, t))
    }
    tables.set(cls, {name: cls, loc: {file: nft.file, line: 1, text: `table ${t.family} ${t.name}`}, chains})
  }
  const ruleset: IptablesRuleset = {family: 4, file: nft.file, backend: 'nf_tables', tables, notModelled: [], ruleCount: origin.size}
  const shadow: NftShadow = {
    ruleset,
    nft,
    table: t,
    bases,
    origin,
    chains: chainsOut,
    rulesOf: (cls, r) => byNft.get(cls)?.get(r) ?? [],
    shadowName: rename,
  }
  registry.set(ruleset, shadow)
  return shadow
}

/** A prefix covering one address. */
export function hostPrefix4(ip: IpAddr): Prefix {
  return makePrefix(ip, ip.family === 4 ? 32 : 128)
}
