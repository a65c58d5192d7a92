// Parser for `nft -j list ruleset` (libnftables-json(5)) into the typed model of src/model/nft.ts.
//
// Malformed input (invalid JSON, not an nftables document, a rule without chain...) throws ParseError with the
// file and line. Valid objects and expressions the model does not type are kept verbatim and reported as
// NotModelled, never dropped. Rules made by iptables-nft are marked (rule.xtables) so that a consumer with
// the matching iptables-save evaluates them once, from the iptables view.
//
// Built for large dumps (kube-proxy nftables mode: 68k rules, 30 MB): nft prints `{"nftables": [...]}` on one
// line, and the parser JSON.parses it one element at a time, so the whole JSON tree never exists at once. Every
// rule's statements are parsed then (to report errors and what is not modelled) but kept only as the rule's
// place in the text: `rule.stmts` builds them again on first use and keeps them. Equal expressions are shared.
import {formatIp, formatPrefix, makePrefix, parseIp, type IpAddr, type Prefix} from '../../model/ip.js'
import {
  formatNftExpr,
  formatNftRule,
  formatNftStmt,
  formatNftPriority,
  NFT_FAMILIES,
  type NftBaseChain,
  type NftChain,
  type NftExpr,
  type NftFamily,
  type NftNatFlag,
  type NftObject,
  type NftRelOp,
  type NftRule,
  type NftRuleset,
  type NftSet,
  type NftSetElem,
  type NftStmt,
  type NftTable,
} from '../../model/nft.js'
import {ParseError, type Loc, type NotModelled} from '../../model/source.js'
import {lineAt, locateJsonError} from './json-items.js'

export interface NftParseOptions {
  /**
   * An iptables-save (nf_tables backend) of the same host is available: rules with bare xt expressions are then
   * evaluated from it and not reported as unanalysable.
   */
  readonly iptablesSaveBeside?: boolean
  /**
   * Tables that iptables-nft-save beside could not print (`# Table `nat' is incompatible, use 'nft' tool.`), by
   * family (ip: iptables-save, ip6: ip6tables-save): their rules are evaluated from this JSON, not left to it.
   */
  readonly notInIptablesSave?: {readonly ip?: readonly string[]; readonly ip6?: readonly string[]}
  /**
   * Tables iptables-nft-save printed without some base chains (`# Table `filter' contains incompatible base-chains,
   * use 'nft' tool to list them.`, iptables 1.8.8+), by family: those base chains are evaluated from this JSON.
   */
  readonly taintedInIptablesSave?: {readonly ip?: readonly string[]; readonly ip6?: readonly string[]}
  /** sets and maps whose JSON is longer than this many characters are parsed item by item (default 4 MiB) */
  readonly streamSetsOver?: number
}

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
type JObj = {[k: string]: Json}

const FAMILIES = new Set<string>(NFT_FAMILIES)
const REL_OPS = new Set<string>(['==', '!=', '<', '>', '<=', '>=', 'in'])
const SIMPLE_VERDICTS = ['accept', 'drop', 'continue', 'return', 'queue', 'break'] as const
const CHAIN_TYPES = new Set<string>(['filter', 'nat', 'route'])
const HOOKS = new Set<string>(['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'])
const OBJECT_TYPES = new Set<string>(['counter', 'quota', 'limit', 'ct helper', 'ct timeout', 'ct expectation', 'secmark', 'synproxy', 'flowtable', 'tunnel'])
/** objects that change what packets do, and so are not fully analysable from the model */
const OBJECTS_NOT_MODELLED = new Set<string>(['flowtable', 'synproxy', 'ct timeout', 'ct expectation', 'tunnel'])

// iptables-nft creates these tables and names base chains like the iptables built-ins (iptables
// iptables/nft.c table templates): filter/nat/mangle/raw/security for ip/ip6, filter for arp, filter/nat/broute
// for bridge (ebtables-nft).
const XT_TABLES: Readonly<Record<string, ReadonlySet<string>>> = {
  ip: new Set(['filter', 'nat', 'mangle', 'raw', 'security']),
  ip6: new Set(['filter', 'nat', 'mangle', 'raw', 'security']),
  arp: new Set(['filter']),
  bridge: new Set(['filter', 'nat', 'broute']),
}
const XT_CHAIN_OF_HOOK: Readonly<Record<string, string>> = {
  prerouting: 'PREROUTING',
  input: 'INPUT',
  forward: 'FORWARD',
  output: 'OUTPUT',
  postrouting: 'POSTROUTING',
}

// ---- building context -------------------------------------------------------------------------------------

/**
 * State of one build of expressions: what was not modelled, the table (for jump targets) and, when `share`,
 * caches that make equal expressions one object (a 68k-rule dump repeats `ip saddr`, `tcp`, ports and addresses
 * tens of thousands of times). Module-level so the hot path passes no extra argument; parsing is synchronous.
 */
class Ctx {
  unknown: string[] = []
  table: MTable | undefined
  readonly payload = new Map<string, NftExpr>()
  readonly meta = new Map<string, NftExpr>()
  readonly ct = new Map<string, NftExpr>()
  readonly str = new Map<string, NftExpr>()
  readonly addr = new Map<string, NftExpr>()
  readonly ints: NftExpr[] = []
  constructor(readonly share: boolean) {}
}

let ctx = new Ctx(false)

const SIMPLE_VERDICT: Readonly<Record<string, NftStmt & NftExpr>> = Object.fromEntries(
  SIMPLE_VERDICTS.map((k) => [k, Object.freeze({kind: 'verdict', verdict: Object.freeze({kind: k})})]),
) as Record<string, NftStmt & NftExpr>
/**
 * A copy of model values that JSON.stringify can print: addresses and prefixes (bigint inside) become their text,
 * other bigints their decimal text. Used by the toJSON of rules and sets.
 */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return v.map(jsonSafe)
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (typeof o.value === 'bigint' && (o.family === 4 || o.family === 6)) {
      return typeof o.len === 'number' ? formatPrefix(o as unknown as Prefix) : formatIp(o as unknown as IpAddr)
    }
    const out: Record<string, unknown> = {}
    for (const k in o) out[k] = jsonSafe(o[k])
    return out
  }
  return v
}

const NOTRACK: NftStmt = Object.freeze({kind: 'notrack'})
const STATELESS_COUNTER: NftStmt = Object.freeze({kind: 'counter'})
const EMPTY: readonly never[] = Object.freeze([])

function isObj(j: Json | undefined): j is JObj {
  return typeof j === 'object' && j !== null && !Array.isArray(j)
}

/** The only key of a one-key object (`{"match": {...}}`), or undefined. */
function soleKey(o: JObj): string | undefined {
  let key: string | undefined
  for (const k in o) {
    if (key !== undefined) return undefined
    key = k
  }
  return key
}

function snippet(j: unknown): string {
  const s = JSON.stringify(j) ?? String(j)
  return s.length > 120 ? s.slice(0, 117) + '...' : s
}

function cached(map: Map<string, NftExpr>, key: string, make: () => NftExpr): NftExpr {
  if (!ctx.share) return make()
  let e = map.get(key)
  if (!e) {
    e = make()
    map.set(key, e)
  }
  return e
}

function numberExpr(n: number): NftExpr {
  if (ctx.share && n >= 0 && n < 65536 && (n | 0) === n) {
    let e = ctx.ints[n]
    if (!e) {
      e = {kind: 'number', value: n}
      ctx.ints[n] = e
    }
    return e
  }
  return {kind: 'number', value: n}
}

/** Fast path for a dotted quad (the common case); undefined when `s` is not one. */
function ipv4(s: string): number | undefined {
  let v = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 255) return undefined
      v = v * 256 + part
      part = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57) {
      if (digits === 3) return undefined
      part = part * 10 + (c - 48)
      digits++
    } else return undefined
  }
  if (dots !== 3 || digits === 0 || part > 255) return undefined
  return v * 256 + part
}

/** A jump/goto verdict; when sharing, one object per table and target (kube-proxy jumps to one chain 20k times). */
function jumpVerdict(kind: 'jump' | 'goto', target: string): NftStmt & NftExpr {
  const t = ctx.table
  if (!ctx.share || !t) return {kind: 'verdict', verdict: {kind, target}}
  const cache = kind === 'jump' ? t.jumps : t.gotos
  let v = cache.get(target)
  if (!v) {
    const id = t.store.chainIndex(t).get(target)
    const name = id === undefined ? target : t.store.chainName(id)
    v = {kind: 'verdict', verdict: {kind, target: name}}
    cache.set(name, v)
  }
  return v
}

// ---- expressions -----------------------------------------------------------------------------------------

/** Typing of constants: interface names are never addresses; anything else that parses as an IP is one. */
type VHint = 'ifname' | undefined

const IFNAME_META = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname', 'ibriport', 'obriport', 'ibridgename', 'obridgename', 'sdifname'])

function vhintOf(e: NftExpr): VHint {
  if (e.kind === 'meta' && IFNAME_META.has(e.key)) return 'ifname'
  if (e.kind === 'fib' && e.result === 'oifname') return 'ifname'
  return undefined
}

function keyHints(k: NftExpr): VHint | readonly VHint[] {
  return k.kind === 'concat' ? k.parts.map(vhintOf) : vhintOf(k)
}

function unknownExpr(name: string, j: Json): NftExpr {
  ctx.unknown.push(`${JSON.stringify(name)} expression ${snippet(j)}`)
  return {kind: 'unknown', name, json: j}
}

function stringValue(s: string, hint: VHint): NftExpr {
  const c = s.charCodeAt(0)
  if (c === 64 /* @ */) return {kind: 'setref', name: s.slice(1)}
  if (s === '*') return {kind: 'wildcard'}
  if (hint !== 'ifname') {
    // a dotted quad or an IPv6 address; nft prints integers wider than 64 bits as 0x... strings
    if (c >= 48 && c <= 57) {
      const v4 = ipv4(s)
      if (v4 !== undefined) return cached(ctx.addr, s, () => ({kind: 'addr', addr: {family: 4, value: BigInt(v4)}}))
    }
    if ((c >= 48 && c <= 57) || s.includes(':')) {
      const a = s.length <= 45 ? parseIp(s) : undefined
      if (a) return cached(ctx.addr, s, () => ({kind: 'addr', addr: a}))
      if (c === 48 && /^0x[0-9a-fA-F]+$/.test(s)) return {kind: 'bignum', value: BigInt(s)}
    }
  }
  return cached(ctx.str, s, () => ({kind: 'string', value: s}))
}

/** A value or expression (right-hand side, operand, set element); `hint` types constants. */
function expr(j: Json, hint?: VHint | readonly VHint[]): NftExpr {
  switch (typeof j) {
    case 'number':
      return numberExpr(j)
    case 'string':
      return stringValue(j, typeof hint === 'string' ? hint : undefined)
    case 'boolean':
      return {kind: 'bool', value: j}
  }
  if (j === null) return unknownExpr('null', j)
  if (Array.isArray(j)) {
    const items: NftExpr[] = new Array(j.length)
    for (let i = 0; i < j.length; i++) items[i] = expr(j[i]!, hint)
    return {kind: 'list', items}
  }
  const key = soleKey(j)
  if (key === undefined) return unknownExpr('object', j)
  const v = j[key]!
  switch (key) {
    case 'payload':
      if (isObj(v)) {
        const {protocol, field} = v
        if (typeof protocol === 'string' && typeof field === 'string') {
          return cached(ctx.payload, protocol + ' ' + field, () => ({kind: 'payload', protocol, field}))
        }
        if (typeof v.base === 'string' && typeof v.offset === 'number' && typeof v.len === 'number') return {kind: 'rawpayload', base: v.base, offset: v.offset, len: v.len}
      }
      break
    case 'meta':
      if (isObj(v) && typeof v.key === 'string') {
        const k = v.key
        return cached(ctx.meta, k, () => ({kind: 'meta', key: k}))
      }
      break
    case 'ct':
      if (isObj(v) && typeof v.key === 'string') {
        const {key: k, dir, family} = v
        return cached(ctx.ct, `${k} ${String(dir)} ${String(family)}`, () => {
          const e: {kind: 'ct'; key: string; dir?: 'original' | 'reply'; family?: string} = {kind: 'ct', key: k}
          if (dir === 'original' || dir === 'reply') e.dir = dir
          if (typeof family === 'string') e.family = family
          return e
        })
      }
      break
    case 'fib':
      if (isObj(v) && typeof v.result === 'string') {
        const f = v.flags
        return {kind: 'fib', result: v.result, flags: typeof f === 'string' ? [f] : Array.isArray(f) ? f.map(String) : []}
      }
      break
    case 'numgen':
      if (isObj(v) && (v.mode === 'inc' || v.mode === 'random') && typeof v.mod === 'number') {
        return {kind: 'numgen', mode: v.mode, mod: v.mod, offset: typeof v.offset === 'number' ? v.offset : 0}
      }
      break
    case 'jhash':
      if (isObj(v) && typeof v.mod === 'number' && v.expr !== undefined) {
        const e: {kind: 'jhash'; mod: number; offset: number; seed?: number; expr: NftExpr} = {
          kind: 'jhash',
          mod: v.mod,
          offset: typeof v.offset === 'number' ? v.offset : 0,
          expr: expr(v.expr),
        }
        if (typeof v.seed === 'number') e.seed = v.seed
        return e
      }
      break
    case 'symhash':
      if (isObj(v) && typeof v.mod === 'number') return {kind: 'symhash', mod: v.mod, offset: typeof v.offset === 'number' ? v.offset : 0}
      break
    case 'concat':
      if (Array.isArray(v)) {
        const parts: NftExpr[] = new Array(v.length)
        const hints = Array.isArray(hint) ? (hint as readonly VHint[]) : undefined
        for (let i = 0; i < v.length; i++) parts[i] = expr(v[i]!, hints?.[i])
        return {kind: 'concat', parts}
      }
      break
    case 'set':
      return {kind: 'set', elements: setElems(v, hint)}
    case 'map':
      if (isObj(v) && v.key !== undefined && v.data !== undefined) {
        const k = expr(v.key)
        return {kind: 'map', key: k, data: mapData(v.data, k)}
      }
      break
    case 'prefix':
      if (isObj(v) && typeof v.len === 'number') {
        if (typeof v.addr === 'string') {
          const a = parseIp(v.addr)
          if (a && v.len >= 0 && v.len <= (a.family === 4 ? 32 : 128)) return {kind: 'prefix', prefix: makePrefix(a, v.len)}
        } else if (typeof v.addr === 'number') return {kind: 'intprefix', value: v.addr, len: v.len}
      }
      break
    case 'range':
      if (Array.isArray(v) && v.length === 2) return {kind: 'range', from: expr(v[0]!, hint), to: expr(v[1]!, hint)}
      break
    case '&':
    case '|':
    case '^':
    case '<<':
    case '>>':
      if (Array.isArray(v) && v.length === 2) {
        const left = expr(v[0]!)
        return {kind: 'binop', op: key, left, right: expr(v[1]!, vhintOf(left))}
      }
      break
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'queue':
    case 'break':
      return SIMPLE_VERDICT[key]!
    case 'jump':
    case 'goto':
      // the statement and the expression `{kind: 'verdict', verdict}` have the same shape
      if (isObj(v) && typeof v.target === 'string') return jumpVerdict(key, v.target)
      break
  }
  return unknownExpr(key, j)
}

/** Elements of an anonymous or named set: plain values, `{"elem": {...}}` objects, or `[key, value]` mappings. */
function setElems(v: Json, hint?: VHint | readonly VHint[], valueHint?: VHint | readonly VHint[]): NftSetElem[] {
  if (!Array.isArray(v)) return [setElem(v, hint, valueHint)]
  const out: NftSetElem[] = new Array(v.length)
  for (let i = 0; i < v.length; i++) out[i] = setElem(v[i]!, hint, valueHint)
  return out
}

/**
 * What an element of a set declared with `counter` (or `last`) carries beside its value: statistics, which change
 * nothing for the packet (`elements = { 10.255.0.10 . 0-341 counter packets 0 bytes 0 : 10.255.0.11 }`)
 */
const ELEM_STATS: ReadonlySet<string> = new Set(['counter', 'last'])

function setElem(el: Json, hint?: VHint | readonly VHint[], valueHint?: VHint | readonly VHint[]): NftSetElem {
  if (Array.isArray(el) && el.length === 2) {
    const k = setElem(el[0]!, hint)
    const value = expr(el[1]!, valueHint)
    if (k.timeout === undefined && k.expires === undefined && k.comment === undefined) return {key: k.key, value}
    const out: {key: NftExpr; value: NftExpr; timeout?: number; expires?: number; comment?: string} = {key: k.key, value}
    if (k.timeout !== undefined) out.timeout = k.timeout
    if (k.expires !== undefined) out.expires = k.expires
    if (k.comment !== undefined) out.comment = k.comment
    return out
  }
  if (isObj(el) && isObj(el.elem)) {
    const e = el.elem
    for (const k in e) if (k !== 'val' && k !== 'timeout' && k !== 'expires' && k !== 'comment' && !ELEM_STATS.has(k)) return {key: unknownExpr('elem', el)}
    const out: {key: NftExpr; timeout?: number; expires?: number; comment?: string} = {key: expr(e.val ?? null, hint)}
    if (typeof e.timeout === 'number') out.timeout = e.timeout
    if (typeof e.expires === 'number') out.expires = e.expires
    if (typeof e.comment === 'string') out.comment = e.comment
    return out
  }
  return {key: expr(el, hint)}
}

/** The data of a map lookup: an anonymous set of mappings or a named map reference. */
function mapData(d: Json, key: NftExpr): NftExpr {
  if (isObj(d) && d.set !== undefined) return {kind: 'set', elements: setElems(d.set, keyHints(key))}
  return expr(d)
}

// ---- statements -----------------------------------------------------------------------------------------

/** NAT flags, or undefined when one is not a known flag (the statement is then kept verbatim). */
function natFlags(f: Json | undefined): readonly NftNatFlag[] | undefined {
  if (f === undefined) return EMPTY
  const arr = Array.isArray(f) ? f : [f]
  const out: NftNatFlag[] = []
  for (const x of arr) {
    if (x === 'random' || x === 'fully-random' || x === 'persistent' || x === 'netmap') out.push(x)
    else return undefined
  }
  return out
}

function strList(f: Json | undefined): readonly string[] {
  if (f === undefined || f === null) return EMPTY
  return Array.isArray(f) ? f.map(String) : [String(f)]
}

function unknownStmt(name: string, j: Json): NftStmt {
  ctx.unknown.push(`${JSON.stringify(name)} statement ${snippet(j)}`)
  return {kind: 'unknown', name, json: j}
}

function stmt(j: Json): NftStmt {
  if (typeof j === 'string') {
    // nft prints a statement it has no JSON form for as its text
    ctx.unknown.push(`statement ${JSON.stringify(j)}`)
    return {kind: 'unknown', name: j, json: j}
  }
  if (!isObj(j)) return unknownStmt('?', j)
  const key = soleKey(j)
  if (key === undefined) return unknownStmt('?', j)
  const v = j[key]!
  switch (key) {
    case 'match':
      if (isObj(v) && typeof v.op === 'string' && REL_OPS.has(v.op) && v.left !== undefined && v.right !== undefined) {
        const left = expr(v.left)
        return {kind: 'match', op: v.op as NftRelOp, left, right: expr(v.right, keyHints(left))}
      }
      break
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'break':
      return SIMPLE_VERDICT[key]!
    case 'jump':
    case 'goto':
      if (isObj(v) && typeof v.target === 'string') return jumpVerdict(key, v.target)
      break
    case 'counter':
      if (v === null) return STATELESS_COUNTER
      if (typeof v === 'string') return {kind: 'objref', type: 'counter', name: v}
      if (isObj(v) && typeof v.packets === 'number' && typeof v.bytes === 'number') return {kind: 'counter', packets: v.packets, bytes: v.bytes}
      break
    case 'log': {
      if (v === null) return {kind: 'log', flags: EMPTY}
      if (!isObj(v)) break
      const s: {kind: 'log'; prefix?: string; level?: string; group?: number; snaplen?: number; queueThreshold?: number; flags: readonly string[]} = {kind: 'log', flags: strList(v.flags)}
      if (typeof v.prefix === 'string') s.prefix = v.prefix
      if (typeof v.level === 'string') s.level = v.level
      if (typeof v.group === 'number') s.group = v.group
      if (typeof v.snaplen === 'number') s.snaplen = v.snaplen
      if (typeof v['queue-threshold'] === 'number') s.queueThreshold = v['queue-threshold']
      return s
    }
    case 'limit':
      if (typeof v === 'string') {
        ctx.unknown.push(`limit ${JSON.stringify(v)} (named limit object)`)
        return {kind: 'objref', type: 'limit', name: v}
      }
      if (isObj(v) && typeof v.rate === 'number') {
        const s: {kind: 'limit'; rate: number; per: string; burst: number; unit: string; burstUnit?: string; inv: boolean} = {
          kind: 'limit',
          rate: v.rate,
          per: typeof v.per === 'string' ? v.per : 'second',
          burst: typeof v.burst === 'number' ? v.burst : 0,
          unit: typeof v.rate_unit === 'string' ? v.rate_unit : 'packets',
          inv: v.inv === true,
        }
        if (typeof v.burst_unit === 'string') s.burstUnit = v.burst_unit
        return s
      }
      break
    case 'reject': {
      if (v === null) return {kind: 'reject'}
      if (!isObj(v)) break
      const t = v.type
      if (t !== undefined && t !== 'tcp reset' && t !== 'icmpx' && t !== 'icmp' && t !== 'icmpv6') break
      const s: {kind: 'reject'; type?: 'tcp reset' | 'icmpx' | 'icmp' | 'icmpv6'; code?: string | number} = {kind: 'reject'}
      if (t !== undefined) s.type = t
      if (typeof v.expr === 'string' || typeof v.expr === 'number') s.code = v.expr
      return s
    }
    case 'mangle':
      if (isObj(v) && v.key !== undefined && v.value !== undefined) {
        const k = expr(v.key)
        const m: NftStmt = {kind: 'mangle', key: k, value: expr(v.value, keyHints(k))}
        // `ct zone set`, `ip daddr set` (stateless NAT), `ip dscp set`, `ct label set`...: the trace replays the
        // packet unchanged and the checks read no such rewrite (dataplane/nft.ts: only meta mark and ct mark)
        if (!isMarkKey(v.key) && k.kind !== 'unknown' && (m.value as NftExpr).kind !== 'unknown') ctx.unknown.push(`${formatNftStmt(m, ctx.table?.family)}: rewriting ${formatNftExpr(k)} is not modelled (the packet is taken as unchanged)`)
        return m
      }
      break
    case 'notrack':
      return NOTRACK
    case 'snat':
    case 'dnat':
    case 'masquerade':
    case 'redirect': {
      if (v !== null && !isObj(v)) break
      const flags = v === null ? EMPTY : natFlags(v.flags)
      if (!flags) break
      const s: {kind: 'nat'; type: typeof key; family?: 'ip' | 'ip6'; addr?: NftExpr; port?: NftExpr; flags: readonly NftNatFlag[]; typeFlags: readonly string[]} = {
        kind: 'nat',
        type: key,
        flags,
        typeFlags: v === null ? EMPTY : strList(v.type_flags),
      }
      if (v !== null) {
        if (v.family === 'ip' || v.family === 'ip6') s.family = v.family
        if (v.addr !== undefined) s.addr = expr(v.addr)
        if (v.port !== undefined) s.port = expr(v.port)
      }
      return s
    }
    case 'queue': {
      if (v !== null && !isObj(v)) break
      const s: {kind: 'queue'; num?: NftExpr; flags: readonly string[]} = {kind: 'queue', flags: v === null ? EMPTY : strList(v.flags)}
      if (v !== null && v.num !== undefined) s.num = expr(v.num)
      return s
    }
    case 'vmap':
      if (isObj(v) && v.key !== undefined && v.data !== undefined) {
        const k = expr(v.key)
        return {kind: 'vmap', key: k, data: mapData(v.data, k)}
      }
      break
    case 'set':
      if (isObj(v) && typeof v.op === 'string' && typeof v.set === 'string' && v.elem !== undefined) {
        const stmts: NftStmt[] = []
        if (Array.isArray(v.stmt)) for (const x of v.stmt) stmts.push(stmt(x))
        // `add @s { ip saddr limit rate over 10/second } drop` (a per-element meter, Zevenet nftlb's rate limits):
        // the kernel evaluates the element's statements and a limit over its rate ends the rule; the trace and
        // the checks treat the dynset as having no effect on the packet, so the rule is listed
        if (stmts.some((x) => x.kind !== 'counter')) {
          ctx.unknown.push(`${v.op} @${v.set.replace(/^@/, '')} with per-element statements (${stmts.map((x) => x.kind).join(', ')}): evaluated as if the rule did not depend on them`)
        }
        return {kind: 'dynset', op: v.op, elem: expr(v.elem), set: v.set.replace(/^@/, ''), stmts}
      }
      break
    case 'xt':
      if (isObj(v) && (v.type === 'match' || v.type === 'target' || v.type === 'watcher') && typeof v.name === 'string') {
        return {kind: 'xt', xtType: v.type, name: v.name}
      }
      break
    case 'quota':
    case 'ct helper':
    case 'ct timeout':
    case 'ct expectation':
    case 'synproxy':
    case 'secmark':
      if (typeof v === 'string') {
        if (key !== 'ct helper' && key !== 'secmark') ctx.unknown.push(`${key} ${JSON.stringify(v)} (named ${key} object)`)
        return {kind: 'objref', type: key, name: v}
      }
      break
  }
  return unknownStmt(key, j)
}

/**
 * What in a rule's expressions iptables-nft never makes and iptables-nft-save cannot print (1.8.9 prints the rule
 * without it, or calls the table incompatible): a set or map (anonymous or named), a concatenation, a verdict map,
 * numgen/hash, fib, a dynset, a rewrite of anything but a mark. undefined when there is none.
 */
function foreignToIptables(exprs: Json): string | undefined {
  let found: string | undefined
  const walk = (j: Json, inMangleKey = false): void => {
    if (found || j === null || typeof j !== 'object') {
      if (typeof j === 'string' && j.startsWith('@') && !found) found = `set ${j}`
      return
    }
    if (Array.isArray(j)) {
      for (const x of j) walk(x)
      return
    }
    for (const [k, v] of Object.entries(j)) {
      if (found) return
      switch (k) {
        case 'set':
          found = Array.isArray(v) ? 'an anonymous set' : typeof v === 'string' ? `set ${v}` : 'a set'
          return
        case 'concat':
        case 'vmap':
        case 'map':
        case 'numgen':
        case 'jhash':
        case 'symhash':
        case 'fib':
          found = k === 'concat' ? 'a concatenation' : k
          return
        case 'mangle':
          if (isObj(v) && !isMarkKey(v.key)) {
            found = 'a rewrite'
            return
          }
          break
      }
      walk(v as Json, inMangleKey)
    }
  }
  walk(exprs)
  return found
}

/** The chains a rule jumps or goes to (verdicts, and verdict maps: anonymous or the table's named ones). */
function jumpTargetsOf(r: NftRule, table: NftTable): string[] {
  const out: string[] = []
  const verdict = (v: {kind: string; target?: string}): void => {
    if ((v.kind === 'jump' || v.kind === 'goto') && v.target !== undefined) out.push(v.target)
  }
  for (const st of r.stmts) {
    if (st.kind === 'verdict') verdict(st.verdict)
    if (st.kind === 'vmap') {
      const elems = st.data.kind === 'set' ? st.data.elements : st.data.kind === 'setref' ? table.sets.get(st.data.name)?.elements : undefined
      for (const el of elems ?? []) if (el.value?.kind === 'verdict') verdict(el.value.verdict)
    }
  }
  return out
}

/** `meta mark` or `ct mark` (the marks the trace and the checks rewrite), as nft -j prints the key of a mangle */
function isMarkKey(k: Json | undefined): boolean {
  if (!isObj(k)) return false
  const m = k.meta ?? k.ct
  return isObj(m) && m.key === 'mark' && (k.meta !== undefined || m.dir === undefined)
}

/** Builds a rule's statements in the current ctx; xt statements are noted in ctx.unknown too. */
function buildStmts(exprs: Json[]): {stmts: NftStmt[]; bare: boolean} {
  const stmts: NftStmt[] = new Array(exprs.length)
  let bare = false
  for (let k = 0; k < exprs.length; k++) {
    const s = stmt(exprs[k]!)
    stmts[k] = s
    if (s.kind === 'xt') {
      bare = true
      ctx.unknown.push(`xt ${s.xtType} ${s.name}`)
    }
  }
  return {stmts, bare}
}

// ---- fast check -------------------------------------------------------------------------------------------
//
// At parse time every rule is checked for what the model does not type; building its statements only to throw
// them away costs as much as parsing the JSON. These checks allocate nothing and accept only shapes that the
// builders above turn into typed statements with nothing unknown (they may refuse more: the rule is then built
// to find out). The test suite holds them to that: fastStmt(j) implies stmt(j) records nothing unknown.

function fastStmt(j: Json): boolean {
  if (!isObj(j)) return false
  const key = soleKey(j)
  if (key === undefined) return false
  const v = j[key]
  switch (key) {
    case 'match':
      return isObj(v) && typeof v.op === 'string' && REL_OPS.has(v.op) && v.left !== undefined && v.right !== undefined && fastExpr(v.left) && fastExpr(v.right)
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'break':
    case 'notrack':
      return true
    case 'jump':
    case 'goto':
      return isObj(v) && typeof v.target === 'string'
    case 'counter':
      return v === null || typeof v === 'string' || (isObj(v) && typeof v.packets === 'number' && typeof v.bytes === 'number')
    case 'snat':
    case 'dnat':
    case 'masquerade':
    case 'redirect':
      return (
        v === null ||
        (isObj(v) &&
          (v.addr === undefined || fastExpr(v.addr)) &&
          (v.port === undefined || fastExpr(v.port)) &&
          (v.flags === undefined || fastNatFlags(v.flags)))
      )
    case 'mangle':
      // only a mark is rewritten by the trace: any other key takes the slow path, which lists it
      return isObj(v) && isMarkKey(v.key) && v.value !== undefined && fastExpr(v.key) && fastExpr(v.value)
    case 'vmap':
      return isObj(v) && v.key !== undefined && v.data !== undefined && fastExpr(v.key) && fastMapData(v.data)
    case 'log':
      return v === null || isObj(v)
    case 'reject':
      return v === null || (isObj(v) && (v.type === undefined || v.type === 'tcp reset' || v.type === 'icmpx' || v.type === 'icmp' || v.type === 'icmpv6'))
    case 'limit':
      return isObj(v) && typeof v.rate === 'number'
    case 'queue':
      return v === null || (isObj(v) && (v.num === undefined || fastExpr(v.num)))
    case 'set':
      if (!isObj(v) || typeof v.op !== 'string' || typeof v.set !== 'string' || v.elem === undefined || !fastExpr(v.elem)) return false
      // per-element statements other than a counter are listed (stmt() above): the slow path
      if (Array.isArray(v.stmt)) for (const x of v.stmt) if (!fastStmt(x) || !isObj(x) || !('counter' in x)) return false
      return true
    case 'ct helper':
    case 'secmark':
      return typeof v === 'string'
  }
  return false
}

function fastNatFlags(f: Json): boolean {
  if (Array.isArray(f)) {
    for (const x of f) if (x !== 'random' && x !== 'fully-random' && x !== 'persistent' && x !== 'netmap') return false
    return true
  }
  return f === 'random' || f === 'fully-random' || f === 'persistent' || f === 'netmap'
}

function fastMapData(d: Json): boolean {
  if (isObj(d) && d.set !== undefined) return fastElems(d.set)
  return fastExpr(d)
}

function fastElems(v: Json): boolean {
  if (!Array.isArray(v)) return fastElem(v)
  for (const el of v) if (!fastElem(el)) return false
  return true
}

function fastElem(el: Json): boolean {
  if (Array.isArray(el) && el.length === 2) return fastElem(el[0]!) && fastExpr(el[1]!)
  if (isObj(el) && isObj(el.elem)) {
    const e = el.elem
    for (const k in e) if (k !== 'val' && k !== 'timeout' && k !== 'expires' && k !== 'comment' && !ELEM_STATS.has(k)) return false
    return e.val !== undefined && fastExpr(e.val)
  }
  return fastExpr(el)
}

function fastExpr(j: Json): boolean {
  switch (typeof j) {
    case 'number':
    case 'string':
    case 'boolean':
      return true
  }
  if (j === null) return false
  if (Array.isArray(j)) {
    for (const x of j) if (!fastExpr(x)) return false
    return true
  }
  const key = soleKey(j)
  if (key === undefined) return false
  const v = j[key]!
  switch (key) {
    case 'payload':
      return isObj(v) && ((typeof v.protocol === 'string' && typeof v.field === 'string') || (typeof v.base === 'string' && typeof v.offset === 'number' && typeof v.len === 'number'))
    case 'meta':
    case 'ct':
      return isObj(v) && typeof v.key === 'string'
    case 'fib':
      return isObj(v) && typeof v.result === 'string'
    case 'numgen':
      return isObj(v) && (v.mode === 'inc' || v.mode === 'random') && typeof v.mod === 'number'
    case 'jhash':
      return isObj(v) && typeof v.mod === 'number' && v.expr !== undefined && fastExpr(v.expr)
    case 'symhash':
      return isObj(v) && typeof v.mod === 'number'
    case 'concat':
      return Array.isArray(v) && fastExpr(v)
    case 'set':
      return fastElems(v)
    case 'map':
      return isObj(v) && v.key !== undefined && v.data !== undefined && fastExpr(v.key) && fastMapData(v.data)
    case 'prefix':
      if (!isObj(v) || typeof v.len !== 'number') return false
      if (typeof v.addr === 'number') return true
      if (typeof v.addr !== 'string') return false
      return v.len >= 0 && v.len <= (ipv4(v.addr) !== undefined ? 32 : parseIp(v.addr)?.family === 6 ? 128 : -1)
    case 'range':
    case '&':
    case '|':
    case '^':
    case '<<':
    case '>>':
      return Array.isArray(v) && v.length === 2 && fastExpr(v[0]!) && fastExpr(v[1]!)
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'queue':
    case 'break':
      return true
    case 'jump':
    case 'goto':
      return isObj(v) && typeof v.target === 'string'
  }
  return false
}

/** Checks a rule's statements: whether any is a bare xt expression, and what is not modelled. */
function checkStmts(exprs: Json[]): {bare: boolean; unknown: readonly string[]} {
  let slow = false
  for (let k = 0; k < exprs.length; k++) {
    if (!fastStmt(exprs[k]!)) {
      slow = true
      break
    }
  }
  if (!slow) return {bare: false, unknown: EMPTY}
  ctx.unknown = []
  const {bare} = buildStmts(exprs)
  return {bare, unknown: ctx.unknown}
}

// ---- document --------------------------------------------------------------------------------------------

interface MTable {
  readonly family: NftFamily
  readonly name: string
  handle?: number
  flags: readonly string[]
  loc: Loc
  /** position in the document's table list */
  readonly idx: number
  /** id of its first chain, -1 before it has one */
  firstChain: number
  readonly sets: Map<string, NftSet>
  readonly objects: NftObject[]
  xtables: boolean
  /** shared jump/goto verdicts by target (when building with sharing) */
  readonly jumps: Map<string, NftStmt & NftExpr>
  readonly gotos: Map<string, NftStmt & NftExpr>
  chains: ChainMap | undefined
  readonly store: Store
}

const growI32 = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(a.length * 2)
  b.set(a)
  return b
}
const growF64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
  const b = new Float64Array(a.length * 2)
  b.set(a)
  return b
}

/**
 * The chains and rules of a document as rows of typed arrays: a 68k-rule dump makes no object per rule or chain
 * until they are used (a trace looks at a handful), which keeps parsing fast and its memory low. Rules and
 * statements are made from the document text (or the kept JSON) on first use and then kept.
 */
class Store {
  // rules
  n = 0
  ruleChain = new Int32Array(256)
  ruleHandle = new Float64Array(256)
  ruleLine = new Int32Array(256)
  /** the rule element's place in the text; -1 when its `expr` JSON is kept in ruleJson */
  ruleStart = new Int32Array(256)
  ruleEnd = new Int32Array(256)
  readonly ruleComment = new Map<number, string>()
  readonly ruleUnknown = new Map<number, readonly string[]>()
  readonly ruleJson = new Map<number, Json[]>()
  /** rows made by iptables-nft (set for whole tables by finish) */
  readonly ruleXt = new Set<number>()
  // chains: the name is a place in the text (nameAt, nameLen) or, when it is not verbatim there, in nameStr
  chains = 0
  chainNameAt = new Int32Array(64)
  chainNameLen = new Int32Array(64)
  chainTableIdx = new Int32Array(64)
  chainHandle = new Float64Array(64)
  chainLine = new Int32Array(64)
  readonly chainNameStr = new Map<number, string>()
  readonly chainBase = new Map<number, NftBaseChain>()
  readonly chainComment = new Map<number, string>()
  readonly chainObjs = new Map<number, Chain>()
  /** per table idx: chain name -> id, built when first needed (consumers, out-of-order documents) */
  readonly chainIndexes = new Map<number, Map<string, number>>()
  /** per chain id, its rules' rows: order[offsets[c] .. offsets[c+1]) (set by seal) */
  offsets: Int32Array | undefined
  order: Int32Array | undefined
  /** sharing caches for what is built after the parse */
  ctx: Ctx | undefined

  constructor(
    readonly file: string,
    readonly text: string,
    readonly tableList: MTable[],
  ) {}

  /** A new chain of table `t`; its name is text[nameAt, nameAt + name.length) when nameAt >= 0. */
  addChain(t: MTable, name: string, nameAt: number, line: number): number {
    const id = this.chains
    if (id === this.chainHandle.length) {
      this.chainNameAt = growI32(this.chainNameAt)
      this.chainNameLen = growI32(this.chainNameLen)
      this.chainTableIdx = growI32(this.chainTableIdx)
      this.chainHandle = growF64(this.chainHandle)
      this.chainLine = growI32(this.chainLine)
    }
    this.chainNameAt[id] = nameAt
    this.chainNameLen[id] = name.length
    if (nameAt < 0) this.chainNameStr.set(id, name)
    this.chainTableIdx[id] = t.idx
    this.chainHandle[id] = NaN
    this.chainLine[id] = line
    this.chains = id + 1
    if (t.firstChain < 0) t.firstChain = id
    this.chainIndexes.get(t.idx)?.set(name, id)
    return id
  }

  chainName(id: number): string {
    const at = this.chainNameAt[id]!
    return at < 0 ? this.chainNameStr.get(id)! : this.text.slice(at, at + this.chainNameLen[id]!)
  }

  chainNamed(id: number, name: string): boolean {
    const at = this.chainNameAt[id]!
    if (at < 0) return this.chainNameStr.get(id) === name
    return this.chainNameLen[id] === name.length && this.text.startsWith(name, at)
  }

  /** The chains of table `t` by name (built on first use). */
  chainIndex(t: {idx: number}): Map<string, number> {
    let m = this.chainIndexes.get(t.idx)
    if (!m) {
      m = new Map()
      for (let id = 0; id < this.chains; id++) if (this.chainTableIdx[id] === t.idx) m.set(this.chainName(id), id)
      this.chainIndexes.set(t.idx, m)
    }
    return m
  }

  addRule(chain: number, handle: number, line: number, start: number, end: number): number {
    const i = this.n
    if (i === this.ruleChain.length) {
      this.ruleChain = growI32(this.ruleChain)
      this.ruleHandle = growF64(this.ruleHandle)
      this.ruleLine = growI32(this.ruleLine)
      this.ruleStart = growI32(this.ruleStart)
      this.ruleEnd = growI32(this.ruleEnd)
    }
    this.ruleChain[i] = chain
    this.ruleHandle[i] = handle
    this.ruleLine[i] = line
    this.ruleStart[i] = start
    this.ruleEnd[i] = end
    this.n = i + 1
    return i
  }

  /** Groups the rule rows by chain, keeping their order. */
  seal(): void {
    const nc = this.chains
    const offsets = new Int32Array(nc + 1)
    for (let i = 0; i < this.n; i++) offsets[this.ruleChain[i]! + 1]!++
    for (let c = 0; c < nc; c++) offsets[c + 1]! += offsets[c]!
    const fill = offsets.slice(0, nc)
    const order = new Int32Array(this.n)
    for (let i = 0; i < this.n; i++) order[fill[this.ruleChain[i]!]!++] = i
    this.offsets = offsets
    this.order = order
  }

  chain(id: number): Chain {
    let c = this.chainObjs.get(id)
    if (!c) {
      c = new Chain(this, id)
      this.chainObjs.set(id, c)
    }
    return c
  }

  rulesOf(chain: Chain, id: number): NftRule[] {
    const from = this.offsets![id]!
    const to = this.offsets![id + 1]!
    const out: NftRule[] = new Array(to - from)
    for (let k = from; k < to; k++) out[k - from] = new Rule(this, this.order![k]!, chain, k - from + 1)
    return out
  }

  /** Runs `build` in the sharing context of this document, for table `t`. */
  shared<T>(t: MTable | undefined, build: () => T): T {
    const saved = ctx
    ctx = this.ctx ??= new Ctx(true)
    ctx.unknown = []
    ctx.table = t
    try {
      return build()
    } finally {
      ctx.table = undefined
      ctx.unknown = []
      ctx = saved
    }
  }

  /** The statements of rule row `i`, from its place in the text or its kept JSON. */
  stmts(i: number): readonly NftStmt[] {
    let exprs = this.ruleJson.get(i)
    if (exprs === undefined) exprs = (JSON.parse(this.text.slice(this.ruleStart[i], this.ruleEnd[i])) as {rule: {expr: Json[]}}).rule.expr
    const t = this.tableList[this.chainTableIdx[this.ruleChain[i]!]!]
    return this.shared(t, () => buildStmts(exprs).stmts)
  }
}

/** A table's chains in dump order, made on first use. */
class ChainMap implements ReadonlyMap<string, NftChain> {
  readonly #store: Store
  readonly #table: MTable
  constructor(store: Store, table: MTable) {
    this.#store = store
    this.#table = table
  }
  #ids(): Map<string, number> {
    return this.#store.chainIndex(this.#table)
  }
  get size(): number {
    return this.#ids().size
  }
  get(name: string): NftChain | undefined {
    const id = this.#ids().get(name)
    return id === undefined ? undefined : this.#store.chain(id)
  }
  has(name: string): boolean {
    return this.#ids().has(name)
  }
  keys(): MapIterator<string> {
    return this.#ids().keys()
  }
  *values(): MapIterator<NftChain> {
    for (const id of this.#ids().values()) yield this.#store.chain(id)
  }
  *entries(): MapIterator<[string, NftChain]> {
    for (const [name, id] of this.#ids()) yield [name, this.#store.chain(id)]
  }
  [Symbol.iterator](): MapIterator<[string, NftChain]> {
    return this.entries()
  }
  forEach(fn: (value: NftChain, key: string, map: ReadonlyMap<string, NftChain>) => void, thisArg?: unknown): void {
    for (const [name, id] of this.#ids()) fn.call(thisArg, this.#store.chain(id), name, this)
  }
  get [Symbol.toStringTag](): string {
    return 'ChainMap'
  }
  toJSON(): unknown {
    return Object.fromEntries(this.entries())
  }
}

/** A chain; its rules are made on first use of `rules`. toJSON includes them. */
class Chain implements NftChain {
  readonly family: NftFamily
  readonly table: string
  readonly name: string
  declare readonly handle?: number
  declare readonly base?: NftBaseChain
  declare readonly comment?: string
  readonly #store: Store
  readonly #id: number
  #rules: NftRule[] | undefined

  constructor(store: Store, id: number) {
    const t = store.tableList[store.chainTableIdx[id]!]!
    this.family = t.family
    this.table = t.name
    this.name = store.chainName(id)
    const handle = store.chainHandle[id]!
    if (!Number.isNaN(handle)) (this as {handle?: number}).handle = handle
    const base = store.chainBase.get(id)
    if (base) (this as {base?: NftBaseChain}).base = base
    const comment = store.chainComment.get(id)
    if (comment !== undefined) (this as {comment?: string}).comment = comment
    this.#store = store
    this.#id = id
  }

  get rules(): NftRule[] {
    return (this.#rules ??= this.#store.rulesOf(this, this.#id))
  }

  get loc(): Loc {
    return new ChainLoc(this.#store.file, this.#store.chainLine[this.#id]!, this)
  }

  toJSON(): unknown {
    return {
      family: this.family,
      table: this.table,
      name: this.name,
      ...(this.handle === undefined ? {} : {handle: this.handle}),
      ...(this.base === undefined ? {} : {base: this.base}),
      ...(this.comment === undefined ? {} : {comment: this.comment}),
      loc: this.loc,
      rules: this.rules,
    }
  }
}

/** A rule, made when its chain's rules are first used; `stmts` is built on first use and kept. */
class Rule implements NftRule {
  readonly family: NftFamily
  readonly table: string
  readonly chain: string
  readonly handle: number
  readonly index: number
  declare readonly comment?: string
  readonly xtables: boolean
  readonly notModelled: readonly string[]
  readonly #store: Store
  readonly #row: number
  #stmts: readonly NftStmt[] | undefined
  #loc: Loc | undefined

  constructor(store: Store, row: number, chain: Chain, index: number) {
    this.family = chain.family
    this.table = chain.table
    this.chain = chain.name
    this.handle = store.ruleHandle[row]!
    this.index = index
    const comment = store.ruleComment.get(row)
    if (comment !== undefined) (this as {comment?: string}).comment = comment
    this.xtables = store.ruleXt.has(row)
    this.notModelled = store.ruleUnknown.get(row) ?? EMPTY
    this.#store = store
    this.#row = row
  }

  get stmts(): readonly NftStmt[] {
    return (this.#stmts ??= this.#store.stmts(this.#row))
  }

  get loc(): Loc {
    return (this.#loc ??= new RuleLoc(this.#store.file, this.#store.ruleLine[this.#row]!, this))
  }

  toJSON(): unknown {
    return {
      family: this.family,
      table: this.table,
      chain: this.chain,
      handle: this.handle,
      index: this.index,
      ...(this.comment === undefined ? {} : {comment: this.comment}),
      stmts: jsonSafe(this.stmts),
      loc: this.loc,
      xtables: this.xtables,
      notModelled: this.notModelled,
    }
  }
}

/** A rule's Loc; `text` (the rule in nft syntax) is printed on first use. toJSON includes it. */
class RuleLoc implements Loc {
  readonly file: string
  readonly line: number
  readonly #rule: NftRule
  #text: string | undefined
  constructor(file: string, line: number, rule: NftRule) {
    this.file = file
    this.line = line
    this.#rule = rule
  }
  get text(): string {
    return (this.#text ??= formatNftRule(this.#rule))
  }
  toJSON(): Loc {
    return {file: this.file, line: this.line, text: this.text}
  }
}

/** A chain's Loc; `text` (`chain ip t c { type ... }`) is built on use. */
class ChainLoc implements Loc {
  readonly file: string
  readonly line: number
  readonly #chain: NftChain
  constructor(file: string, line: number, chain: NftChain) {
    this.file = file
    this.line = line
    this.#chain = chain
  }
  get text(): string {
    const c = this.#chain
    return `chain ${c.family} ${c.table} ${c.name}` + (c.base ? ` { ${formatBase(c.base)} }` : '')
  }
  toJSON(): Loc {
    return {file: this.file, line: this.line, text: this.text}
  }
}

/** A named set or map; its elements are built on first use of `elements` (kube-proxy's maps hold thousands). */
class NSet implements NftSet {
  readonly kind: 'set' | 'map' | 'meter'
  readonly family: NftFamily
  readonly table: string
  readonly name: string
  readonly handle: number
  readonly keyType: readonly string[]
  declare readonly dataType?: readonly string[]
  readonly flags: readonly string[]
  declare readonly timeout?: number
  declare readonly gcInterval?: number
  declare readonly size?: number
  declare readonly policy?: string
  declare readonly comment?: string
  readonly loc: Loc
  #elements: readonly NftSetElem[] | undefined
  readonly #make: () => readonly NftSetElem[]

  constructor(kind: 'set' | 'map' | 'meter', t: MTable, v: JObj, loc: Loc, make: () => readonly NftSetElem[]) {
    this.kind = kind
    this.family = t.family
    this.table = t.name
    this.name = v.name as string
    this.handle = typeof v.handle === 'number' ? v.handle : 0
    this.keyType = typeList(v.type)
    if (kind === 'map' && typeof v.map === 'string') (this as {dataType?: readonly string[]}).dataType = typeList(v.map)
    this.flags = strList(v.flags)
    const self = this as {timeout?: number; gcInterval?: number; size?: number; policy?: string; comment?: string}
    if (typeof v.timeout === 'number') self.timeout = v.timeout
    if (typeof v['gc-interval'] === 'number') self.gcInterval = v['gc-interval']
    if (typeof v.size === 'number') self.size = v.size
    if (typeof v.policy === 'string') self.policy = v.policy
    if (typeof v.comment === 'string') self.comment = v.comment
    this.loc = loc
    this.#make = make
  }

  get elements(): readonly NftSetElem[] {
    return (this.#elements ??= this.#make())
  }

  toJSON(): unknown {
    const {kind, family, table, name, handle, keyType, dataType, flags, timeout, gcInterval, size, policy, comment, loc} = this
    return {kind, family, table, name, handle, keyType, dataType, flags, timeout, gcInterval, size, policy, comment, loc, elements: jsonSafe(this.elements)}
  }
}

/** Elements of a set/map object in the current ctx, typed by the set's key and data types. */
function buildSetElems(v: JObj, items?: (each: (item: Json) => void) => void): readonly NftSetElem[] {
  if (v.elem === undefined) return EMPTY
  const keyType = typeList(v.type)
  const dataType = typeof v.map === 'string' ? typeList(v.map) : undefined
  const kh = keyType.map(typeHint)
  const vh = dataType ? (dataType.length === 1 ? typeHint(dataType[0]!) : dataType.map(typeHint)) : undefined
  const hint = kh.length === 1 ? kh[0] : kh
  if (!items) return setElems(v.elem, hint, vh)
  const out: NftSetElem[] = []
  items((item) => out.push(setElem(item, hint, vh)))
  return out
}

/** The parse of one document: fed one element of the "nftables" array at a time. */
class Doc {
  readonly tables = new Map<string, MTable>()
  readonly order: MTable[] = []
  readonly notModelled: NotModelled[] = []
  readonly store: Store
  metainfo: {version?: string; releaseName?: string; jsonSchemaVersion?: number} | undefined
  xtBareRules = 0
  /** bare-xt rules of tables iptables-nft-save could not print (NftParseOptions.notInIptablesSave) */
  xtIncompatibleBare = 0
  readonly xtNames = new Map<MTable, {n: number; names: Set<string>}>()
  /** rules of an iptables-nft table that hold what iptables cannot express (foreignToIptables) */
  readonly foreign = new Map<MTable, {chain: string; handle: number; what: string; loc: Loc}[]>()
  readonly misprinted: {family: NftFamily; table: string; chain: string; handle: number; what: string; loc: Loc}[] = []
  #lastTable: MTable | undefined
  #lastChain = -1

  constructor(
    readonly file: string,
    readonly text: string,
    /** look for rules iptables-nft-save misprints: only an iptables-save beside would hold them (a scan per rule) */
    readonly iptablesSaveBeside = false,
  ) {
    this.store = new Store(file, text, this.order)
  }

  bad(line: number, expected: string, found: Json): never {
    throw new ParseError(this.file, line, expected, snippet(found))
  }

  table(family: string, name: string, line: number, el: Json): MTable {
    const last = this.#lastTable
    if (last && last.name === name && last.family === family) return last
    let t = this.tables.get(family + ' ' + name)
    if (!t) {
      if (!FAMILIES.has(family)) this.bad(line, `a family (${NFT_FAMILIES.join(', ')})`, el)
      t = {
        family: family as NftFamily,
        name,
        flags: EMPTY,
        loc: {file: this.file, line, text: `table ${family} ${name}`},
        idx: this.order.length,
        firstChain: -1,
        sets: new Map(),
        objects: [],
        xtables: false,
        jumps: new Map(),
        gotos: new Map(),
        chains: undefined,
        store: this.store,
      }
      this.tables.set(family + ' ' + name, t)
      this.order.push(t)
    }
    this.#lastTable = t
    return t
  }

  /**
   * The chain `name` of `t`, added when new. nft prints every chain before the rules and the rules chain by chain, so
   * a rule's chain is the last one or one of the next few (chains without rules are skipped); only an out-of-order
   * document needs the table's name index.
   */
  chainId(t: MTable, name: string, line: number, nameAt = -1, isNew = false): number {
    const store = this.store
    const last = this.#lastChain
    if (!isNew) {
      if (last >= 0 && store.chainTableIdx[last] === t.idx && store.chainNamed(last, name)) return last
      for (const from of [last + 1, t.firstChain]) {
        if (from < 0) continue
        for (let id = from; id < store.chains && id < from + 64; id++) {
          if (store.chainTableIdx[id] === t.idx && store.chainNamed(id, name)) {
            this.#lastChain = id
            return id
          }
        }
      }
    }
    let id = isNew && !store.chainIndexes.has(t.idx) ? undefined : store.chainIndex(t).get(name)
    if (id === undefined) id = store.addChain(t, name, nameAt, line)
    this.#lastChain = id
    return id
  }

  element(el: Json, line: number, start: number, end: number, elems?: readonly [number, number]): void {
    if (!isObj(el)) this.bad(line, 'an object such as {"table": {...}}, {"chain": {...}}, {"rule": {...}}', el)
    const key = soleKey(el)
    if (key === undefined) this.bad(line, 'an object with one key ("table", "chain", "rule", "set", ...)', el)
    const v = el[key]!
    switch (key) {
      case 'rule':
        return this.rule(v, line, el, start, end)
      case 'chain':
        return this.chainObj(v, line, el, start, end)
      case 'table': {
        if (!isObj(v) || typeof v.family !== 'string' || typeof v.name !== 'string') this.bad(line, 'a table with "family" and "name"', el)
        const t = this.table(v.family, v.name, line, el)
        if (typeof v.handle === 'number') t.handle = v.handle
        t.flags = strList(v.flags)
        t.loc = {file: this.file, line, text: `table ${t.family} ${t.name}`}
        return
      }
      case 'set':
      case 'map':
      case 'meter':
        return this.set(key, v, line, el, start, end, elems)
      case 'metainfo':
        if (isObj(v)) {
          this.metainfo = {}
          if (typeof v.version === 'string') this.metainfo.version = v.version
          if (typeof v.release_name === 'string') this.metainfo.releaseName = v.release_name
          if (typeof v.json_schema_version === 'number') this.metainfo.jsonSchemaVersion = v.json_schema_version
        }
        return
    }
    if (OBJECT_TYPES.has(key) && isObj(v) && typeof v.family === 'string' && typeof v.table === 'string' && typeof v.name === 'string') {
      const t = this.table(v.family, v.table, line, el)
      t.objects.push({
        type: key,
        family: t.family,
        table: t.name,
        name: v.name,
        ...(typeof v.handle === 'number' ? {handle: v.handle} : {}),
        loc: {file: this.file, line, text: `${key} ${t.family} ${t.name} ${v.name}`},
        json: v,
      })
      if (OBJECTS_NOT_MODELLED.has(key)) this.notModelled.push({file: this.file, line, what: `nft ${key} ${t.family} ${t.name} ${v.name}`})
      return
    }
    this.notModelled.push({file: this.file, line, what: `nft ${JSON.stringify(key)} object ${snippet(v)}`})
  }

  chainObj(v: Json, line: number, el: Json, start: number, end: number): void {
    if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.name !== 'string') {
      this.bad(line, 'a chain with "family", "table" and "name"', el)
    }
    const t = this.table(v.family, v.table, line, el)
    const name = v.name
    // the name stays in the text, found by its place: kube-proxy has 30k long chain names
    let nameAt = -1
    if (start >= 0) {
      const at = this.text.indexOf('"name": "', start)
      if (at > 0 && at < end && this.text.startsWith(name, at + 9) && this.text.charCodeAt(at + 9 + name.length) === 34) nameAt = at + 9
    }
    const store = this.store
    // a chain object names a chain not seen yet, unless rules came first (not nft's order) or it is repeated
    const id = this.chainId(t, name, line, nameAt, store.n === 0)
    store.chainLine[id] = line
    if (typeof v.handle === 'number') store.chainHandle[id] = v.handle
    if (typeof v.comment === 'string') store.chainComment.set(id, v.comment)
    if (v.hook !== undefined || v.type !== undefined) {
      if (typeof v.type !== 'string' || typeof v.hook !== 'string' || typeof v.prio !== 'number') {
        this.bad(line, 'a base chain with "type", "hook" and "prio"', el)
      }
      if (!CHAIN_TYPES.has(v.type) || !HOOKS.has(v.hook)) {
        this.notModelled.push({file: this.file, line, what: `nft chain ${t.family} ${t.name} ${name}: type ${v.type} hook ${v.hook}`})
      }
      const base: {type: NftBaseChain['type']; hook: NftBaseChain['hook']; priority: number; priorityText: string; policy: 'accept' | 'drop'; devices?: readonly string[]} = {
        type: v.type as NftBaseChain['type'],
        hook: v.hook as NftBaseChain['hook'],
        priority: v.prio,
        priorityText: formatNftPriority(v.prio, t.family, v.hook),
        policy: v.policy === 'drop' ? 'drop' : 'accept',
      }
      if (v.dev !== undefined) base.devices = strList(v.dev)
      store.chainBase.set(id, base)
    }
  }

  rule(v: Json, line: number, el: Json, start: number, end: number): void {
    if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.chain !== 'string' || !Array.isArray(v.expr)) {
      this.bad(line, 'a rule with "family", "table", "chain" and "expr"', el)
    }
    const t = this.table(v.family, v.table, line, el)
    const chain = this.chainId(t, v.chain, line)
    // check what is not modelled; the statements are built when used
    ctx.table = t
    const {bare, unknown} = checkStmts(v.expr)
    const handle = typeof v.handle === 'number' ? v.handle : 0
    const store = this.store
    const row = store.addRule(chain, handle, line, start, end)
    if (start < 0) store.ruleJson.set(row, v.expr)
    if (typeof v.comment === 'string') store.ruleComment.set(row, v.comment)
    if (unknown.length) store.ruleUnknown.set(row, unknown)
    if (this.iptablesSaveBeside && (t.family === 'ip' || t.family === 'ip6') && XT_TABLES[t.family]!.has(t.name)) {
      // (ip/ip6 only: ebtables-nft's --among does make sets, in bridge tables)
      // a rule nft added to a table of iptables-nft's: iptables-nft-save may print it without what it cannot express
      const foreign = foreignToIptables(v.expr)
      if (foreign) {
        let f = this.foreign.get(t)
        if (!f) this.foreign.set(t, (f = []))
        f.push({chain: v.chain, handle, what: foreign, loc: {file: this.file, line, text: `nft ${t.family} ${t.name} ${v.chain} handle ${handle}`}})
      }
    }
    if (bare) {
      this.xtBareRules++
      t.xtables = true
      let b = this.xtNames.get(t)
      if (!b) this.xtNames.set(t, (b = {n: 0, names: new Set()}))
      b.n++
      for (const w of unknown) if (w.startsWith('xt ')) b.names.add(w.slice(w.indexOf(' ', 3) + 1))
    } else {
      for (const w of unknown) this.notModelled.push({file: this.file, line, what: `nft ${t.family} ${t.name} ${v.chain} handle ${handle}: ${w}`})
    }
  }

  /**
   * A set or map. `elems`, for a large one, is where its "elem" array is in the text (`v.elem` is then empty): its
   * items are parsed one at a time, so that a map of thousands of elements is never one JSON tree.
   */
  set(key: 'set' | 'map' | 'meter', v: Json, line: number, el: Json, start: number, end: number, elems?: readonly [number, number]): void {
    if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.name !== 'string') {
      this.bad(line, `a ${key} with "family", "table" and "name"`, el)
    }
    const t = this.table(v.family, v.table, line, el)
    const text = this.text
    const items = elems
      ? (each: (item: Json) => void): void => forEachArrayItem(text, elems[0], elems[1], (a, b) => each(JSON.parse(text.slice(a, b)) as Json))
      : undefined
    // check what is not modelled; the elements are built when used
    ctx.unknown = []
    ctx.table = t
    if (items) items((item) => void (fastElem(item) || setElem(item)))
    else if (v.elem !== undefined && !fastElems(v.elem)) buildSetElems(v)
    // `counter` (nft 1.0: `map m { ... counter }`) gives every element a counter: statistics only
    if (v.stmt !== undefined && !(Array.isArray(v.stmt) && v.stmt.every((x) => isObj(x) && Object.keys(x).length === 1 && ELEM_STATS.has(Object.keys(x)[0]!)))) {
      ctx.unknown.push(`set statements ${snippet(v.stmt)}`)
    }
    for (const w of ctx.unknown) this.notModelled.push({file: this.file, line, what: `nft ${key} ${t.family} ${t.name} ${v.name}: ${w}`})
    ctx.unknown = []
    const store = this.store
    const json = start < 0 || elems ? v : undefined
    const make = (): readonly NftSetElem[] => {
      const o = json ?? (JSON.parse(text.slice(start, end)) as {[k: string]: JObj})[key]!
      return store.shared(t, () => buildSetElems(o, items))
    }
    t.sets.set(v.name, new NSet(key, t, v, {file: this.file, line, text: `${key} ${t.family} ${t.name} ${v.name}`}, make))
  }

  finish(opts: NftParseOptions): NftRuleset {
    const store = this.store
    store.seal()
    // iptables-nft's tables: every rule there is also in iptables-nft-save
    let xtRules = 0
    for (const t of this.order) {
      t.chains = new ChainMap(store, t)
      if (!t.xtables) t.xtables = isXtablesLayout(t, store)
      const foreign = this.foreign.get(t)
      if (t.xtables && opts.iptablesSaveBeside && foreign && !opts.notInIptablesSave?.[t.family as 'ip' | 'ip6']?.includes(t.name)) {
        // iptables-nft-save (1.8.9) prints `tcp dport { 80, 443 } drop` as `-A INPUT -p tcp -j DROP` and a vmap rule
        // with no verdict: the iptables view of such a table is wrong. Without iptables-nft's bare xt expressions the
        // JSON says all, and the table is read from it; with them, each such rule is listed.
        const ex = foreign.slice(0, 3).map((f) => `${f.chain} handle ${f.handle} (${f.what})`).join(', ')
        const more = foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''
        if (!this.xtNames.has(t)) {
          t.xtables = false
          this.notModelled.push({
            file: this.file,
            line: t.loc.line,
            what:
              `nft table ${t.family} ${t.name}: ${foreign.length} rule${foreign.length === 1 ? '' : 's'} added with nft hold${foreign.length === 1 ? 's' : ''} what iptables cannot express ` +
              `(${ex}${more}), which iptables-nft-save prints without it (\`tcp dport { 80, 443 } drop\` as \`-p tcp -j DROP\`): the table is read from this JSON, not from iptables-save`,
          })
        } else {
          // evaluated from iptables-save: the loader marks the rules as iptables-nft-save printed them
          for (const f of foreign) this.misprinted.push({family: t.family, table: t.name, chain: f.chain, handle: f.handle, what: f.what, loc: f.loc})
        }
      }
      if (t.xtables && opts.iptablesSaveBeside && (t.family === 'ip' || t.family === 'ip6') && opts.notInIptablesSave?.[t.family]?.includes(t.name)) {
        // iptables-nft-save printed only "is incompatible" for it: the JSON is the only view of its rules
        t.xtables = false
        const b = this.xtNames.get(t)
        if (b) {
          this.notModelled.push({
            file: this.file,
            line: t.loc.line,
            what:
              `nft table ${t.family} ${t.name}: ${b.n} rule${b.n === 1 ? '' : 's'} made by iptables-nft hold${b.n === 1 ? 's' : ''} xt expressions ` +
              `(${[...b.names].sort().join(', ')}) that nft -j prints without their parameters, and iptables-nft-save could not print the table: ` +
              `${b.n === 1 ? 'this rule is' : 'these rules are'} not analysable`,
          })
          this.xtIncompatibleBare += b.n
        }
      }
    }
    // base chains nft added to a table iptables-nft-save printed (and called tainted): only the JSON has them
    const apart = new Map<MTable, Set<number>>()
    for (const t of this.order) {
      if (!t.xtables || !opts.iptablesSaveBeside || (t.family !== 'ip' && t.family !== 'ip6')) continue
      if (!opts.taintedInIptablesSave?.[t.family]?.includes(t.name)) continue
      const ids = new Set<number>()
      for (const [id, base] of store.chainBase) {
        if (store.chainTableIdx[id] === t.idx && XT_CHAIN_OF_HOOK[base.hook] !== store.chainName(id)) ids.add(id)
      }
      if (ids.size > 0) apart.set(t, ids)
    }
    for (let i = 0; i < store.n; i++) {
      const t = this.order[store.chainTableIdx[store.ruleChain[i]!]!]!
      if (t.xtables && !apart.get(t)?.has(store.ruleChain[i]!)) {
        store.ruleXt.add(i)
        xtRules++
      }
    }
    if (!opts.iptablesSaveBeside) {
      for (const t of this.order) {
        const b = this.xtNames.get(t)
        if (!b) continue
        this.notModelled.push({
          file: this.file,
          line: t.loc.line,
          what:
            `nft table ${t.family} ${t.name}: ${b.n} rule${b.n === 1 ? '' : 's'} made by iptables-nft hold${b.n === 1 ? 's' : ''} xt expressions ` +
            `(${[...b.names].sort().join(', ')}) that nft -j prints without their parameters; without the iptables-save ` +
            `of this host ${b.n === 1 ? 'this rule is' : 'these rules are'} not analysable`,
        })
      }
    }
    const tables: NftTable[] = []
    for (const t of this.order) {
      const table: NftTable = {
        family: t.family,
        name: t.name,
        ...(t.handle === undefined ? {} : {handle: t.handle}),
        flags: t.flags,
        loc: t.loc,
        chains: t.chains!,
        sets: t.sets,
        objects: t.objects,
        xtables: t.xtables,
      }
      tables.push(table)
      const ids = apart.get(t)
      if (!ids) continue
      // the same table once more, holding only those base chains and the chains they jump to: evaluated from here,
      // while iptables-save stands for the rest of it
      const chains = new Map<string, NftChain>()
      const queue = [...ids].map((id) => store.chainName(id))
      while (queue.length > 0) {
        const name = queue.shift()!
        const c = t.chains!.get(name)
        if (!c || chains.has(name)) continue
        chains.set(name, c)
        for (const r of c.rules) queue.push(...jumpTargetsOf(r, table))
      }
      tables.push({...table, chains, xtables: false})
    }
    return {
      file: this.file,
      ruleCount: store.n,
      notModelled: this.notModelled,
      ...(this.metainfo ? {metainfo: this.metainfo} : {}),
      tables,
      xtRules,
      xtBareRules: this.xtBareRules,
      fullyAnalysable: this.xtBareRules === 0 || (opts.iptablesSaveBeside === true && this.xtIncompatibleBare === 0),
      ...(this.misprinted.length > 0 ? {misprintedByIptables: this.misprinted} : {}),
    }
  }
}

export function parseNftJson(text: string, file: string, opts: NftParseOptions = {}): NftRuleset {
  const saved = ctx
  ctx = new Ctx(false)
  try {
    let doc = new Doc(file, text, opts.iptablesSaveBeside === true)
    if (!streamElements(text, doc, opts.streamSetsOver ?? BIG_SET)) {
      // not nft's own one-line layout (pretty-printed, other keys...), or malformed: parse the whole text
      doc = new Doc(file, text, opts.iptablesSaveBeside === true)
      let root: Json
      try {
        root = JSON.parse(text) as Json
      } catch {
        const err = locateJsonError(text)
        throw new ParseError(file, lineAt(text, err?.offset ?? text.length), err?.expected ?? 'valid JSON', err?.found)
      }
      if (!isObj(root) || !Array.isArray(root.nftables)) {
        throw new ParseError(file, 1, 'a JSON object {"nftables": [...]} as printed by `nft -j list ruleset`', snippet(root).slice(0, 60))
      }
      const elems = root.nftables
      const lines = elementLines(text, elems.length)
      for (let i = 0; i < elems.length; i++) doc.element(elems[i]!, lines ? lines[i]! : 1, -1, -1)
    }
    return doc.finish(opts)
  } finally {
    ctx = saved
  }
}

/**
 * Walks `{"nftables": [ el, el, ... ]}` with a light scanner that finds where each element ends, JSON.parses each
 * element on its own and hands it to `doc` with its line and place. Returns false when the text is not in that
 * exact shape or an element does not parse (having fed `doc` the elements before), so that the caller starts
 * again on the whole text, which also locates syntax errors.
 */
function streamElements(text: string, doc: Doc, bigSet: number): boolean {
  const head = /^\s*\{\s*"nftables"\s*:\s*\[/.exec(text.length > 200 ? text.slice(0, 200) : text)
  if (!head) return false
  const n = text.length
  let i = head[0].length
  let line = lineAt(text, i)
  const nl = text.indexOf('\n')
  const oneLine = nl < 0 || nl >= text.length - 2
  let first = true
  for (;;) {
    let c = text.charCodeAt(i)
    while (c === 32 || c === 10 || c === 9 || c === 13) {
      if (c === 10) line++
      c = text.charCodeAt(++i)
    }
    if (c === 93 /* ] */ && first) break
    if (c !== 123 /* { */) return false
    first = false
    const start = i
    const startLine = line
    // nft's one-line output: an element ends where `}}, {"KEY": {"family": "` starts the next one (a string
    // holding that text fails to parse and takes the careful way below)
    const quick = oneLine ? nextElement(text, i) : -1
    if (quick > 0) {
      i = quick
    } else {
      let depth = 0
      for (;;) {
        if (i >= n) return false
        c = text.charCodeAt(i++)
        if (c === 34 /* " */) {
          // a string holds no raw newline and no bracket that counts: jump to its closing quote
          i = skipString(text, i - 1)
          if (i < 0) return false
        } else if (c === 123 || c === 91) depth++
        else if (c === 125 || c === 93) {
          if (--depth === 0) break
        } else if (c === 10) line++
      }
    }
    let el: Json
    let elems: readonly [number, number] | undefined
    try {
      if (i - start > bigSet) {
        // a huge set or map: parse it without its "elem" array, whose items Doc.set parses one by one
        elems = findSetElems(text, start, i)
        if (elems) el = JSON.parse(text.slice(start, elems[0]) + '[]' + text.slice(elems[1], i)) as Json
        else el = JSON.parse(text.slice(start, i)) as Json
      } else el = JSON.parse(text.slice(start, i)) as Json
    } catch {
      if (!oneLine) return false
      // the quick end was inside a string: find the element's end bracket by bracket
      const close = matchBracket(text, start, n)
      if (close < 0 || close === i) return false
      i = close
      elems = i - start > bigSet ? findSetElems(text, start, i) : undefined
      try {
        el = (elems ? JSON.parse(text.slice(start, elems[0]) + '[]' + text.slice(elems[1], i)) : JSON.parse(text.slice(start, i))) as Json
      } catch {
        return false
      }
    }
    doc.element(el, startLine, start, i, elems)
    c = text.charCodeAt(i)
    while (c === 32 || c === 10 || c === 9 || c === 13) {
      if (c === 10) line++
      c = text.charCodeAt(++i)
    }
    if (c === 44 /* , */) {
      i++
      continue
    }
    if (c === 93) break
    return false
  }
  // after the array: `}` and nothing else
  i++
  let c = text.charCodeAt(i)
  while (c === 32 || c === 10 || c === 9 || c === 13) c = text.charCodeAt(++i)
  if (c !== 125) return false
  i++
  while (i < n) {
    c = text.charCodeAt(i++)
    if (c !== 32 && c !== 10 && c !== 9 && c !== 13) return false
  }
  return true
}

/**
 * A set or map element longer than this is parsed item by item: its JSON tree (three times its text) would
 * otherwise live through several young-generation collections and make V8 grow the young generation for good.
 * Below it, one JSON.parse is faster (kube-proxy's service-ips map of 8k services is 1.2 MB).
 */
const BIG_SET = 4 << 20

const ELEMENT_KEYS = new Set(['table', 'chain', 'rule', 'set', 'map', 'meter', 'element', 'flowtable', 'counter', 'quota', 'limit', 'ct helper', 'ct timeout', 'ct expectation', 'secmark', 'synproxy', 'tunnel'])

/**
 * In nft's one-line output, where the element starting at text[i] ends: just before `, {"KEY": {"family": "` of the
 * next element, or before the `]` that closes the array for the last one. -1 when not found.
 */
function nextElement(text: string, i: number): number {
  let at = text.indexOf('}}, {"', i)
  while (at >= 0) {
    const keyStart = at + 6
    const keyEnd = text.indexOf('"', keyStart)
    if (keyEnd > 0 && keyEnd - keyStart <= 14 && text.startsWith('": {"family": "', keyEnd) && ELEMENT_KEYS.has(text.slice(keyStart, keyEnd))) return at + 2
    at = text.indexOf('}}, {"', at + 1)
  }
  // the last element: up to the closing `]}` of the document
  let end = text.length - 1
  while (end > i && text.charCodeAt(end) !== 93 /* ] */) end--
  while (end > i && text.charCodeAt(end - 1) === 32) end--
  return end > i ? end : -1
}

/** Skips the JSON string whose opening quote is at text[i]; returns the index after its closing quote, or -1. */
function skipString(text: string, i: number): number {
  let j = text.indexOf('"', i + 1)
  for (;;) {
    if (j < 0) return -1
    let b = j - 1
    while (text.charCodeAt(b) === 92 /* \ */) b--
    if ((j - 1 - b) % 2 === 0) return j + 1
    j = text.indexOf('"', j + 1)
  }
}

/** Where the "elem" array of `{"set"|"map"|"meter": {...}}` at text[start, end) is: [its `[`, after its `]`). */
function findSetElems(text: string, start: number, end: number): readonly [number, number] | undefined {
  if (!/^\{\s*"(set|map|meter)"\s*:/.test(text.slice(start, start + 20))) return undefined
  let depth = 0
  for (let i = start; i < end; ) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      const after = skipString(text, i)
      if (after < 0) return undefined
      if (depth === 2 && after - i === 6 && text.startsWith('"elem"', i)) {
        let k = after
        while (k < end && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 10 || text.charCodeAt(k) === 9 || text.charCodeAt(k) === 13)) k++
        if (text.charCodeAt(k) !== 58 /* : */) return undefined
        k++
        while (k < end && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 10 || text.charCodeAt(k) === 9 || text.charCodeAt(k) === 13)) k++
        if (text.charCodeAt(k) !== 91 /* [ */) return undefined
        const close = matchBracket(text, k, end)
        return close < 0 ? undefined : [k, close]
      }
      i = after
      continue
    }
    if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) depth--
    i++
  }
  return undefined
}

/** The index after the bracket that closes the one at text[i], or -1. */
function matchBracket(text: string, i: number, end: number): number {
  let depth = 0
  while (i < end) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      i = skipString(text, i)
      if (i < 0) return -1
      continue
    }
    if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) {
      if (--depth === 0) return i + 1
    }
    i++
  }
  return -1
}

/** Calls `each(start, end)` for every item of the JSON array at text[a, b) (`[` at a, `]` at b - 1). */
function forEachArrayItem(text: string, a: number, b: number, each: (start: number, end: number) => void): void {
  let i = a + 1
  const last = b - 1
  for (;;) {
    while (i < last && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 10 || text.charCodeAt(i) === 9 || text.charCodeAt(i) === 13)) i++
    if (i >= last) return
    const start = i
    const c = text.charCodeAt(i)
    if (c === 123 || c === 91) i = matchBracket(text, i, last)
    else if (c === 34) i = skipString(text, i)
    else while (i < last && text.charCodeAt(i) !== 44 && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 10) i++
    if (i < 0) return
    each(start, i)
    while (i < last && text.charCodeAt(i) !== 44) i++
    i++
  }
}

function formatBase(b: NftBaseChain): string {
  return `type ${b.type} hook ${b.hook} priority ${b.priorityText}; policy ${b.policy};`
}

function typeList(t: Json | undefined): string[] {
  if (typeof t === 'string') return t.split(' . ')
  if (Array.isArray(t)) return t.map(String)
  return []
}

function typeHint(t: string): VHint {
  return t === 'ifname' ? 'ifname' : undefined
}

/** iptables-nft's layout: an xtables table name for the family, base chains named as the iptables built-ins. */
function isXtablesLayout(t: MTable, store: Store): boolean {
  if (!XT_TABLES[t.family]?.has(t.name)) return false
  let bases = 0
  for (const [id, base] of store.chainBase) {
    if (store.chainTableIdx[id] !== t.idx) continue
    bases++
    if (XT_CHAIN_OF_HOOK[base.hook] !== store.chainName(id)) return false
  }
  return bases > 0
}

// ---- positions --------------------------------------------------------------------------------------------

/**
 * The line each element of the top-level "nftables" array starts on, or undefined when the whole document is on
 * one line (nft's own output), where every element is on line 1.
 */
function elementLines(text: string, count: number): number[] | undefined {
  const nl = text.indexOf('\n')
  if (nl < 0 || text.slice(nl).trim() === '') return undefined
  const out: number[] = []
  let line = 1
  let depth = 0
  let arrayDepth = -1
  let lastKey: string | undefined
  let expectValue = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) {
      line++
      continue
    }
    if (c === 32 || c === 9 || c === 13) continue
    if (depth === arrayDepth && c !== 44 /* , */ && c !== 93 /* ] */ && out.length < count) out.push(line)
    if (c === 34 /* " */) {
      const start = i + 1
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 92) i += 2
        else if (d === 34) break
        else {
          if (d === 10) line++
          i++
        }
      }
      if (depth === 1) lastKey = text.slice(start, i)
      continue
    }
    if (c === 58 /* : */) {
      expectValue = depth === 1 && lastKey === 'nftables'
      continue
    }
    if (c === 123 || c === 91) {
      depth++
      if (c === 91 && expectValue && depth === 2) arrayDepth = 2
      expectValue = false
    } else if (c === 125 || c === 93) {
      if (depth === arrayDepth && c === 93) arrayDepth = -1
      depth--
    }
  }
  while (out.length < count) out.push(line)
  return out
}
