// The typed model of `nft -j list ruleset` (libnftables-json(5)), and a printer back to nft's own text syntax.
// Owned by the nftables work (issue 7); the loader relies on ruleCount and notModelled.
//
// Shape: NftRuleset → tables (dump order) → chains (base chains carry type/hook/priority/policy) → rules →
// statements (NftStmt), whose operands are expressions (NftExpr). Both are discriminated unions on `kind`.
// Anything the parser does not type is kept verbatim (`kind: 'unknown'`, with the JSON) and listed in
// `notModelled` of the ruleset and of the rule.
//
// Values are immutable and may be shared (one `{kind: 'payload', protocol: 'ip', field: 'saddr'}` for every rule).
// The parser builds large parts on first use: a chain's `rules`, a rule's `stmts` and `loc`, a set's `elements`
// are getters (a trace through a 68k-rule kube-proxy ruleset touches a handful of rules). They are stable (the same
// object on every access), and toJSON of chains, rules and Locs includes them; `{...rule}` does not copy them.
import {formatIp, type IpAddr, type Prefix} from './ip.js'
import type {Loc, NotModelled} from './source.js'

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev'
export const NFT_FAMILIES: readonly NftFamily[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']

export interface NftRuleset {
  readonly file: string
  /** number of rules in the JSON (iptables-nft rules included: see xtRules) */
  readonly ruleCount: number
  readonly notModelled: readonly NotModelled[]
  /** the `metainfo` object nft prints first (nft version, JSON schema version) */
  readonly metainfo?: {readonly version?: string; readonly releaseName?: string; readonly jsonSchemaVersion?: number}
  /** tables in dump order */
  readonly tables: readonly NftTable[]
  /**
   * Rules that iptables-nft made (rule.xtables): they also appear in an nf_tables-backend `iptables-save`.
   * A consumer that has that iptables-save counts and evaluates them once, from the iptables view.
   */
  readonly xtRules: number
  /** rules holding at least one bare `xt` expression (nft -j prints no parameters for those) */
  readonly xtBareRules: number
  /**
   * false when xtBareRules > 0 and no iptables-save was said to be beside the JSON (parse option
   * `iptablesSaveBeside`): those rules cannot be evaluated from the JSON alone (a NotModelled entry says so).
   */
  readonly fullyAnalysable: boolean
  /**
   * Rules added with nft to a table of iptables-nft's that hold what iptables cannot express (a set, a map, a
   * concatenation...): iptables-nft-save prints them without it (1.8.9: `tcp dport { 80, 443 } drop` as
   * `-A INPUT -p tcp -j DROP`), so the iptables view of these rules is wrong. Only for tables evaluated from
   * iptables-save (table.xtables) with an iptables-save beside.
   */
  readonly misprintedByIptables?: readonly {readonly family: NftFamily; readonly table: string; readonly chain: string; readonly handle: number; readonly what: string; readonly loc: Loc}[]
}

export interface NftTable {
  readonly family: NftFamily
  readonly name: string
  /** undefined when the dump lists the table's contents without the table object (`nft -j list chain ...`) */
  readonly handle?: number
  /** e.g. ['dormant'] */
  readonly flags: readonly string[]
  readonly loc: Loc
  /** chains in dump order */
  readonly chains: ReadonlyMap<string, NftChain>
  /** named sets, maps and meters */
  readonly sets: ReadonlyMap<string, NftSet>
  /** stateful objects and flowtables (counter, quota, limit, ct helper, flowtable...) */
  readonly objects: readonly NftObject[]
  /**
   * The table is in iptables-nft's layout (an ip/ip6/arp/bridge table named like an xtables table whose base chains
   * carry the iptables built-in names), or holds xt expressions: iptables-nft-save lists its rules too.
   */
  readonly xtables: boolean
}

export type NftChainType = 'filter' | 'nat' | 'route'
export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress'

export interface NftBaseChain {
  readonly type: NftChainType
  readonly hook: NftHook
  /** numeric priority as the kernel orders hooks */
  readonly priority: number
  /** how nft prints it: `filter`, `mangle + 10`, `srcnat - 5`, `-500` (family- and hook-dependent names) */
  readonly priorityText: string
  readonly policy: 'accept' | 'drop'
  /**
   * netdev/inet ingress and egress devices when the JSON names them (nft >= 1.0.7 prints "dev"; 1.0.6 prints
   * none), else undefined: unknown, not "no device".
   */
  readonly devices?: readonly string[]
}

export interface NftChain {
  readonly family: NftFamily
  readonly table: string
  readonly name: string
  /** undefined when the dump lists rules without their chain object */
  readonly handle?: number
  readonly loc: Loc
  /** present for base chains */
  readonly base?: NftBaseChain
  readonly comment?: string
  readonly rules: NftRule[]
}

export interface NftRule {
  readonly family: NftFamily
  readonly table: string
  readonly chain: string
  /** the kernel's rule handle: the stable locator (`nft delete rule FAMILY TABLE CHAIN handle N`) */
  readonly handle: number
  /** 1-based position in its chain */
  readonly index: number
  readonly comment?: string
  readonly stmts: readonly NftStmt[]
  /**
   * file: the JSON file; line: the line of the JSON the rule is printed on (1 for nft's one-line output);
   * text: the rule in nft's text syntax (formatNftRule), computed on first access
   */
  readonly loc: Loc
  /** made by iptables-nft (see NftTable.xtables); evaluate from iptables-save when one is beside */
  readonly xtables: boolean
  /** what in this rule is not modelled (unknown expressions, bare xt statements); empty when fully typed */
  readonly notModelled: readonly string[]
}

export interface NftSet {
  readonly kind: 'set' | 'map' | 'meter'
  readonly family: NftFamily
  readonly table: string
  readonly name: string
  readonly handle: number
  /** key datatype, one entry per concatenated component: ['ipv4_addr', 'inet_proto', 'inet_service'] */
  readonly keyType: readonly string[]
  /** maps: the value datatype(s), e.g. ['verdict'] or ['ipv4_addr', 'inet_service'] */
  readonly dataType?: readonly string[]
  /** e.g. ['interval'], ['constant'], ['timeout'] */
  readonly flags: readonly string[]
  readonly elements: readonly NftSetElem[]
  /** seconds */
  readonly timeout?: number
  readonly gcInterval?: number
  readonly size?: number
  readonly policy?: string
  readonly comment?: string
  readonly loc: Loc
}

export interface NftSetElem {
  readonly key: NftExpr
  /** maps and verdict maps */
  readonly value?: NftExpr
  /** seconds */
  readonly timeout?: number
  readonly expires?: number
  readonly comment?: string
}

/** Named stateful objects and flowtables, kept as printed (counter, quota, limit, ct helper, flowtable...). */
export interface NftObject {
  readonly type: string
  readonly family: NftFamily
  readonly table: string
  readonly name: string
  readonly handle?: number
  readonly loc: Loc
  readonly json: unknown
}

// ---- statements -------------------------------------------------------------------------------------------

export type NftRelOp = '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in'

export type NftVerdict =
  | {readonly kind: 'accept' | 'drop' | 'continue' | 'return' | 'queue' | 'break'}
  | {readonly kind: 'jump' | 'goto'; readonly target: string}

export type NftNatFlag = 'random' | 'fully-random' | 'persistent' | 'netmap'

export type NftStmt =
  /** `left op right`; op 'in' is nft's implicit operator (flags: `ct state established,related`) */
  | {readonly kind: 'match'; readonly op: NftRelOp; readonly left: NftExpr; readonly right: NftExpr}
  | {readonly kind: 'verdict'; readonly verdict: NftVerdict}
  /** anonymous counter; packets/bytes absent in stateless output */
  | {readonly kind: 'counter'; readonly packets?: number; readonly bytes?: number}
  /** reference to a named object: `counter name "x"`, `limit name "x"`, `quota name "x"`, `ct helper "ftp"`... */
  | {readonly kind: 'objref'; readonly type: string; readonly name: string}
  | {readonly kind: 'log'; readonly prefix?: string; readonly level?: string; readonly group?: number; readonly snaplen?: number; readonly queueThreshold?: number; readonly flags: readonly string[]}
  /** unit 'packets', or bytes/kbytes/mbytes for byte rates; inv: `limit rate over` */
  | {readonly kind: 'limit'; readonly rate: number; readonly per: string; readonly burst: number; readonly unit: string; readonly burstUnit?: string; readonly inv: boolean}
  /** type absent: the family's default (icmp/icmpv6/icmpx port-unreachable); code: e.g. 'port-unreachable' */
  | {readonly kind: 'reject'; readonly type?: 'tcp reset' | 'icmpx' | 'icmp' | 'icmpv6'; readonly code?: string | number}
  /** `KEY set VALUE`: meta mark, ct mark, payload fields (`meta mark set ct mark`, `ct mark set meta mark | 0x1`) */
  | {readonly kind: 'mangle'; readonly key: NftExpr; readonly value: NftExpr}
  | {readonly kind: 'notrack'}
  /** dnat/snat/masquerade/redirect; addr/port may be values, ranges or maps (`dnat to numgen inc mod 2 map {...}`) */
  | {readonly kind: 'nat'; readonly type: 'dnat' | 'snat' | 'masquerade' | 'redirect'; readonly family?: 'ip' | 'ip6'; readonly addr?: NftExpr; readonly port?: NftExpr; readonly flags: readonly NftNatFlag[]; readonly typeFlags: readonly string[]}
  | {readonly kind: 'queue'; readonly num?: NftExpr; readonly flags: readonly string[]}
  /** `KEY vmap DATA`: DATA is an anonymous set of mappings to verdicts or a named verdict map (`setref`) */
  | {readonly kind: 'vmap'; readonly key: NftExpr; readonly data: NftExpr}
  /** dynamic set update: `update @set { ip saddr }` */
  | {readonly kind: 'dynset'; readonly op: string; readonly elem: NftExpr; readonly set: string; readonly stmts: readonly NftStmt[]}
  /** iptables-nft compat expression: nft -j prints only its name, never its parameters */
  | {readonly kind: 'xt'; readonly xtType: 'match' | 'target' | 'watcher'; readonly name: string}
  /** valid but not modelled: kept verbatim (the JSON object); `name` is its key, e.g. "synproxy" */
  | {readonly kind: 'unknown'; readonly name: string; readonly json: unknown}

// ---- expressions ------------------------------------------------------------------------------------------

export type NftExpr =
  /** `ip saddr`, `tcp dport`, `th dport`, `arp daddr ip`, `ether type`, `vlan id` */
  | {readonly kind: 'payload'; readonly protocol: string; readonly field: string}
  /** `@nh,16,16` */
  | {readonly kind: 'rawpayload'; readonly base: string; readonly offset: number; readonly len: number}
  /** `meta l4proto`, `iif`, `oifname`, `meta mark` */
  | {readonly kind: 'meta'; readonly key: string}
  /** `ct state`, `ct mark`, `ct original ip saddr` (key 'ip saddr', dir 'original') */
  | {readonly kind: 'ct'; readonly key: string; readonly dir?: 'original' | 'reply'; readonly family?: string}
  /** `fib saddr . iif oif`: flags are the lookup inputs, result what it yields */
  | {readonly kind: 'fib'; readonly result: string; readonly flags: readonly string[]}
  | {readonly kind: 'numgen'; readonly mode: 'inc' | 'random'; readonly mod: number; readonly offset: number}
  | {readonly kind: 'jhash'; readonly mod: number; readonly offset: number; readonly seed?: number; readonly expr: NftExpr}
  | {readonly kind: 'symhash'; readonly mod: number; readonly offset: number}
  | {readonly kind: 'binop'; readonly op: '&' | '|' | '^' | '<<' | '>>'; readonly left: NftExpr; readonly right: NftExpr}
  | {readonly kind: 'concat'; readonly parts: readonly NftExpr[]}
  /** `KEY map DATA` used as a value (nat address, mangle value) */
  | {readonly kind: 'map'; readonly key: NftExpr; readonly data: NftExpr}
  /** anonymous set `{ a, b-c, d/8 }`, or of mappings `{ 0 : x, 1 : y }` */
  | {readonly kind: 'set'; readonly elements: readonly NftSetElem[]}
  /** `@name`: a named set or map */
  | {readonly kind: 'setref'; readonly name: string}
  | {readonly kind: 'addr'; readonly addr: IpAddr}
  | {readonly kind: 'prefix'; readonly prefix: Prefix}
  /**
   * a prefix of an integer field (nft prints `ct mark 0x80000000/1` for `ct mark & 0x80000000 == 0x80000000`):
   * the `len` most significant bits of the field equal those of `value`
   */
  | {readonly kind: 'intprefix'; readonly value: number; readonly len: number}
  | {readonly kind: 'range'; readonly from: NftExpr; readonly to: NftExpr}
  | {readonly kind: 'number'; readonly value: number}
  /** integers nft prints as a hex string because they do not fit 64 bits */
  | {readonly kind: 'bignum'; readonly value: bigint}
  /** symbolic constants and names: `tcp`, `new`, `local`, `echo-request`, interface names */
  | {readonly kind: 'string'; readonly value: string}
  | {readonly kind: 'bool'; readonly value: boolean}
  /** a list of flag values: `established,related`, `fin,syn,rst,ack` */
  | {readonly kind: 'list'; readonly items: readonly NftExpr[]}
  | {readonly kind: 'verdict'; readonly verdict: NftVerdict}
  /** `*` (catch-all element) */
  | {readonly kind: 'wildcard'}
  | {readonly kind: 'unknown'; readonly name: string; readonly json: unknown}

// ---- priorities -------------------------------------------------------------------------------------------

// Standard priority names, as nft prints them (nftables src/rule.c std_prios / bridge_std_prios; values from
// include/uapi/linux/netfilter_ipv4.h nf_ip_hook_priorities and netfilter_bridge.h nf_br_hook_priorities).
const STD_PRIOS: ReadonlyArray<readonly [number, string]> = [
  [-300, 'raw'], // NF_IP_PRI_RAW
  [-150, 'mangle'], // NF_IP_PRI_MANGLE
  [-100, 'dstnat'], // NF_IP_PRI_NAT_DST
  [0, 'filter'], // NF_IP_PRI_FILTER
  [50, 'security'], // NF_IP_PRI_SECURITY
  [100, 'srcnat'], // NF_IP_PRI_NAT_SRC
]
const BRIDGE_STD_PRIOS: ReadonlyArray<readonly [number, string]> = [
  [-300, 'dstnat'], // NF_BR_PRI_NAT_DST_BRIDGED
  [-200, 'filter'], // NF_BR_PRI_FILTER_BRIDGED
  [100, 'out'], // NF_BR_PRI_NAT_DST_OTHER
  [300, 'srcnat'], // NF_BR_PRI_NAT_SRC
]

/** Whether nft may print standard priority `std` by name for this family and hook (std_prio_family_hook_compat). */
function stdPrioCompat(std: number, family: NftFamily, hook: string): boolean {
  if (family === 'bridge') {
    if (std === -300) return hook === 'prerouting'
    if (std === -200) return true
    if (std === 100) return hook === 'output'
    if (std === 300) return hook === 'postrouting'
    return false
  }
  const ipish = family === 'inet' || family === 'ip' || family === 'ip6'
  switch (std) {
    case 0:
      return ipish || family === 'arp' || family === 'netdev'
    case -300:
    case -150:
    case 50:
      return ipish
    case -100:
      return ipish && hook === 'prerouting'
    case 100:
      return ipish && hook === 'postrouting'
  }
  return false
}

/** nft's text for a base chain priority: a standard name within ±10 (`mangle + 10`), else the number. */
export function formatNftPriority(priority: number, family: NftFamily, hook: string): string {
  const table = family === 'bridge' ? BRIDGE_STD_PRIOS : STD_PRIOS
  for (const [std, name] of table) {
    if (Math.abs(priority - std) <= 10) {
      if (!stdPrioCompat(std, family, hook)) break
      const off = priority - std
      return off > 0 ? `${name} + ${off}` : off < 0 ? `${name} - ${-off}` : name
    }
  }
  return String(priority)
}

/** Resolves a priority as written in nft syntax (`srcnat`, `mangle + 10`, `-500`) to its number. */
export function parseNftPriority(text: string, family: NftFamily, hook: string): number | undefined {
  const m = /^\s*(-?\d+|[a-z]+)\s*(?:([+-])\s*(\d+))?\s*$/.exec(text)
  if (!m) return undefined
  let base: number | undefined
  if (/^-?\d+$/.test(m[1]!)) base = Number(m[1])
  else {
    const table = family === 'bridge' ? BRIDGE_STD_PRIOS : STD_PRIOS
    const hit = table.find(([v, n]) => n === m[1] && stdPrioCompat(v, family, hook))
    base = hit?.[0]
  }
  if (base === undefined) return undefined
  return m[2] === undefined ? base : m[2] === '+' ? base + Number(m[3]) : base - Number(m[3])
}

// ---- printer: model → nft text syntax ---------------------------------------------------------------------

/** How a constant prints, decided by what it is compared with or assigned to. */
export type NftPrintHint = 'mark' | 'ifname' | 'string' | undefined
type Hint = NftPrintHint

const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iifgroup', 'oifgroup'])
const IFNAME_META = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname', 'ibriport', 'obriport', 'ibridgename', 'obridgename', 'sdifname'])
/** datatypes nft prints with an explicit `==` (bitmask types: must_print_eq_op) */
const BITMASK_LEFT = new Set(['ct state', 'ct status', 'tcp flags', 'ct event'])

function hintOf(e: NftExpr): Hint {
  switch (e.kind) {
    case 'meta':
      if (e.key === 'mark') return 'mark'
      if (IFNAME_META.has(e.key)) return 'ifname'
      return undefined
    case 'ct':
      if (e.key === 'mark') return 'mark'
      if (e.key === 'helper') return 'string'
      return undefined
    case 'binop':
      return hintOf(e.left)
    default:
      return undefined
  }
}

function leftName(e: NftExpr): string | undefined {
  if (e.kind === 'ct') return `ct ${e.key}`
  if (e.kind === 'payload') return `${e.protocol} ${e.field}`
  if (e.kind === 'binop') return leftName(e.left)
  return undefined
}

/** An address as nft prints it (inet_ntop: IPv4-mapped and -compatible IPv6 end in a dotted quad). */
export function formatNftIp(a: IpAddr): string {
  if (a.family === 6 && a.value >> 32n === 0xffffn) return '::ffff:' + formatIp({family: 4, value: a.value & 0xffffffffn})
  if (a.family === 6 && a.value >> 32n === 0n && a.value > 1n) return '::' + formatIp({family: 4, value: a.value})
  return formatIp(a)
}

function hex8(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0')
}

function quote(s: string): string {
  return `"${s}"`
}

export function formatNftVerdict(v: NftVerdict): string {
  return v.kind === 'jump' || v.kind === 'goto' ? `${v.kind} ${v.target}` : v.kind
}

const BINOP_PREC: Record<string, number> = {'<<': 1, '>>': 1, '&': 2, '^': 3, '|': 4}

/** Prints an expression in nft syntax; `hint` tells how constants print (marks in hex, interface names quoted). */
export function formatNftExpr(e: NftExpr, hint?: Hint, v6InPort?: boolean): string {
  switch (e.kind) {
    case 'payload':
      return `${e.protocol} ${e.field}`
    case 'rawpayload':
      return `@${e.base},${e.offset},${e.len}`
    case 'meta':
      return UNQUALIFIED_META.has(e.key) ? e.key : `meta ${e.key}`
    case 'ct':
      return e.dir ? `ct ${e.dir} ${e.key}` : `ct ${e.key}`
    case 'fib':
      return `fib ${e.flags.join(' . ')} ${e.result}`
    case 'numgen':
      return `numgen ${e.mode} mod ${e.mod}` + (e.offset ? ` offset ${e.offset}` : '')
    case 'jhash':
      return (
        `jhash ${formatNftExpr(e.expr)} mod ${e.mod}` +
        (e.seed !== undefined ? ` seed 0x${e.seed.toString(16)}` : '') +
        (e.offset ? ` offset ${e.offset}` : '')
      )
    case 'symhash':
      return `symhash mod ${e.mod}` + (e.offset ? ` offset ${e.offset}` : '')
    case 'binop': {
      const h = hint ?? hintOf(e.left)
      const arg = (a: NftExpr): string => {
        const s = formatNftExpr(a, h)
        return a.kind === 'binop' && BINOP_PREC[e.op]! < BINOP_PREC[a.op]! ? `(${s})` : s
      }
      if (e.right.kind === 'list') return `${arg(e.left)} ${e.op} (${e.right.items.map((i) => formatNftExpr(i, h)).join(` | `)})`
      return `${arg(e.left)} ${e.op} ${arg(e.right)}`
    }
    case 'concat':
      return e.parts.map((p) => formatNftExpr(p, hint)).join(' . ')
    case 'map':
      // the keys print as the key expression's type, the values as what the map sets (a mark in hex)
      if (e.data.kind === 'set') {
        const kh = hintOf(e.key)
        return `${formatNftExpr(e.key)} map { ${e.data.elements.map((el) => formatNftSetElem(el, kh, hint)).join(', ')} }`
      }
      return `${formatNftExpr(e.key)} map ${formatNftExpr(e.data, hint)}`
    case 'set':
      return `{ ${e.elements.map((el) => formatNftSetElem(el, hint)).join(', ')} }`
    case 'setref':
      return `@${e.name}`
    case 'addr':
      return v6InPort && e.addr.family === 6 ? `[${formatNftIp(e.addr)}]` : formatNftIp(e.addr)
    case 'prefix':
      return `${formatNftIp(e.prefix)}/${e.prefix.len}`
    case 'intprefix':
      return `${hint === 'mark' ? hex8(e.value) : String(e.value)}/${e.len}`
    case 'range':
      return `${formatNftExpr(e.from, hint, v6InPort)}-${formatNftExpr(e.to, hint, v6InPort)}`
    case 'number':
      return hint === 'mark' ? hex8(e.value) : String(e.value)
    case 'bignum':
      return '0x' + e.value.toString(16)
    case 'string':
      return hint === 'ifname' || hint === 'string' ? quote(e.value) : e.value
    case 'bool':
      return e.value ? 'exists' : 'missing'
    case 'list':
      return e.items.map((i) => formatNftExpr(i, hint)).join(',')
    case 'verdict':
      return formatNftVerdict(e.verdict)
    case 'wildcard':
      return '*'
    case 'unknown':
      return `${e.name} ${JSON.stringify(e.json)}`
  }
}

/** Prints one set element: `key`, `key : value`, with timeout/comment when present. */
export function formatNftSetElem(el: NftSetElem, keyHint?: Hint, valueHint?: Hint): string {
  let s = formatNftExpr(el.key, keyHint)
  if (el.timeout !== undefined) s += ` timeout ${formatNftTime(el.timeout)}`
  if (el.expires !== undefined) s += ` expires ${formatNftTime(el.expires)}`
  if (el.comment !== undefined) s += ` comment ${quote(el.comment)}`
  if (el.value) s += ` : ${formatNftExpr(el.value, valueHint)}`
  return s
}

/** Seconds as nft prints durations: `1h`, `10m`, `1d2h3m4s`. */
export function formatNftTime(seconds: number): string {
  if (seconds === 0) return '0s'
  let s = seconds
  let out = ''
  for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']] as const) {
    if (s >= n) {
      out += `${Math.floor(s / n)}${u}`
      s %= n
    }
  }
  return out
}

function formatMatch(op: NftRelOp, left: NftExpr, right: NftExpr): string {
  const hint = hintOf(left)
  // `tcp flags & (fin | syn | rst | ack) == syn` is printed by nft as a flag comparison `tcp flags syn / fin,syn,rst,ack`
  if (left.kind === 'binop' && left.op === '&' && (left.right.kind === 'list' || left.right.kind === 'string') && (op === '==' || op === '!=')) {
    const mask = left.right.kind === 'list' ? left.right.items.map((i) => formatNftExpr(i)).join(',') : formatNftExpr(left.right)
    return `${formatNftExpr(left.left)} ${op === '!=' ? '!= ' : ''}${formatNftExpr(right, hint)} / ${mask}`
  }
  const l = formatNftExpr(left, hint)
  const r = formatNftExpr(right, hint)
  if (op === 'in') return `${l} ${r}`
  if (op === '==') {
    const name = leftName(left)
    const explicit = left.kind === 'binop' || (name !== undefined && BITMASK_LEFT.has(name) && right.kind !== 'set' && right.kind !== 'setref')
    return explicit ? `${l} == ${r}` : `${l} ${r}`
  }
  return `${l} ${op} ${r}`
}

function formatNat(s: Extract<NftStmt, {kind: 'nat'}>): string {
  let out: string = s.type
  if (s.addr || s.port) {
    if (s.family) out += ` ${s.family}`
    if (s.typeFlags.includes('prefix')) out += ' prefix'
    out += ' to'
  }
  if (s.addr) out += ' ' + formatNftExpr(s.addr, undefined, s.port !== undefined && (s.addr.kind === 'addr' || s.addr.kind === 'range'))
  if (s.port) out += (s.addr ? '' : ' ') + ':' + formatNftExpr(s.port)
  if (s.flags.length) out += ' ' + s.flags.join(',')
  return out
}

function formatLog(s: Extract<NftStmt, {kind: 'log'}>): string {
  let out = 'log'
  if (s.prefix !== undefined) out += ` prefix ${quote(s.prefix)}`
  if (s.group !== undefined) out += ` group ${s.group}`
  if (s.snaplen !== undefined) out += ` snaplen ${s.snaplen}`
  if (s.queueThreshold !== undefined) out += ` queue-threshold ${s.queueThreshold}`
  if (s.level !== undefined && s.level !== 'warn') out += ` level ${s.level}`
  const f = new Set(s.flags)
  if (f.has('all')) out += ' flags all'
  else {
    if (f.has('tcp sequence') || f.has('tcp options')) out += ' flags tcp ' + [f.has('tcp sequence') ? 'sequence' : '', f.has('tcp options') ? 'options' : ''].filter(Boolean).join(',')
    if (f.has('ip options')) out += ' flags ip options'
    if (f.has('skuid')) out += ' flags skuid'
    if (f.has('ether')) out += ' flags ether'
  }
  return out
}

/** Prints one statement; `family` decides how a default `reject` prints. */
export function formatNftStmt(s: NftStmt, family: NftFamily = 'inet'): string {
  switch (s.kind) {
    case 'match':
      return formatMatch(s.op, s.left, s.right)
    case 'verdict':
      return formatNftVerdict(s.verdict)
    case 'counter':
      return s.packets === undefined ? 'counter' : `counter packets ${s.packets} bytes ${s.bytes ?? 0}`
    case 'objref':
      return s.type === 'ct helper' || s.type === 'ct timeout' || s.type === 'ct expectation' ? `${s.type} set ${quote(s.name)}` : `${s.type} name ${quote(s.name)}`
    case 'log':
      return formatLog(s)
    case 'limit': {
      const over = s.inv ? 'over ' : ''
      if (s.unit === 'packets') return `limit rate ${over}${s.rate}/${s.per}` + (s.burst && s.burst !== 5 ? ` burst ${s.burst} packets` : '')
      return `limit rate ${over}${s.rate} ${s.unit}/${s.per}` + (s.burst ? ` burst ${s.burst} ${s.burstUnit ?? 'bytes'}` : '')
    }
    case 'reject': {
      if (s.type === undefined) return 'reject'
      if (s.type === 'tcp reset') return 'reject with tcp reset'
      const code = s.code ?? 'port-unreachable'
      // nft omits the family's default: icmpx port-unreachable; icmp(v6) port-unreachable in ip(6) tables
      if (code === 'port-unreachable' && (s.type === 'icmpx' || (s.type === 'icmp' && family === 'ip') || (s.type === 'icmpv6' && family === 'ip6'))) return 'reject'
      return `reject with ${s.type} ${code}`
    }
    case 'mangle':
      return `${formatNftExpr(s.key)} set ${formatNftExpr(s.value, hintOf(s.key))}`
    case 'notrack':
      return 'notrack'
    case 'nat':
      return formatNat(s)
    case 'queue': {
      let out = 'queue'
      if (s.flags.length) out += ' flags ' + s.flags.join(',')
      return out + ' to ' + (s.num ? formatNftExpr(s.num) : '0')
    }
    case 'vmap':
      return `${formatNftExpr(s.key)} vmap ${formatNftExpr(s.data, hintOf(s.key))}`
    case 'dynset':
      return `${s.op} @${s.set} { ${formatNftExpr(s.elem)}${s.stmts.map((x) => ' ' + formatNftStmt(x, family)).join('')} }`
    case 'xt':
      return `xt ${s.xtType} ${s.name}`
    case 'unknown':
      return typeof s.json === 'string' ? s.json : `${s.name} ${JSON.stringify((s.json as Record<string, unknown>)?.[s.name] ?? s.json)}`
  }
}

/** The rule in nft's text syntax, as `nft list ruleset` prints it inside its chain (no handle). */
export function formatNftRule(r: Pick<NftRule, 'family' | 'stmts' | 'comment'>): string {
  let out = r.stmts.map((s) => formatNftStmt(s, r.family)).join(' ')
  if (r.comment !== undefined) out += ` comment ${quote(r.comment)}`
  return out
}

/** A base chain's declaration line: `type filter hook input priority filter; policy drop;`. */
export function formatNftBaseChain(b: NftBaseChain): string {
  let dev = ''
  if (b.devices?.length === 1) dev = ` device ${quote(b.devices[0]!)}`
  else if (b.devices && b.devices.length > 1) dev = ` devices = { ${b.devices.join(', ')} }`
  return `type ${b.type} hook ${b.hook}${dev} priority ${b.priorityText}; policy ${b.policy};`
}

function typeHint(t: string | undefined): Hint {
  if (t === 'ifname') return 'ifname'
  if (t === 'mark') return 'mark'
  return undefined
}

/** A named set or map as `nft list ruleset` declares it (one line per property, elements on one line). */
export function formatNftSet(s: NftSet, indent = '\t'): string {
  const i2 = indent + '\t'
  const lines = [`${indent}${s.kind} ${s.name} {`]
  lines.push(`${i2}type ${s.keyType.join(' . ')}${s.dataType ? ' : ' + s.dataType.join(' . ') : ''}`)
  if (s.policy !== undefined) lines.push(`${i2}policy ${s.policy}`)
  if (s.size !== undefined) lines.push(`${i2}size ${s.size}`)
  if (s.flags.length) lines.push(`${i2}flags ${s.flags.join(',')}`)
  if (s.timeout !== undefined) lines.push(`${i2}timeout ${formatNftTime(s.timeout)}`)
  if (s.gcInterval !== undefined) lines.push(`${i2}gc-interval ${formatNftTime(s.gcInterval)}`)
  if (s.comment !== undefined) lines.push(`${i2}comment ${quote(s.comment)}`)
  if (s.elements.length) {
    const kh = s.keyType.length === 1 ? typeHint(s.keyType[0]) : undefined
    const vh = s.dataType?.length === 1 ? typeHint(s.dataType[0]) : undefined
    const concatHints = s.keyType.length > 1 ? s.keyType.map(typeHint) : undefined
    const el = (e: NftSetElem): string => {
      if (concatHints && e.key.kind === 'concat') {
        const key = e.key.parts.map((p, i) => formatNftExpr(p, concatHints[i])).join(' . ')
        return formatNftSetElem({...e, key: {kind: 'string', value: key}}, undefined, vh)
      }
      return formatNftSetElem(e, kh, vh)
    }
    lines.push(`${i2}elements = { ${s.elements.map(el).join(', ')} }`)
  }
  lines.push(`${indent}}`)
  return lines.join('\n')
}

/**
 * The whole ruleset in nft syntax, loadable with `nft -f` (a base chain's devices are printed only when the JSON
 * named them). Tables, sets and chains keep their dump order; rules print with formatNftRule.
 */
export function formatNftRuleset(rs: Pick<NftRuleset, 'tables'>): string {
  const out: string[] = []
  for (const t of rs.tables) {
    const blocks: string[] = []
    if (t.flags.length) blocks.push(`\tflags ${t.flags.join(',')}`)
    for (const s of t.sets.values()) blocks.push(formatNftSet(s))
    for (const c of t.chains.values()) {
      const lines = [`\tchain ${c.name} {`]
      if (c.base) lines.push(`\t\t${formatNftBaseChain(c.base)}`)
      if (c.comment !== undefined) lines.push(`\t\tcomment ${quote(c.comment)}`)
      for (const r of c.rules) lines.push(`\t\t${formatNftRule(r)}`)
      lines.push('\t}')
      blocks.push(lines.join('\n'))
    }
    out.push(`table ${t.family} ${t.name} {\n${blocks.join('\n\n')}\n}`)
  }
  return out.join('\n') + (out.length ? '\n' : '')
}

/** `nft add rule ...` for a rule, e.g. to show a fix; `position` inserts before/after a handle. */
export function nftRuleCommand(r: Pick<NftRule, 'family' | 'table' | 'chain' | 'stmts' | 'comment'>): string {
  return `nft add rule ${r.family} ${r.table} ${r.chain} ${formatNftRule(r)}`
}
