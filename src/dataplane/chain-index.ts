// Which rules of a long chain can match a packet at all, without evaluating each one.
//
// kube-proxy style chains hold thousands of rules that differ only in their `-d VIP/32` (nat/filter
// KUBE-SERVICES) or their `--dport N` (KUBE-NODEPORTS). Walking them rule by rule for every packet makes a
// check over 100,000 rules quadratic. A chain of at least MIN_RULES rules is indexed once (cached by its rule
// array) by the key most of its rules carry: the destination prefix of a non-negated `-d`, or the single
// destination port of a non-negated `--dport`/`--dports`. For a packet, the candidates are the rules whose key
// fits the packet plus the rules without a key, in chain order; every other rule has a match that evaluates to
// 'nomatch' for that packet, so skipping it changes nothing.
//
// Only a match that comes before every `-m statistic` of its rule is used as the key: the interpreter evaluates
// matches in order, and a statistic match evaluated before the failing one would have drawn (or counted, for
// --mode nth). The kernel checks -s/-d/-p/-i/-o (ip_packet_match) before any xt match anyway, and iptables-save
// prints them first.
import type {IptChain, IptRule, IptTable, Match} from '../model/iptables.js'
import type {Packet} from './packet.js'

const MIN_RULES = 16
/** candidate lists remembered per index (by destination or port); a cascade replays one packet many times */
const MAX_MEMO = 4096

interface DstGroup {
  readonly family: 4 | 6
  readonly len: number
  /** the netmask of `len` (the key of an address is the address under it: its prefix value) */
  readonly mask: bigint
  /** prefix value -> rule positions */
  readonly at: Map<bigint, number[]>
}

interface ChainIndex {
  readonly dst?: readonly DstGroup[]
  readonly port?: Map<number, number[]>
  /** positions of the rules without a key: candidates for every packet */
  readonly others: readonly number[]
  /** the rules at `others` (the candidates of a packet no key fits) */
  othersRules?: readonly IptRule[]
  /** candidates already computed, by destination address (dst index: family 6 keyed apart) or by port */
  readonly memo4: Map<bigint | number, readonly IptRule[]>
  readonly memo6: Map<bigint, readonly IptRule[]>
  /** the last key asked for and its candidates (a cascade replays one packet many times in a row: no hashing) */
  lastKey?: bigint | number
  lastFamily?: 4 | 6
  lastOut?: readonly IptRule[]
}

const cache = new WeakMap<readonly IptRule[], ChainIndex | null>()

/** The key match of a rule: its first non-negated `-d` before any statistic match (undefined: none). */
function dstKeyOf(r: IptRule): Extract<Match, {kind: 'addr'}> | undefined {
  const ms = r.matches
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!
    if (m.kind === 'statistic') break
    if (m.kind === 'addr' && m.dir === 'dst' && !m.neg) return m
  }
  return undefined
}

/** The other key: its first single destination port (non-negated `--dport N`) before any statistic match (-1: none). */
function portKeyOf(r: IptRule): number {
  const ms = r.matches
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!
    if (m.kind === 'statistic') break
    if (m.kind === 'port' && m.dir === 'dst' && !m.neg && m.ranges.length === 1 && m.ranges[0]![0] === m.ranges[0]![1]) return m.ranges[0]![0]
  }
  return -1
}

function maskOf(family: 4 | 6, len: number): bigint {
  const bits = family === 4 ? 32 : 128
  return len <= 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len)
}

/**
 * The index of a chain, or null when most of its rules would be candidates for every packet anyway. Counted
 * first without making anything (a kube-proxy dump has ~1,000 KUBE-SVC chains of 16+ rules, none worth an
 * index), with indexed loops: this runs once per chain, mostly before it is optimised.
 */
function build(rules: readonly IptRule[]): ChainIndex | null {
  let nDst = 0
  let nPort = 0
  for (let i = 0; i < rules.length; i++) {
    if (dstKeyOf(rules[i]!)) nDst++
    if (portKeyOf(rules[i]!) >= 0) nPort++
  }
  const useDst = nDst >= nPort
  const n = useDst ? nDst : nPort
  // not worth it when most rules would be candidates for every packet anyway
  if (n * 2 < rules.length) return null
  const others: number[] = []
  if (useDst) {
    // groups by family and prefix length, in the order of their first rule
    const groups = new Map<number, DstGroup>()
    for (let i = 0; i < rules.length; i++) {
      const m = dstKeyOf(rules[i]!)
      if (!m) {
        others.push(i)
        continue
      }
      const g0 = m.prefix.family * 1024 + m.prefix.len
      let g = groups.get(g0)
      if (!g) {
        g = {family: m.prefix.family, len: m.prefix.len, mask: maskOf(m.prefix.family, m.prefix.len), at: new Map()}
        groups.set(g0, g)
      }
      // a prefix is normalised (host bits clear): its value is its key
      const list = g.at.get(m.prefix.value)
      if (list) list.push(i)
      else g.at.set(m.prefix.value, [i])
    }
    return {dst: [...groups.values()], others, memo4: new Map(), memo6: new Map(), lastKey: undefined, lastFamily: undefined, lastOut: undefined}
  }
  const port = new Map<number, number[]>()
  for (let i = 0; i < rules.length; i++) {
    const k = portKeyOf(rules[i]!)
    if (k < 0) {
      others.push(i)
      continue
    }
    const list = port.get(k)
    if (list) list.push(i)
    else port.set(k, [i])
  }
  return {port, others, memo4: new Map(), memo6: new Map(), lastKey: undefined, lastFamily: undefined, lastOut: undefined}
}

function indexOf(rules: readonly IptRule[]): ChainIndex | null {
  let idx = cache.get(rules)
  if (idx === undefined) {
    idx = build(rules)
    cache.set(rules, idx)
  }
  return idx
}

function compute(rules: readonly IptRule[], idx: ChainIndex, p: Packet): readonly IptRule[] {
  let hits: (readonly number[])[] | undefined
  if (idx.dst) {
    for (const g of idx.dst) {
      if (g.family !== p.dst.family) continue
      const list = g.at.get(p.dst.value & g.mask)
      if (list) (hits ??= [idx.others]).push(list)
    }
  } else if (idx.port && p.dport !== undefined) {
    const list = idx.port.get(p.dport)
    if (list) hits = [idx.others, list]
  }
  if (!hits) return (idx.othersRules ??= idx.others.map((i) => rules[i]!))
  // each list is in chain order and no position is in two (a rule has one key): merged, not concatenated and sorted
  let pos = hits[0]!
  for (let k = 1; k < hits.length; k++) pos = mergeSorted(pos, hits[k]!)
  const out: IptRule[] = new Array(pos.length)
  for (let i = 0; i < pos.length; i++) out[i] = rules[pos[i]!]!
  return out
}

/** Two ascending lists of positions as one ascending list. */
function mergeSorted(a: readonly number[], b: readonly number[]): readonly number[] {
  if (a.length === 0) return b
  if (b.length === 0) return a
  const out: number[] = new Array(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length && j < b.length) out[k++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!
  while (i < a.length) out[k++] = a[i++]!
  while (j < b.length) out[k++] = b[j++]!
  return out
}

/**
 * The rules of `rules` (a chain's rule list) that can match `p`, in chain order (the list itself when short).
 * The list returned may be shared between calls: callers only read it.
 */
export function candidateRules(rules: readonly IptRule[], p: Packet): readonly IptRule[] {
  if (rules.length < MIN_RULES) return rules
  const idx = indexOf(rules)
  if (!idx) return rules
  // the candidates depend on the destination address (dst index) or the destination port (port index) only
  let memo: Map<bigint | number, readonly IptRule[]>
  let key: bigint | number
  if (idx.dst) {
    memo = p.dst.family === 4 ? idx.memo4 : idx.memo6
    key = p.dst.value
  } else {
    if (p.dport === undefined) return compute(rules, idx, p)
    memo = idx.memo4
    key = p.dport
  }
  const family = p.dst.family
  if (idx.lastOut !== undefined && idx.lastKey === key && idx.lastFamily === family) return idx.lastOut
  let out = memo.get(key)
  if (out === undefined) {
    out = compute(rules, idx, p)
    if (memo.size >= MAX_MEMO) memo.clear()
    memo.set(key, out)
  }
  idx.lastKey = key
  idx.lastFamily = family
  idx.lastOut = out
  return out
}


/**
 * The jump graph of a table, computed once per table object: chains numbered in table order, each jump resolved
 * to a number once (runChain follows jumps, and chain-graph.ts walks reachability, without name lookups).
 */
export interface TableGraph {
  /** the declared chains by number */
  readonly chains: readonly IptChain[]
  /** chain name -> its number: its position in the table; names jumps name that the table does not declare come after */
  readonly ids: Map<string, number>
  /** per number, the first rule (table order: chains as declared, rules in order) that jumps or goes to the chain */
  readonly first: (IptRule | undefined)[]
  /** the ids of the chains the rules of chain `id` jump or go to are succ[start[id] .. start[id + 1]) (none for undeclared names) */
  readonly start: Int32Array
  readonly succ: Int32Array
  /** builtin chain list (joined) -> the chains reachable from them by jumps and gotos */
  readonly reach: Map<string, unknown>
  /** the rules of chain `id` are rules ruleStart[id] .. ruleStart[id + 1] - 1 in table order */
  readonly ruleStart: Int32Array
  /** per rule in table order, the number of the chain it jumps or goes to (-1: none) */
  readonly target: Int32Array
  /** the numbers of the chains runChain starts from (builtin chains: a few names, looked up in a small map) */
  readonly entries: Map<string, number>
  /** per chain number, the walk that last visited it (jumpWalk) */
  readonly stamp: Int32Array
  walks: number
}

const graphs = new WeakMap<IptTable, TableGraph>()

export function tableGraph(t: IptTable): TableGraph {
  let g = graphs.get(t)
  if (!g) {
    const ids = new Map<string, number>()
    const chains = [...t.chains.values()]
    let n = 0
    t.chains.forEach((_c, name) => ids.set(name, n++))
    const first: (IptRule | undefined)[] = new Array(n).fill(undefined)
    // adjacency in two flat typed arrays (a list per chain would be 34,000 small arrays; number arrays grown by push
    // and copied at the end were ~1.5 MB of garbage on kube-proxy 100k), sized by the rule count: a rule jumps to one
    // chain at most (no first pass over every rule's target to count the jumps)
    let nRules = 0
    for (let ci = 0; ci < chains.length; ci++) nRules += chains[ci]!.rules.length
    let start = new Int32Array(chains.length + 1)
    const succ = new Int32Array(nRules)
    let nSucc = 0
    const ruleStart = new Int32Array(chains.length + 1)
    const target = new Int32Array(nRules).fill(-1)
    let at = 0
    for (let ci = 0; ci < chains.length; ci++) {
      start[ci] = nSucc
      ruleStart[ci] = at
      const rules = chains[ci]!.rules
      for (let ri = 0; ri < rules.length; ri++, at++) {
        const r = rules[ri]!
        const tg = r.target
        if (tg?.kind !== 'jump' && tg?.kind !== 'goto') continue
        let id = ids.get(tg.chain)
        if (id === undefined) {
          id = n++
          ids.set(tg.chain, id)
          first.push(undefined)
        }
        first[id] ??= r
        succ[nSucc++] = id
        target[at] = id
      }
    }
    ruleStart[chains.length] = at
    // the names jumps name that the table does not declare have no successors
    if (n > chains.length) {
      const grown = new Int32Array(n + 1)
      grown.set(start.subarray(0, chains.length))
      start = grown
    }
    for (let k = chains.length; k <= n; k++) start[k] = nSucc
    g = {chains, ids, first, start, succ, reach: new Map(), ruleStart, target, entries: new Map(), stamp: new Int32Array(chains.length), walks: 0}
    graphs.set(t, g)
  }
  return g
}

/** The number of the chain `rule` (of chain number `id`) jumps or goes to: -1 none; `chains.length` or more: not declared. */
export function jumpId(g: TableGraph, id: number, rule: IptRule): number {
  const k = rule.index - 1
  if (g.chains[id]!.rules[k] === rule) return g.target[g.ruleStart[id]! + k]!
  // a rule list whose positions are not the rules' indexes: by name
  const tg = rule.target
  return tg && (tg.kind === 'jump' || tg.kind === 'goto') ? (g.ids.get(tg.chain) ?? g.chains.length) : -1
}

/** The number of chain `name` (`chains.length` when the table does not declare it), for runChain's starting chains. */
export function startId(g: TableGraph, name: string): number {
  let id = g.entries.get(name)
  if (id === undefined) {
    id = g.ids.get(name) ?? g.chains.length
    if (id >= g.chains.length) id = g.chains.length
    if (g.entries.size < 64) g.entries.set(name, id)
  }
  return id
}
