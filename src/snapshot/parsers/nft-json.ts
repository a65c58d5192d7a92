// Parser for `nft -j list ruleset` (libnftables-json(5)) into the typed model of src/model/nft.ts.
//
// Malformed input (invalid JSON, not an nftables document, a rule without chain...) throws ParseError with the
// file and line. Valid objects and expressions the model does not type are kept verbatim and reported as
// NotModelled, never dropped. Rules made by iptables-nft are marked (rule.xtables) so that a consumer with
// the matching iptables-save evaluates them once, from the iptables view.
import {makePrefix, parseIp} from '../../model/ip.js'
import {
  formatNftRule,
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
  type NftVerdict,
} from '../../model/nft.js'
import {ParseError, type Loc, type NotModelled} from '../../model/source.js'

export interface NftParseOptions {
  /**
   * An iptables-save (nf_tables backend) of the same host is available: rules with bare xt expressions are then
   * evaluated from it and not reported as unanalysable.
   */
  readonly iptablesSaveBeside?: boolean
}

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
type JObj = {[k: string]: Json}

const FAMILIES = new Set<string>(NFT_FAMILIES)
const REL_OPS = new Set<string>(['==', '!=', '<', '>', '<=', '>=', 'in'])
const BIN_OPS = new Set<string>(['&', '|', '^', '<<', '>>'])
const SIMPLE_VERDICTS = new Set<string>(['accept', 'drop', 'continue', 'return', 'queue', 'break'])
const CHAIN_TYPES = new Set<string>(['filter', 'nat', 'route'])
const HOOKS = new Set<string>(['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'])
const OBJECT_TYPES = new Set<string>(['counter', 'quota', 'limit', 'ct helper', 'ct timeout', 'ct expectation', 'secmark', 'synproxy', 'flowtable', 'tunnel'])
/** objects that change what packets do, and so are not fully analysable from the model */
const OBJECTS_NOT_MODELLED = new Set<string>(['flowtable', 'synproxy', 'ct timeout', 'ct expectation', 'tunnel'])

// iptables-nft creates these tables and names base chains like the iptables built-ins (xtables-nft's
// nft-cmd/nft.c table templates): filter/nat/mangle/raw/security for ip/ip6, filter for arp, filter/nat/broute
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

// ---- parse state (module-level so the hot path allocates no closures; parse is synchronous) ----------------

let curUnknown: string[] = []

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

// ---- expressions -----------------------------------------------------------------------------------------

/** Typing of constants: interface names are never addresses; anything else that parses as an IP is one. */
type VHint = 'ifname' | undefined

const IFNAME_META = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname', 'ibriport', 'obriport', 'ibridgename', 'obridgename', 'sdifname'])

function vhintOf(e: NftExpr): VHint {
  if (e.kind === 'meta' && IFNAME_META.has(e.key)) return 'ifname'
  if (e.kind === 'fib' && e.result === 'oifname') return 'ifname'
  return undefined
}

function unknownExpr(name: string, j: Json): NftExpr {
  curUnknown.push(`${JSON.stringify(name)} expression ${snippet(j)}`)
  return {kind: 'unknown', name, json: j}
}

function stringValue(s: string, hint: VHint): NftExpr {
  const c = s.charCodeAt(0)
  if (c === 64 /* @ */) return {kind: 'setref', name: s.slice(1)}
  if (s === '*') return {kind: 'wildcard'}
  if (hint === 'ifname') return {kind: 'string', value: s}
  // a dotted quad or an IPv6 address; nft prints 64-bit-plus integers as 0x... strings
  if ((c >= 48 && c <= 57) || s.includes(':')) {
    const a = s.length <= 45 ? parseIp(s) : undefined
    if (a) return {kind: 'addr', addr: a}
    if (c === 48 && /^0x[0-9a-fA-F]+$/.test(s)) return {kind: 'bignum', value: BigInt(s)}
  }
  return {kind: 'string', value: s}
}

/** A value or expression on the right-hand side, in a set, or an operand; `hint` types constants. */
function expr(j: Json, hint?: VHint | readonly VHint[]): NftExpr {
  switch (typeof j) {
    case 'number':
      return {kind: 'number', value: j}
    case 'string':
      return stringValue(j, typeof hint === 'string' ? hint : undefined)
    case 'boolean':
      return {kind: 'bool', value: j}
  }
  if (j === null) return unknownExpr('null', j)
  if (Array.isArray(j)) {
    const items: NftExpr[] = []
    for (const i of j) items.push(expr(i, hint))
    return {kind: 'list', items}
  }
  const key = soleKey(j)
  if (key === undefined) return unknownExpr('object', j)
  const v = j[key]!
  switch (key) {
    case 'payload':
      if (isObj(v)) {
        if (typeof v.protocol === 'string' && typeof v.field === 'string') return {kind: 'payload', protocol: v.protocol, field: v.field}
        if (typeof v.base === 'string' && typeof v.offset === 'number' && typeof v.len === 'number') return {kind: 'rawpayload', base: v.base, offset: v.offset, len: v.len}
      }
      break
    case 'meta':
      if (isObj(v) && typeof v.key === 'string') return {kind: 'meta', key: v.key}
      break
    case 'ct':
      if (isObj(v) && typeof v.key === 'string') {
        const e: {kind: 'ct'; key: string; dir?: 'original' | 'reply'; family?: string} = {kind: 'ct', key: v.key}
        if (v.dir === 'original' || v.dir === 'reply') e.dir = v.dir
        if (typeof v.family === 'string') e.family = v.family
        return e
      }
      break
    case 'fib':
      if (isObj(v) && typeof v.result === 'string') {
        const f = v.flags
        const flags = typeof f === 'string' ? [f] : Array.isArray(f) ? f.map(String) : []
        return {kind: 'fib', result: v.result, flags}
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
        const parts: NftExpr[] = []
        const hints = Array.isArray(hint) ? (hint as readonly VHint[]) : undefined
        for (let i = 0; i < v.length; i++) parts.push(expr(v[i]!, hints?.[i]))
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
      if (isObj(v) && typeof v.addr === 'string' && typeof v.len === 'number') {
        const a = parseIp(v.addr)
        if (a && v.len >= 0 && v.len <= (a.family === 4 ? 32 : 128)) return {kind: 'prefix', prefix: makePrefix(a, v.len)}
      } else if (isObj(v) && typeof v.addr === 'number' && typeof v.len === 'number') {
        return {kind: 'intprefix', value: v.addr, len: v.len}
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
    case 'jump':
    case 'goto': {
      const verdict = parseVerdict(key, v)
      if (verdict) return {kind: 'verdict', verdict}
      break
    }
  }
  return unknownExpr(key, j)
}

function parseVerdict(key: string, v: Json): NftVerdict | undefined {
  if (SIMPLE_VERDICTS.has(key)) return {kind: key as 'accept'}
  if ((key === 'jump' || key === 'goto') && isObj(v) && typeof v.target === 'string') return {kind: key, target: v.target}
  return undefined
}

/** Elements of an anonymous or named set: plain values, `{"elem": {...}}` objects, or `[key, value]` mappings. */
function setElems(v: Json, hint?: VHint | readonly VHint[], valueHint?: VHint | readonly VHint[]): NftSetElem[] {
  const list = Array.isArray(v) ? v : [v]
  const out: NftSetElem[] = []
  for (const el of list) out.push(setElem(el, hint, valueHint))
  return out
}

function setElem(el: Json, hint?: VHint | readonly VHint[], valueHint?: VHint | readonly VHint[]): NftSetElem {
  if (Array.isArray(el) && el.length === 2) {
    const k = setElem(el[0]!, hint)
    return {...k, value: expr(el[1]!, valueHint)}
  }
  if (isObj(el) && isObj(el.elem)) {
    const e = el.elem
    const out: {key: NftExpr; timeout?: number; expires?: number; comment?: string} = {key: expr(e.val ?? null, hint)}
    if (typeof e.timeout === 'number') out.timeout = e.timeout
    if (typeof e.expires === 'number') out.expires = e.expires
    if (typeof e.comment === 'string') out.comment = e.comment
    for (const k in e) if (k !== 'val' && k !== 'timeout' && k !== 'expires' && k !== 'comment') curUnknown.push(`set element ${JSON.stringify(k)} ${snippet(e[k])}`)
    return out
  }
  return {key: expr(el, hint)}
}

/** The data of a map lookup: an anonymous set of mappings or a named map reference. */
function mapData(d: Json, key: NftExpr): NftExpr {
  if (isObj(d) && d.set !== undefined) return {kind: 'set', elements: setElems(d.set, keyHints(key))}
  return expr(d)
}

function keyHints(k: NftExpr): VHint | readonly VHint[] {
  return k.kind === 'concat' ? k.parts.map(vhintOf) : vhintOf(k)
}

// ---- statements -----------------------------------------------------------------------------------------

function natFlags(f: Json | undefined): NftNatFlag[] {
  if (f === undefined) return []
  const arr = Array.isArray(f) ? f : [f]
  const out: NftNatFlag[] = []
  for (const x of arr) {
    if (x === 'random' || x === 'fully-random' || x === 'persistent' || x === 'netmap') out.push(x)
    else curUnknown.push(`nat flag ${snippet(x)}`)
  }
  return out
}

function strList(f: Json | undefined): string[] {
  if (f === undefined || f === null) return []
  return Array.isArray(f) ? f.map(String) : [String(f)]
}

function stmt(j: Json): NftStmt {
  if (typeof j === 'string') {
    // nft prints a statement it has no JSON form for as its text
    curUnknown.push(`statement ${JSON.stringify(j)}`)
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
        const right = expr(v.right, keyHints(left))
        return {kind: 'match', op: v.op as NftRelOp, left, right}
      }
      break
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'break':
    case 'jump':
    case 'goto': {
      const verdict = parseVerdict(key, v)
      if (verdict) return {kind: 'verdict', verdict}
      break
    }
    case 'counter':
      if (v === null) return {kind: 'counter'}
      if (typeof v === 'string') return {kind: 'objref', type: 'counter', name: v}
      if (isObj(v) && typeof v.packets === 'number' && typeof v.bytes === 'number') return {kind: 'counter', packets: v.packets, bytes: v.bytes}
      break
    case 'log': {
      if (v === null) return {kind: 'log', flags: []}
      if (!isObj(v)) break
      const s: {kind: 'log'; prefix?: string; level?: string; group?: number; snaplen?: number; queueThreshold?: number; flags: string[]} = {kind: 'log', flags: strList(v.flags)}
      if (typeof v.prefix === 'string') s.prefix = v.prefix
      if (typeof v.level === 'string') s.level = v.level
      if (typeof v.group === 'number') s.group = v.group
      if (typeof v.snaplen === 'number') s.snaplen = v.snaplen
      if (typeof v['queue-threshold'] === 'number') s.queueThreshold = v['queue-threshold']
      return s
    }
    case 'limit':
      if (typeof v === 'string') return {kind: 'objref', type: 'limit', name: v}
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
        return {kind: 'mangle', key: k, value: expr(v.value, keyHints(k))}
      }
      break
    case 'notrack':
      return {kind: 'notrack'}
    case 'snat':
    case 'dnat':
    case 'masquerade':
    case 'redirect': {
      if (v !== null && !isObj(v)) break
      const s: {kind: 'nat'; type: typeof key; family?: 'ip' | 'ip6'; addr?: NftExpr; port?: NftExpr; flags: NftNatFlag[]; typeFlags: string[]} = {
        kind: 'nat',
        type: key,
        flags: v === null ? [] : natFlags(v.flags),
        typeFlags: v === null ? [] : strList(v.type_flags),
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
      const s: {kind: 'queue'; num?: NftExpr; flags: string[]} = {kind: 'queue', flags: v === null ? [] : strList(v.flags)}
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
        if (key !== 'ct helper' && key !== 'secmark') curUnknown.push(`${key} ${JSON.stringify(v)} (named object reference)`)
        return {kind: 'objref', type: key, name: v}
      }
      break
  }
  return unknownStmt(key, j)
}

function unknownStmt(name: string, j: Json): NftStmt {
  curUnknown.push(`${JSON.stringify(name)} statement ${snippet(j)}`)
  return {kind: 'unknown', name, json: j}
}

// ---- document --------------------------------------------------------------------------------------------

interface MTable {
  family: NftFamily
  name: string
  handle?: number
  flags: string[]
  loc: Loc
  chains: Map<string, NftChain>
  sets: Map<string, NftSet>
  objects: NftObject[]
  xtables: boolean
}

interface MRule {
  family: NftFamily
  table: string
  chain: string
  handle: number
  index: number
  comment?: string
  stmts: NftStmt[]
  loc: Loc
  xtables: boolean
  notModelled: string[]
}

/** A Loc whose text (the rule in nft syntax) is computed on first use: most rules are never quoted. */
function ruleLoc(file: string, line: number, rule: MRule): Loc {
  let text: string | undefined
  return {
    file,
    line,
    get text(): string {
      if (text === undefined) text = formatNftRule(rule)
      return text
    },
  }
}

const FOUND = (j: unknown): string => snippet(j)

export function parseNftJson(text: string, file: string, opts: NftParseOptions = {}): NftRuleset {
  let doc: Json
  try {
    doc = JSON.parse(text) as Json
  } catch {
    const err = locateJsonError(text)
    throw new ParseError(file, lineAt(text, err.offset), err.expected, err.found)
  }
  if (!isObj(doc) || !Array.isArray(doc.nftables)) {
    throw new ParseError(file, 1, 'a JSON object {"nftables": [...]} as printed by `nft -j list ruleset`', FOUND(doc).slice(0, 60))
  }
  const elems = doc.nftables
  const lines = elementLines(text, elems.length)
  const notModelled: NotModelled[] = []
  const tables = new Map<string, MTable>()
  const tableOrder: MTable[] = []
  let metainfo: NftRuleset['metainfo']
  let ruleCount = 0
  let xtBareRules = 0

  const lineOf = (i: number): number => (lines ? lines[i]! : 1)
  const bad = (i: number, expected: string, found: Json): never => {
    throw new ParseError(file, lineOf(i), expected, FOUND(found))
  }
  const getTable = (family: string, name: string, i: number, el: Json): MTable => {
    if (!FAMILIES.has(family)) bad(i, `a family (${[...FAMILIES].join(', ')})`, el)
    const k = family + ' ' + name
    let t = tables.get(k)
    if (!t) {
      t = {
        family: family as NftFamily,
        name,
        flags: [],
        loc: {file, line: lineOf(i), text: `table ${family} ${name}`},
        chains: new Map(),
        sets: new Map(),
        objects: [],
        xtables: false,
      }
      tables.set(k, t)
      tableOrder.push(t)
    }
    return t
  }
  const getChain = (t: MTable, name: string, i: number): NftChain => {
    let c = t.chains.get(name)
    if (!c) {
      c = {family: t.family, table: t.name, name, loc: {file, line: lineOf(i), text: `chain ${t.family} ${t.name} ${name}`}, rules: []}
      t.chains.set(name, c)
    }
    return c
  }

  for (let i = 0; i < elems.length; i++) {
    const el = elems[i]!
    if (!isObj(el)) bad(i, 'an object such as {"table": {...}}, {"chain": {...}}, {"rule": {...}}', el)
    const key = soleKey(el as JObj)
    if (key === undefined) bad(i, 'an object with one key ("table", "chain", "rule", "set", ...)', el)
    const v = (el as JObj)[key!]!
    switch (key) {
      case 'metainfo':
        if (isObj(v)) {
          metainfo = {}
          if (typeof v.version === 'string') (metainfo as {version?: string}).version = v.version
          if (typeof v.release_name === 'string') (metainfo as {releaseName?: string}).releaseName = v.release_name
          if (typeof v.json_schema_version === 'number') (metainfo as {jsonSchemaVersion?: number}).jsonSchemaVersion = v.json_schema_version
        }
        break
      case 'table': {
        if (!isObj(v) || typeof v.family !== 'string' || typeof v.name !== 'string') bad(i, 'a table with "family" and "name"', el)
        const o = v as JObj
        const t = getTable(o.family as string, o.name as string, i, el)
        if (typeof o.handle === 'number') t.handle = o.handle
        t.flags = strList(o.flags)
        t.loc = {file, line: lineOf(i), text: `table ${t.family} ${t.name}`}
        break
      }
      case 'chain': {
        if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.name !== 'string') {
          bad(i, 'a chain with "family", "table" and "name"', el)
        }
        const o = v as JObj
        const t = getTable(o.family as string, o.table as string, i, el)
        const existing = t.chains.get(o.name as string)
        const c: {family: NftFamily; table: string; name: string; handle?: number; loc: Loc; base?: NftBaseChain; comment?: string; rules: NftRule[]} = {
          family: t.family,
          table: t.name,
          name: o.name as string,
          loc: {file, line: lineOf(i), text: `chain ${t.family} ${t.name} ${o.name as string}`},
          rules: existing?.rules ?? [],
        }
        if (typeof o.handle === 'number') c.handle = o.handle
        if (typeof o.comment === 'string') c.comment = o.comment
        if (o.hook !== undefined || o.type !== undefined) {
          if (typeof o.type !== 'string' || typeof o.hook !== 'string' || typeof o.prio !== 'number') {
            bad(i, 'a base chain with "type", "hook" and "prio"', el)
          }
          if (!CHAIN_TYPES.has(o.type as string) || !HOOKS.has(o.hook as string)) {
            notModelled.push({file, line: lineOf(i), what: `chain ${t.family} ${t.name} ${c.name}: type ${String(o.type)} hook ${String(o.hook)}`})
          }
          const base: {type: NftBaseChain['type']; hook: NftBaseChain['hook']; priority: number; priorityText: string; policy: 'accept' | 'drop'; devices?: string[]} = {
            type: o.type as NftBaseChain['type'],
            hook: o.hook as NftBaseChain['hook'],
            priority: o.prio as number,
            priorityText: formatNftPriority(o.prio as number, t.family, o.hook as string),
            policy: o.policy === 'drop' ? 'drop' : 'accept',
          }
          if (o.dev !== undefined) base.devices = strList(o.dev)
          c.base = base
          c.loc = {file, line: lineOf(i), text: `chain ${t.family} ${t.name} ${c.name} { ${formatBase(base)} }`}
        }
        t.chains.set(c.name, c)
        break
      }
      case 'rule': {
        if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.chain !== 'string' || !Array.isArray(v.expr)) {
          bad(i, 'a rule with "family", "table", "chain" and "expr"', el)
        }
        const o = v as JObj
        const t = getTable(o.family as string, o.table as string, i, el)
        const c = getChain(t, o.chain as string, i)
        curUnknown = []
        const exprs = o.expr as Json[]
        const stmts: NftStmt[] = new Array(exprs.length)
        let bare = false
        for (let k = 0; k < exprs.length; k++) {
          const s = stmt(exprs[k]!)
          stmts[k] = s
          if (s.kind === 'xt') {
            bare = true
            curUnknown.push(`xt ${s.xtType} ${s.name}`)
          }
        }
        const index = c.rules.length + 1
        const r: MRule = {
          family: t.family,
          table: t.name,
          chain: c.name,
          handle: typeof o.handle === 'number' ? o.handle : 0,
          index,
          stmts,
          loc: undefined as unknown as Loc,
          xtables: bare,
          notModelled: curUnknown,
        }
        if (typeof o.comment === 'string') r.comment = o.comment
        r.loc = ruleLoc(file, lineOf(i), r)
        c.rules.push(r)
        ruleCount++
        if (bare) {
          xtBareRules++
          t.xtables = true
        } else if (curUnknown.length) {
          const where = `${t.family} ${t.name} ${c.name} handle ${r.handle}`
          for (const w of curUnknown) notModelled.push({file, line: lineOf(i), what: `nft ${where}: ${w}`})
        }
        break
      }
      case 'set':
      case 'map':
      case 'meter': {
        if (!isObj(v) || typeof v.family !== 'string' || typeof v.table !== 'string' || typeof v.name !== 'string') {
          bad(i, `a ${key} with "family", "table" and "name"`, el)
        }
        const o = v as JObj
        const t = getTable(o.family as string, o.table as string, i, el)
        curUnknown = []
        const keyType = typeList(o.type)
        const dataType = key === 'map' && typeof o.map === 'string' ? typeList(o.map) : undefined
        const kh = keyType.map(typeHint)
        const s: {
          kind: 'set' | 'map' | 'meter'
          family: NftFamily
          table: string
          name: string
          handle: number
          keyType: string[]
          dataType?: string[]
          flags: string[]
          elements: NftSetElem[]
          timeout?: number
          gcInterval?: number
          size?: number
          policy?: string
          comment?: string
          loc: Loc
        } = {
          kind: key as 'set',
          family: t.family,
          table: t.name,
          name: o.name as string,
          handle: typeof o.handle === 'number' ? o.handle : 0,
          keyType,
          flags: strList(o.flags),
          elements: o.elem === undefined ? [] : setElems(o.elem, kh.length === 1 ? kh[0] : kh, dataType ? (dataType.length === 1 ? typeHint(dataType[0]!) : dataType.map(typeHint)) : undefined),
          loc: {file, line: lineOf(i), text: `${key} ${t.family} ${t.name} ${o.name as string}`},
        }
        if (dataType) s.dataType = dataType
        if (typeof o.timeout === 'number') s.timeout = o.timeout
        if (typeof o['gc-interval'] === 'number') s.gcInterval = o['gc-interval']
        if (typeof o.size === 'number') s.size = o.size
        if (typeof o.policy === 'string') s.policy = o.policy
        if (typeof o.comment === 'string') s.comment = o.comment
        if (o.stmt !== undefined) curUnknown.push(`set statements ${snippet(o.stmt)}`)
        for (const w of curUnknown) notModelled.push({file, line: lineOf(i), what: `nft ${key} ${t.family} ${t.name} ${s.name}: ${w}`})
        t.sets.set(s.name, s)
        break
      }
      default: {
        if (OBJECT_TYPES.has(key!) && isObj(v) && typeof v.family === 'string' && typeof v.table === 'string' && typeof v.name === 'string') {
          const t = getTable(v.family, v.table, i, el)
          const obj: NftObject = {
            type: key!,
            family: t.family,
            table: t.name,
            name: v.name,
            ...(typeof v.handle === 'number' ? {handle: v.handle} : {}),
            loc: {file, line: lineOf(i), text: `${key} ${t.family} ${t.name} ${v.name}`},
            json: v,
          }
          t.objects.push(obj)
          if (OBJECTS_NOT_MODELLED.has(key!)) notModelled.push({file, line: lineOf(i), what: `nft ${key} ${t.family} ${t.name} ${v.name}`})
        } else {
          notModelled.push({file, line: lineOf(i), what: `nft ${JSON.stringify(key)} object ${snippet(v)}`})
        }
      }
    }
  }

  // iptables-nft's tables: every rule there is also in iptables-nft-save
  let xtRules = 0
  for (const t of tableOrder) {
    if (!t.xtables) t.xtables = isXtablesLayout(t)
    if (!t.xtables) continue
    let bare = 0
    const names = new Set<string>()
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        ;(r as MRule).xtables = true
        xtRules++
        let hasBare = false
        for (const s of r.stmts) {
          if (s.kind === 'xt') {
            names.add(s.name)
            hasBare = true
          }
        }
        if (hasBare) bare++
      }
    }
    if (bare && !opts.iptablesSaveBeside) {
      notModelled.push({
        file,
        line: t.loc.line,
        what:
          `nft table ${t.family} ${t.name}: ${bare} rule${bare === 1 ? '' : 's'} made by iptables-nft hold xt expressions ` +
          `(${[...names].sort().join(', ')}) that nft -j prints without their parameters; without the iptables-save ` +
          `of this host these rules are not analysable`,
      })
    }
  }

  return {
    file,
    ruleCount,
    notModelled,
    ...(metainfo ? {metainfo} : {}),
    tables: tableOrder as NftTable[],
    xtRules,
    xtBareRules,
    fullyAnalysable: xtBareRules === 0 || opts.iptablesSaveBeside === true,
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
function isXtablesLayout(t: MTable): boolean {
  if (!XT_TABLES[t.family]?.has(t.name)) return false
  let bases = 0
  for (const c of t.chains.values()) {
    if (!c.base) continue
    bases++
    if (XT_CHAIN_OF_HOOK[c.base.hook] !== c.name) return false
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

function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

interface JsonError {
  offset: number
  expected: string
  found?: string
}

/** Finds the first syntax error in a text JSON.parse rejected (its messages differ between Node versions). */
export function locateJsonError(text: string): JsonError {
  let i = 0
  const n = text.length
  class Stop {
    constructor(readonly err: JsonError) {}
  }
  const fail = (expected: string): never => {
    if (i >= n) throw new Stop({offset: n, expected: `${expected} (the file ends here: truncated?)`})
    throw new Stop({offset: i, expected, found: text.slice(i, i + 20)})
  }
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 32 || c === 9 || c === 10 || c === 13) i++
      else break
    }
  }
  const str = (): void => {
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 34) {
        i++
        return
      }
      if (c < 32) fail('a closing quote or an escaped control character')
      if (c === 92) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2
            fail('four hex digits after \\u')
          }
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else {
          i++
          fail('a valid escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)')
        }
      } else i++
    }
    fail('a closing quote')
  }
  const value = (depth: number): void => {
    ws()
    if (depth > 10000) fail('less deeply nested JSON')
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        if (text[i] !== '"') fail('a property name in double quotes')
        str()
        ws()
        if (text[i] !== ':') fail("':' after the property name")
        i++
        value(depth + 1)
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === '}') {
          i++
          return
        }
        fail("',' or '}' in an object")
      }
    }
    if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (;;) {
        value(depth + 1)
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === ']') {
          i++
          return
        }
        fail("',' or ']' in an array")
      }
    }
    if (c === '"') return str()
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m && m[0] !== '' && m[0] !== '-') {
      i += m[0].length
      return
    }
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length
        return
      }
    }
    if (lit4(text, i)) {
      i = n
      fail('a JSON value')
    }
    fail('a JSON value (object, array, string, number, true, false or null)')
  }
  try {
    value(0)
    ws()
    if (i < n) fail('the end of the JSON document')
    return {offset: n, expected: 'valid JSON'}
  } catch (e) {
    if (e instanceof Stop) return e.err
    throw e
  }
}

function lit4(text: string, i: number): boolean {
  // a truncated literal such as `tru` at the end of the file
  const rest = text.slice(i)
  return rest.length < 5 && ['true', 'false', 'null'].some((l) => l.startsWith(rest) && rest.length > 0)
}
