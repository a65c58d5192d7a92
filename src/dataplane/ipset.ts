// `-m set --match-set NAME FLAGS` decided from the host's ipset-save.txt, as the kernel does:
//
// - xt_set.c match_set: the match is true when ip_set_test says so, inverted by `!`.
// - ip_set_core.c ip_set_test: a match with fewer src/dst flags than the set has dimensions never matches; nor
//   does a packet of another family than the set's (bitmap:port, hash:mac and list:set have none). With
//   --return-nomatch, a set type that supports `nomatch` (the hash types with a net dimension) reports its
//   plain entries as no match and its nomatch entries as a match.
// - ip_set_getport.c: the port dimension is the protocol and the port: tcp/udp/sctp/udplite ports, icmp and
//   icmpv6 (type << 8) | code, any other protocol port 0. bitmap:port tests TCP and UDP packets only.
// - ip_set_hash_gen.h mtype_test_cidrs: a type with net dimensions looks up the prefix lengths its entries use,
//   most specific first (the first net dimension, then the second); the first entry found decides, and a
//   `nomatch` entry means no match (less specific entries are not tried).
// - hash:ip / bitmap:ip `netmask N`: the packet's address is masked before the lookup. hash:ip,mark: the mark
//   is masked by `markmask`. hash:net,iface: the input (src) or output (dst) interface; `physdev:` entries
//   are bridge ports (an iptables match never looks them up), `wildcard` entries match by name prefix.
// - bitmap:ip,mac: an address whose entry has no MAC yet matches (the kernel stores the packet's source MAC);
//   an entry with a MAC depends on the link layer, which is not modelled.
// - list:set (ip_set_list_set.c list_set_ktest): the members are tested in order with the same flags, each
//   with its own dimension and family checks and --return-nomatch; the first that matches decides.
// - `--packets-gt` etc. compare the matched entry's counters, which change with every packet: not modelled
//   (a packet no entry holds still does not match). `! --update-counters` changes no verdict.
import {formatIp, type IpAddr} from '../model/ip.js'
import type {IpSet, IpsetEntry, IpsetPart, IpsetSnapshot} from '../model/ipset.js'
import type {Match} from '../model/iptables.js'
import {PROTO, type Packet} from './packet.js'

export type SetMatch = Extract<Match, {kind: 'set'}>

export interface SetVerdict {
  readonly decision: 'match' | 'nomatch' | 'assumed'
  /** what was looked up and what decided, e.g. `KUBE-CLUSTER-IP (hash:ip,port) holds 10.96.0.10,udp:53 (ipset-save.txt:7)` */
  readonly why: string
}

/** The interfaces the hook knows (undefined: the hook has none); `(unknown)` is the rule engine's unknown input interface. */
export interface SetIfaces {
  readonly iif?: string
  readonly oif?: string
}

const UNKNOWN_IFACE = '(unknown)'

/** One dimension of the packet as a set type reads it; 'none': the kernel cannot read it (no match). */
type Value =
  | {readonly kind: 'addr'; readonly ip: IpAddr}
  | {readonly kind: 'port'; readonly proto: number; readonly port: number}
  | {readonly kind: 'mark'; readonly mark: number}
  | {readonly kind: 'iface'; readonly name: string}
  | {readonly kind: 'unknown'; readonly what: string}
  | {readonly kind: 'none'; readonly what: string}

interface Lookup {
  /** true: found (entry set); false: no entry; 'unknown': the snapshot cannot tell */
  readonly hit: boolean | 'unknown'
  readonly entry?: IpsetEntry
  /** the entry was a `nomatch` one */
  readonly nomatch?: boolean
  readonly set: IpSet
  readonly key: string
  readonly why?: string
}

const NAMES: Readonly<Record<number, string>> = {1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp', 132: 'sctp', 136: 'udplite'}

function protoName(proto: number): string {
  return NAMES[proto] ?? String(proto)
}

function fmtValue(v: Value): string {
  switch (v.kind) {
    case 'addr':
      return formatIp(v.ip)
    case 'port':
      return v.proto === 1 || v.proto === 58 ? `${protoName(v.proto)}:${v.port >> 8}/${v.port & 0xff}` : `${protoName(v.proto)}:${v.port}`
    case 'mark':
      return `0x${v.mark.toString(16)}`
    case 'iface':
      return v.name
    default:
      return `(${v.what})`
  }
}

/** The packet's value for one dimension of `set`, read in direction `dir`. */
function valueOf(set: IpSet, dim: string, dir: 'src' | 'dst', p: Packet, ifs: SetIfaces): Value {
  switch (dim) {
    case 'ip':
    case 'net':
      return {kind: 'addr', ip: dir === 'src' ? p.src : p.dst}
    case 'port': {
      const proto = p.proto
      if (proto <= 0) return {kind: 'none', what: 'protocol 0'}
      if (set.type === 'bitmap:port' && proto !== PROTO.tcp && proto !== PROTO.udp) return {kind: 'none', what: `a ${protoName(proto)} packet (bitmap:port tests TCP and UDP only)`}
      if (proto === 6 || proto === 17 || proto === 132 || proto === 136) {
        const port = dir === 'src' ? p.sport : p.dport
        return port === undefined ? {kind: 'unknown', what: `${dir} port`} : {kind: 'port', proto, port}
      }
      if (proto === PROTO.icmp || proto === PROTO.icmpv6) {
        if (p.icmpType === undefined || p.icmpCode === undefined) return {kind: 'unknown', what: 'icmp type'}
        return {kind: 'port', proto, port: (p.icmpType << 8) | p.icmpCode}
      }
      return {kind: 'port', proto, port: 0}
    }
    case 'mark':
      return {kind: 'mark', mark: (p.mark & (set.markmask ?? 0xffffffff)) >>> 0}
    case 'iface': {
      const name = dir === 'src' ? ifs.iif : ifs.oif
      if (name === undefined) return {kind: 'none', what: `no ${dir === 'src' ? 'input' : 'output'} interface at this hook`}
      if (name === UNKNOWN_IFACE) return {kind: 'unknown', what: 'input interface'}
      return {kind: 'iface', name}
    }
    case 'mac':
      return {kind: 'unknown', what: `${dir === 'src' ? 'source' : 'destination'} MAC address (link layer not modelled)`}
    default:
      return {kind: 'unknown', what: dim}
  }
}

function maskAddr(ip: IpAddr, len: number | undefined): IpAddr {
  if (len === undefined) return ip
  const total = ip.family === 4 ? 32 : 128
  if (len >= total) return ip
  const m = ((1n << BigInt(len)) - 1n) << BigInt(total - len)
  return {family: ip.family, value: ip.value & m}
}

/** Does entry part `x` hold value `v`? A net part answers with its prefix length (-1: no). */
function partHolds(set: IpSet, x: IpsetPart, v: Value, wildcard: boolean): boolean | number | 'unknown' {
  if (v.kind === 'unknown') return 'unknown'
  if (v.kind === 'none') return false
  switch (x.kind) {
    case 'ip': {
      if (v.kind !== 'addr' || v.ip.family !== x.from.family) return false
      const a = maskAddr(v.ip, set.netmask)
      return a.value >= x.from.value && a.value <= x.to.value
    }
    case 'net': {
      if (v.kind !== 'addr' || v.ip.family !== x.prefix.family) return -1
      return maskAddr(v.ip, x.prefix.len).value === x.prefix.value ? x.prefix.len : -1
    }
    case 'port':
      if (v.kind !== 'port') return false
      if (set.type === 'bitmap:port') return v.port >= x.from && v.port <= x.to
      if (x.proto === undefined) return 'unknown'
      return x.proto === v.proto && v.port >= x.from && v.port <= x.to
    case 'mark':
      return v.kind === 'mark' && ((x.value & (set.markmask ?? 0xffffffff)) >>> 0) === v.mark
    case 'iface':
      if (v.kind !== 'iface' || x.physdev) return false
      return wildcard ? v.name.startsWith(x.name) : v.name === x.name
    case 'mac':
    case 'set':
      return 'unknown'
  }
}

/** Entries by lookup key, per prefix-length combination (most specific first), and the ones looked at one by one. */
interface Index {
  readonly lens: readonly (readonly number[])[]
  readonly map: Map<string, IpsetEntry>
  readonly linear: readonly IpsetEntry[]
}

const indexes = new WeakMap<IpSet, Index>()
const EXPAND = 256

function keyOfValues(set: IpSet, vals: readonly Value[], lens: readonly number[]): string | undefined {
  let key = ''
  let n = 0
  for (let k = 0; k < vals.length; k++) {
    const v = vals[k]!
    const dim = set.dims![k]
    if (v.kind === 'addr') {
      if (dim === 'net') key += `${maskAddr(v.ip, lens[n]).value.toString(16)}/${lens[n++]}|`
      else key += `${maskAddr(v.ip, set.netmask).value.toString(16)}|`
    } else if (v.kind === 'port') key += set.type === 'bitmap:port' ? `${v.port}|` : `${v.proto}:${v.port}|`
    else if (v.kind === 'mark') key += `${v.mark}|`
    else if (v.kind === 'iface') key += `${v.name}|`
    else return undefined
  }
  return key
}

/** The keys of an entry (a small range: one per address/port), or undefined: looked at one by one. */
function keysOfEntry(set: IpSet, e: IpsetEntry): {keys: string[]; lens: number[]} | undefined {
  let keys = ['']
  const lens: number[] = []
  if (e.unknownOptions || e.wildcard) return undefined
  for (const x of e.parts) {
    let add: string[]
    switch (x.kind) {
      case 'ip': {
        const size = x.to.value - x.from.value + 1n
        if (size > BigInt(EXPAND)) return undefined
        add = []
        for (let v = x.from.value; v <= x.to.value; v++) add.push(`${v.toString(16)}|`)
        // with netmask, the entries are networks: their from/to are masked already, one key each
        break
      }
      case 'net':
        add = [`${x.prefix.value.toString(16)}/${x.prefix.len}|`]
        lens.push(x.prefix.len)
        break
      case 'port': {
        if (x.proto === undefined && set.type !== 'bitmap:port') return undefined
        if (x.to - x.from + 1 > EXPAND) return undefined
        add = []
        for (let v = x.from; v <= x.to; v++) add.push(set.type === 'bitmap:port' ? `${v}|` : `${x.proto}:${v}|`)
        break
      }
      case 'mark':
        add = [`${(x.value & (set.markmask ?? 0xffffffff)) >>> 0}|`]
        break
      case 'iface':
        if (x.physdev) return {keys: [], lens}
        add = [`${x.name}|`]
        break
      default:
        return undefined
    }
    if (keys.length * add.length > EXPAND * 4) return undefined
    const next: string[] = []
    for (const k of keys) for (const a of add) next.push(k + a)
    keys = next
  }
  return {keys, lens}
}

function cmpLens(a: readonly number[], b: readonly number[]): number {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return b[k]! - a[k]!
  return 0
}

function indexOf(set: IpSet): Index {
  let ix = indexes.get(set)
  if (ix) return ix
  const map = new Map<string, IpsetEntry>()
  const linear: IpsetEntry[] = []
  const lensSeen = new Map<string, number[]>()
  const hasMac = set.dims!.includes('mac')
  for (const e of set.entries) {
    const ks = hasMac ? undefined : keysOfEntry(set, e)
    if (!ks) {
      linear.push(e)
      continue
    }
    lensSeen.set(ks.lens.join('/'), ks.lens)
    // the first entry of a key is the one kept (ipset refuses a second one; a hand-made file may repeat it)
    for (const k of ks.keys) if (!map.has(k)) map.set(k, e)
  }
  const lens = [...lensSeen.values()].sort(cmpLens)
  ix = {lens: lens.length ? lens : [[]], map, linear}
  indexes.set(set, ix)
  return ix
}

/** The prefix lengths of an entry's net parts. */
function entryLens(e: IpsetEntry): number[] {
  const out: number[] = []
  for (const x of e.parts) if (x.kind === 'net') out.push(x.prefix.len)
  return out
}

/** Tests one entry against the packet's values: true, false or 'unknown'. */
function entryHolds(set: IpSet, e: IpsetEntry, vals: readonly Value[]): boolean | 'unknown' {
  let unknown = false
  if (set.type === 'bitmap:ip,mac' && e.parts.length === 1) {
    // an entry without a MAC: the kernel fills in the packet's source MAC and matches (bitmap_ipmac_do_test -EAGAIN)
    const h = partHolds(set, e.parts[0]!, vals[0]!, false)
    return h === 'unknown' ? 'unknown' : h === true
  }
  for (let k = 0; k < e.parts.length; k++) {
    const h = partHolds(set, e.parts[k]!, vals[k]!, e.wildcard)
    if (h === false || h === -1) return false
    if (h === 'unknown') unknown = true
  }
  if (e.unknownOptions) unknown = true
  return unknown ? 'unknown' : true
}

/** ip_set_test for one set (not list:set). */
function lookup(set: IpSet, flags: readonly ('src' | 'dst')[], p: Packet, ifs: SetIfaces): Lookup {
  const dims = set.dims!
  const vals: Value[] = []
  for (let k = 0; k < dims.length; k++) vals.push(valueOf(set, dims[k]!, flags[k]!, p, ifs))
  const key = vals.map(fmtValue).join(',')
  const none = vals.find((v) => v.kind === 'none')
  if (none) return {hit: false, set, key, why: `${none.what}: the kernel finds no entry`}
  if (set.range && vals[0]?.kind === 'addr') {
    const a = maskAddr(vals[0].ip, set.netmask)
    if (a.family !== set.range.from.family || a.value < set.range.from.value || a.value > set.range.to.value) return {hit: false, set, key, why: 'outside the range of the bitmap'}
  }
  if (set.portRange && vals[0]?.kind === 'port' && (vals[0].port < set.portRange[0] || vals[0].port > set.portRange[1])) return {hit: false, set, key, why: 'outside the range of the bitmap'}
  const ix = indexOf(set)
  const anyUnknown = vals.some((v) => v.kind === 'unknown')
  let best: IpsetEntry | undefined
  let bestLens: readonly number[] | undefined
  let unknownAt: readonly number[] | undefined
  if (!anyUnknown) {
    for (const lens of ix.lens) {
      const k = keyOfValues(set, vals, lens)
      const e = k === undefined ? undefined : ix.map.get(k)
      if (e) {
        best = e
        bestLens = lens
        break
      }
    }
  }
  const scan = anyUnknown ? set.entries : ix.linear
  for (const e of scan) {
    const h = entryHolds(set, e, vals)
    if (h === false) continue
    const lens = entryLens(e)
    if (h === 'unknown') {
      if (!unknownAt || cmpLens(lens, unknownAt) < 0) unknownAt = lens
      continue
    }
    if (!bestLens || cmpLens(lens, bestLens) < 0) {
      best = e
      bestLens = lens
    }
  }
  // an entry the snapshot cannot decide that would be looked up before (or, without net dimensions, instead of) the one found
  const hasNet = dims.includes('net')
  if (unknownAt && (!best || (hasNet && cmpLens(unknownAt, bestLens!) <= 0))) {
    return {hit: 'unknown', set, key, why: `an entry of ${set.name} depends on what the snapshot does not hold (${vals.filter((v) => v.kind === 'unknown').map((v) => (v as {what: string}).what).join(', ') || 'an option not modelled'})`}
  }
  if (!best) return {hit: false, set, key}
  return {hit: true, entry: best, nomatch: hasNet && best.nomatch, set, key}
}

function describeEntry(e: IpsetEntry): string {
  const extra = e.timeout !== undefined ? `, timeout ${e.timeout}s left at the snapshot` : ''
  return `${e.loc.file}:${e.loc.line} \`${e.loc.text.trim()}\`${extra}`
}

/** ip_set_test with --return-nomatch: true/false/'unknown' and the words that say why. */
function testSet(sets: IpsetSnapshot, set: IpSet, m: SetMatch, p: Packet, ifs: SetIfaces, depth: number): {hit: boolean | 'unknown'; why: string} {
  const head = `${set.name} (${set.type})`
  if (!set.dims) return {hit: 'unknown', why: `${head}: set type not modelled`}
  if (m.flags.length < set.dims.length) return {hit: false, why: `${head} has ${set.dims.length} dimensions and the rule gives ${m.flags.length} flag${m.flags.length === 1 ? '' : 's'}: the kernel never matches`}
  if (set.family !== undefined && set.family !== p.family) return {hit: false, why: `${head} is an IPv${set.family} set: an IPv${p.family} packet never matches`}
  if (set.type === 'list:set') {
    if (depth > 0) return {hit: 'unknown', why: `${head}: a list:set inside a list:set (the kernel refuses it)`}
    const words: string[] = []
    let unknown = false
    for (const e of set.entries) {
      const part = e.parts[0]
      const member = part?.kind === 'set' ? sets.sets.get(part.name) : undefined
      if (!member) {
        unknown = true
        words.push(`member ${part?.kind === 'set' ? part.name : e.text} is not in ${sets.file}`)
        continue
      }
      const r = testSet(sets, member, m, p, ifs, depth + 1)
      if (r.hit === true) return {hit: true, why: `${head} member ${r.why}`}
      if (r.hit === 'unknown') unknown = true
      words.push(r.why)
    }
    if (unknown) return {hit: 'unknown', why: `${head}: ${words.join('; ')}`}
    return {hit: false, why: set.entries.length ? `no member of ${head} holds it: ${words.join('; ')}` : `${head} has no members`}
  }
  const r = lookup(set, m.flags, p, ifs)
  if (r.hit === 'unknown') return {hit: 'unknown', why: `${head} ${r.key}: ${r.why}`}
  const canNomatch = set.dims.includes('net')
  if (r.hit === false) {
    const why = `${head} does not hold ${r.key}${r.why ? ` (${r.why})` : ''}`
    return {hit: false, why: m.returnNomatch && canNomatch ? `${why}; --return-nomatch: no match` : why}
  }
  const e = r.entry!
  if (r.nomatch) {
    return m.returnNomatch
      ? {hit: true, why: `${head} ${r.key} is in nomatch entry ${describeEntry(e)}: --return-nomatch makes it a match`}
      : {hit: false, why: `${head} ${r.key} is in nomatch entry ${describeEntry(e)}: no match`}
  }
  if (m.returnNomatch && canNomatch) return {hit: false, why: `${head} holds ${r.key} in ${describeEntry(e)}: --return-nomatch makes a plain entry no match`}
  const learned = set.type === 'bitmap:ip,mac' && e.parts.length === 1 ? ' (no MAC yet: the kernel stores the packet\'s source MAC)' : ''
  return {hit: true, why: `${head} holds ${r.key} in ${describeEntry(e)}${learned}`}
}

/**
 * Decides `-m set` for packet `p` from the host's sets. 'assumed' when the set is not in the snapshot or the
 * answer depends on what it does not hold (MAC addresses, entry counters, a type not modelled).
 */
export function evalSetMatch(sets: IpsetSnapshot | undefined, m: SetMatch, p: Packet, ifs: SetIfaces): SetVerdict {
  const set = sets?.sets.get(m.name)
  const rule = `${m.neg ? '! ' : ''}--match-set ${m.name} ${m.flags.join(',')}`
  if (!sets) return {decision: 'assumed', why: `${rule} (set contents are not in the snapshot: no ipset-save.txt)`}
  if (!set) return {decision: 'assumed', why: `${rule} (set ${m.name} is not in ${sets.file})`}
  const r = testSet(sets, set, m, p, ifs, 0)
  if (r.hit === 'unknown') return {decision: 'assumed', why: `${rule}: ${r.why}`}
  if (r.hit && m.counters?.length) {
    return {decision: 'assumed', why: `${rule}: ${r.why}; ${m.counters.join(' ')} compares the entry's counters, which are not modelled`}
  }
  const matched = r.hit !== m.neg
  return {decision: matched ? 'match' : 'nomatch', why: `${rule} ${matched ? 'matches' : 'does not match'}: ${r.why}`}
}
