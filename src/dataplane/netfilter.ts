// The iptables interpreter: one packet through one builtin chain of one table, following jumps, gotos,
// RETURN and the policy, as ipt_do_table (net/ipv4/netfilter/ip_tables.c) does. Matches that cannot be
// decided from what the snapshot holds are assumed and reported, never silently guessed.
import {prefixContains, type IpAddr, type Prefix} from '../model/ip.js'
import type {AddrType, IptRule, IptTable, Match, Target} from '../model/iptables.js'
import {PROTO, type CtView, type IpvsView, type Packet} from './packet.js'
import {candidateRules, jumpId, startId, tableGraph} from './chain-index.js'
import {evalSetMatch} from './ipset.js'
import type {IpsetSnapshot} from '../model/ipset.js'
import {rpfilterPasses, rpfilterText} from './rpfilter.js'
import type {RoutingTables} from './routing.js'

/** What the interpreter needs to know about the host and the packet's context. */
export interface MatchEnv {
  /** input / output interface names (undefined when the hook has none: PREROUTING has no out) */
  readonly iif?: string
  readonly oif?: string
  /** the packet's conntrack entry as matches see it; undefined = untracked */
  readonly ct?: CtView
  readonly ipvs?: IpvsView
  /** route type of an address on this host (addrtype match): LOCAL, UNICAST, BROADCAST... */
  readonly addrType: (ip: IpAddr, dev?: string) => AddrType
  /** deterministic stand-in for randomness (statistic --mode random); returns [0,1) */
  readonly random: () => number
  /** per-rule packet counters for statistic --mode nth (state lives with the caller) */
  readonly nthCounters?: Map<IptRule, number>
  /**
   * Decides a statistic match of a rule the packet reaches (true: the match matches, `!` included), or returns
   * undefined to leave it to `random`/`nthCounters`. The rule engine's cascade explorer forces draws with it.
   */
  readonly draw?: (rule: IptRule, m: Extract<Match, {kind: 'statistic'}>) => boolean | undefined
  /**
   * Asked before a rule with a statistic match is evaluated (with `draw`); a function it returns is given the
   * state of the walk at that point. The cascade explorer resumes other outcomes of the draws from there
   * instead of running the hook from the top (a cascade of n endpoints: n short runs instead of n^2/2 draws).
   */
  readonly checkpoint?: (rule: IptRule) => ((state: ChainCheckpoint) => void) | undefined
  /** REDIRECT's new destination for a packet arriving on `iif`: the device's primary address (nf_nat_redirect_ipv4) */
  readonly redirectAddr?: (iif: string | undefined) => IpAddr | undefined
  /** the host's ipsets (ipset-save.txt): `-m set` is decided from them; undefined: no ipset-save.txt (assumed, said) */
  readonly ipsets?: IpsetSnapshot
  /** told how each `-m set` match a rule reached was decided (the entry that matched, or that none did) */
  readonly setNote?: (rule: IptRule, why: string) => void
  /** the host's routes for `-m rpfilter`'s reverse lookup; undefined when the snapshot has none (then assumed to pass, said) */
  readonly reverseRoutes?: RoutingTables
}

/** The state of a chain walk before one of its rules (runChain's `from` resumes it; never changed once made). */
export interface ChainCheckpoint {
  /** the chain being walked (tableGraph number), the rule list walked (its candidates) and the position of the rule about to be evaluated */
  readonly chain: number
  readonly rules: readonly IptRule[]
  readonly i: number
  /** the callers to return to (innermost first) */
  readonly stack: Frame | undefined
  readonly packet: Packet
  readonly ctMark: number
  readonly notrack: boolean
  /** the env the walk was started with, and the one its matches see now (MARK/CONNMARK change it) */
  readonly env: MatchEnv
  readonly curEnv: MatchEnv
  /** the walk's trail and assumptions are their first trailLen / assumptionsLen entries (the lists only grow during a walk) */
  readonly trail: readonly IptRule[]
  readonly trailLen: number
  readonly assumptions: readonly Assumption[]
  readonly assumptionsLen: number
}

export type Decision = 'match' | 'nomatch' | 'assumed'

/** A caller of the user chain being walked: its rules, where to go on, and its own caller (never changed: checkpoints share it). */
export interface Frame {
  /** the caller's chain number (chain-index.ts tableGraph) */
  readonly chain: number
  readonly rules: readonly IptRule[]
  readonly i: number
  readonly up: Frame | undefined
  readonly depth: number
}

export interface Assumption {
  readonly rule: IptRule
  readonly what: string
}

export type ChainVerdict = 'ACCEPT' | 'DROP' | 'REJECT' | 'QUEUE' | 'NAT' | 'CONTINUE'

export interface ChainResult {
  readonly verdict: ChainVerdict
  /** the rule whose target decided (undefined: the chain policy decided) */
  readonly rule?: IptRule
  /** the target of that rule (DNAT/SNAT/... for NAT, REJECT with its type) */
  readonly target?: Target
  /** true when the builtin chain's policy decided */
  readonly policy: boolean
  /** every rule whose match succeeded, in order, with the target it fired (jumps, MARK, LOG...) */
  readonly trail: readonly IptRule[]
  readonly assumptions: readonly Assumption[]
  /** the packet after MARK/CONNMARK restore */
  readonly packet: Packet
  /** the ct mark after CONNMARK set/save */
  readonly ctMark: number
  /** CT --notrack / NOTRACK fired (raw table) */
  readonly notrack: boolean
}

const MAX_DEPTH = 64

function ifaceMatches(pattern: string, name: string | undefined): boolean {
  if (name === undefined) return false
  if (pattern.endsWith('+')) return name.startsWith(pattern.slice(0, -1))
  return pattern === name
}

function inRanges(port: number | undefined, ranges: readonly (readonly [number, number])[]): boolean {
  if (port === undefined) return false
  // indexed, without destructuring: an iterator and its results per call while this runs unoptimised
  for (let k = 0; k < ranges.length; k++) {
    const range = ranges[k]!
    if (port >= range[0] && port <= range[1]) return true
  }
  return false
}

const FLAG_BIT: Readonly<Record<string, number>> = {SYN: 1, ACK: 2, FIN: 4, RST: 8, PSH: 16, URG: 32}
const ALL_FLAGS = 63

/** The packet's TCP flags as bits (FLAG_BIT). */
function packetFlags(p: Packet): number {
  const f = p.flags
  if (!f) return 0
  return (f.syn ? 1 : 0) | (f.ack ? 2 : 0) | (f.fin ? 4 : 0) | (f.rst ? 8 : 0) | (f.psh ? 16 : 0) | (f.urg ? 32 : 0)
}

/** A `--tcp-flags` list as bits: ALL is every flag, NONE (without ALL) none. */
function flagBits(names: readonly string[]): number {
  if (names.includes('ALL')) return ALL_FLAGS
  if (names.includes('NONE')) return 0
  let bits = 0
  for (const n of names) bits |= Object.hasOwn(FLAG_BIT, n) ? FLAG_BIT[n]! : 0
  return bits
}

/** A match's boolean test with its `!` applied (module level: a closure per call would be allocated each time). */
function r(b: boolean, neg = false): Decision {
  return b !== neg ? 'match' : 'nomatch'
}

function addrTypeOk(side: {readonly neg: boolean; readonly types: readonly AddrType[]} | undefined, ip: IpAddr, env: MatchEnv, dev: string | undefined): boolean {
  return side === undefined || side.types.includes(env.addrType(ip, dev)) !== side.neg
}

/** The host part of every prefix length, per family (made when first asked). */
const HOST: {4?: bigint[]; 6?: bigint[]} = {}

function hostBits(family: 4 | 6, len: number): bigint {
  const t = (HOST[family] ??= Array.from({length: (family === 4 ? 32 : 128) + 1}, (_, l) => (1n << BigInt((family === 4 ? 32 : 128) - l)) - 1n))
  return t[len]!
}

/** The last network prefix tested and its range (its highest address), when its host bits are clear. */
let lastPrefix: Prefix | undefined
let lastHi = 0n
let lastRange = false

/**
 * prefixContains without a bigint operation per test: a host prefix (-d VIP/32, most rules of a big dump) by
 * equality, a network prefix by comparing with its range (computed once for the prefix tested last: a replayed
 * cascade tests one `! -s POD-CIDR` again and again; `&` would allocate a bigint each time).
 */
function inPrefix(prefix: Prefix, ip: IpAddr): boolean {
  if (prefix.family !== ip.family) return false
  if (prefix.len === (prefix.family === 4 ? 32 : 128)) return prefix.value === ip.value
  if (prefix !== lastPrefix) {
    const host = prefix.len >= 0 ? hostBits(prefix.family, prefix.len) : undefined
    lastPrefix = prefix
    // a prefix whose host bits are set contains nothing (prefixContains compares the masked address with it)
    lastRange = host !== undefined && (prefix.value & host) === 0n
    lastHi = lastRange ? prefix.value | host! : 0n
  }
  if (!lastRange) return prefixContains(prefix, ip)
  return ip.value >= prefix.value && ip.value <= lastHi
}

/** Decides one match. 'assumed' means the snapshot cannot tell (the rule is then taken as matching). */
export function evalMatch(m: Match, p: Packet, env: MatchEnv): Decision {
  switch (m.kind) {
    case 'addr':
      return r(inPrefix(m.prefix, m.dir === 'src' ? p.src : p.dst), m.neg)
    case 'iface': {
      const name = m.dir === 'in' ? env.iif : env.oif
      if (name === undefined) return 'nomatch'
      return r(ifaceMatches(m.name, name), m.neg)
    }
    case 'proto':
      if (m.proto === 'all') return r(true, m.neg)
      return r(p.proto === m.proto, m.neg)
    case 'fragment':
      return r(false, m.neg)
    case 'port': {
      const l4 = m.module === 'tcp' || m.module === 'udp' || m.module === 'sctp' || m.module === 'udplite' || m.module === 'dccp'
      if (l4 && PROTO[m.module as 'tcp' | 'udp' | 'sctp'] !== undefined && p.proto !== PROTO[m.module as 'tcp' | 'udp' | 'sctp']) return 'nomatch'
      if (p.sport === undefined) return 'nomatch'
      if (m.dir === 'any') return r(inRanges(p.sport, m.ranges) || inRanges(p.dport, m.ranges), m.neg)
      return r(inRanges(m.dir === 'src' ? p.sport : p.dport, m.ranges), m.neg)
    }
    case 'tcpflags': {
      if (p.proto !== PROTO.tcp) return 'nomatch'
      // every flag of the mask is set in the packet exactly when it is in comp
      const mask = flagBits(m.mask)
      return r((packetFlags(p) & mask) === (flagBits(m.comp) & mask), m.neg)
    }
    case 'ctstate': {
      // no conntrack entry and not NOTRACKed (the raw table runs before conntrack): xt_state/xt_conntrack say INVALID
      const state = env.ct?.state ?? 'INVALID'
      let hit = m.states.includes(state)
      // conntrack --ctstate SNAT/DNAT are virtual states from the entry's status
      if (!hit && env.ct && m.states.includes('SNAT') && env.ct.status.has('SNAT')) hit = true
      if (!hit && env.ct && m.states.includes('DNAT') && env.ct.status.has('DNAT')) hit = true
      return r(hit, m.neg)
    }
    case 'ctaddr': {
      const ct = env.ct
      if (!ct?.orig || !ct.reply) return m.neg ? 'match' : 'nomatch'
      const w = m.which
      const ip = w === 'origsrc' ? ct.orig.src : w === 'origdst' ? ct.orig.dst : w === 'replsrc' ? ct.reply.src : ct.reply.dst
      return r(prefixContains(m.prefix, ip), m.neg)
    }
    case 'ctport': {
      const ct = env.ct
      if (!ct?.orig || !ct.reply) return m.neg ? 'match' : 'nomatch'
      const w = m.which
      const port = w === 'origsrc' ? ct.orig.sport : w === 'origdst' ? ct.orig.dport : w === 'replsrc' ? ct.reply.sport : ct.reply.dport
      return r(port >= m.range[0] && port <= m.range[1], m.neg)
    }
    case 'ctstatus': {
      const ct = env.ct
      const hit = !!ct && m.statuses.some((s) => ct.status.has(s.toUpperCase()))
      return r(hit, m.neg)
    }
    case 'ctproto':
      return r(!!env.ct && (env.ct.orig?.proto ?? p.proto) === m.proto, m.neg)
    case 'ctdir':
      return r(!!env.ct && env.ct.dir === m.dir)
    case 'mark': {
      // xt_connmark connmark_mt: no conntrack entry (raw before conntrack, NOTRACK) -> false, `!` included
      if (m.module === 'connmark' && (!env.ct || env.ct.state === 'UNTRACKED')) return 'nomatch'
      const v = m.module === 'mark' ? p.mark : (env.ct?.mark ?? 0)
      return r(((v & m.mask) >>> 0) === (m.value >>> 0), m.neg)
    }
    case 'statistic': {
      if (m.mode === 'random') return r(env.random() < m.probability, m.neg)
      // nth: the kernel keeps one counter per rule: match when (count++ % every) == packet
      return 'assumed'
    }
    case 'comment':
      return 'match'
    case 'addrtype': {
      // --limit-iface-in/out: the address's local route must be the device's (xt_addrtype passes it to inet_dev_addr_type)
      const dev = m.limitIface === 'in' ? env.iif : m.limitIface === 'out' ? env.oif : undefined
      return addrTypeOk(m.src, p.src, env, dev) && addrTypeOk(m.dst, p.dst, env, dev) ? 'match' : 'nomatch'
    }
    case 'iprange': {
      const ip = m.dir === 'src' ? p.src : p.dst
      const inside = ip.family === m.from.family && ip.value >= m.from.value && ip.value <= m.to.value
      return r(inside, m.neg)
    }
    case 'icmp': {
      const proto = m.family === 4 ? PROTO.icmp : PROTO.icmpv6
      if (p.proto !== proto) return 'nomatch'
      if (m.type === 'any') return r(true, m.neg)
      const hit = p.icmpType === m.type && (m.code === undefined || p.icmpCode === m.code)
      return r(hit, m.neg)
    }
    case 'ipvs': {
      // xt_ipvs.c ipvs_mt: `--ipvs` alone tests skb->ipvs_property (`! --ipvs` its absence); any other
      // option needs the property and then compares each field.
      const v = env.ipvs
      const onlyProperty = m.vproto === undefined && !m.vaddr && !m.vport && !m.vdir && !m.vmethod && m.vportctl === undefined
      if (onlyProperty) return r(!!v, m.neg)
      if (!v || (m.ipvs !== undefined && m.neg)) return 'nomatch'
      if (m.vproto !== undefined && (v.vproto === m.vproto) === !!m.vprotoNeg) return 'nomatch'
      if (m.vaddr && prefixContains(m.vaddr.prefix, v.vaddr) === m.vaddr.neg) return 'nomatch'
      if (m.vport && (v.vport === m.vport.port) === m.vport.neg) return 'nomatch'
      if (m.vdir && v.dir !== m.vdir) return 'nomatch'
      if (m.vmethod && (v.method === m.vmethod.method) === m.vmethod.neg) return 'nomatch'
      return m.vportctl === undefined ? 'match' : 'assumed'
    }
    case 'set':
      return evalSetMatch(env.ipsets, m, p, env).decision
    case 'rpfilter':
      // without the host's routes (or the device, or for IPv6) the packet is taken to pass (ruleMatches says so)
      if (rpfilterUndecided(env, p) !== undefined) return r(true, m.invert)
      return r(rpfilterPasses(env.reverseRoutes!, m, p, env.iif!), m.invert)
    case 'mac':
    case 'limit':
    case 'recent':
    case 'unknown':
      return 'assumed'
  }
}

function describeMatch(m: Match): string {
  switch (m.kind) {
    case 'unknown':
      return `-m ${m.module} ${m.args.join(' ')}`.trim()
    case 'set':
      return `-m set --match-set ${m.name} ${m.flags.join(',')} (set contents are not in the snapshot)`
    case 'mac':
      return `-m mac --mac-source ${m.mac} (link-layer addresses are not modelled)`
    case 'limit':
      return `-m limit --limit ${m.rate} (assumed under the limit)`
    case 'recent':
      return `-m recent ${m.args.join(' ')} (its address list is not in the snapshot)`
    case 'statistic':
      return m.mode === 'nth' ? `-m statistic --mode nth --every ${m.every} --packet ${m.packet}` : '-m statistic'
    default:
      return `-m ${m.kind}`
  }
}

/** The xt_set options iptables-save prints after `--match-set NAME FLAGS` (libxt_set revision 3+), as the parser keeps them ('unknown' matches of module set). */
const SET_OPTIONS = new Set(['--return-nomatch', '--update-counters', '--update-subcounters', '--packets-eq', '--packets-lt', '--packets-gt', '--bytes-eq', '--bytes-lt', '--bytes-gt'])

function setOptionOf(m: Extract<Match, {kind: 'unknown'}>): string | undefined {
  const opt = m.args[0] === '!' ? m.args[1] : m.args[0]
  return opt !== undefined && SET_OPTIONS.has(opt) ? opt : undefined
}

/** Whether the matches before position k, back to a `-m set --match-set`, are all options of it. */
function precededBySet(matches: readonly Match[], k: number): boolean {
  for (let j = k - 1; j >= 0; j--) {
    const x = matches[j]!
    if (x.kind === 'set') return true
    if (x.kind !== 'unknown' || x.module !== 'set' || setOptionOf(x) === undefined) return false
  }
  return false
}

/**
 * The set match at position k with the options that follow it in the rule (the iptables-save parser keeps them as
 * matches of their own): --return-nomatch, ! --update-counters / ! --update-subcounters, the counter conditions.
 */
function withSetOptions(m: Extract<Match, {kind: 'set'}>, matches: readonly Match[], k: number): Extract<Match, {kind: 'set'}> {
  if (m.returnNomatch !== undefined || m.counters !== undefined) return m
  let out = m
  for (let j = k + 1; j < matches.length; j++) {
    const x = matches[j]!
    if (x.kind !== 'unknown' || x.module !== 'set') break
    const opt = setOptionOf(x)
    if (opt === undefined) break
    const neg = x.args[0] === '!'
    if (opt === '--return-nomatch') out = {...out, returnNomatch: true}
    else if (opt === '--update-counters') out = {...out, updateCounters: !neg}
    else if (opt === '--update-subcounters') out = {...out, updateSubcounters: !neg}
    else out = {...out, counters: [...(out.counters ?? []), x.args.join(' ')]}
  }
  return out
}

/** Why `-m rpfilter` cannot be decided for this packet here (undefined: it can). */
function rpfilterUndecided(env: MatchEnv, p: Packet): string | undefined {
  if (p.src.family !== 4) return 'the IPv6 reverse path check is not modelled'
  if (env.iif === undefined) return 'the input device is not known'
  if (env.reverseRoutes === undefined) return 'the snapshot has no routes (ip-route.json)'
  if (env.iif !== 'lo' && !env.reverseRoutes.interfaces.some((i) => i.name === env.iif)) return `the input device ${env.iif} is not one of the host's`
  return undefined
}

/** Evaluates all matches of a rule: a rule with an undecidable match is taken as matching, and says so. */
export function ruleMatches(rule: IptRule, p: Packet, env: MatchEnv, assumptions: Assumption[]): boolean {
  let assumed: Match[] | undefined
  let assumedPass: string[] | undefined
  let setWhy: Map<Match, string> | undefined
  const matches = rule.matches
  for (let k = 0; k < matches.length; k++) {
    const m = matches[k]!
    if (m.kind === 'statistic' && env.draw) {
      const d = env.draw(rule, m)
      if (d === false) return false
      if (d === true) continue
    }
    if (m.kind === 'statistic' && m.mode === 'nth' && env.nthCounters) {
      const n = env.nthCounters.get(rule) ?? 0
      env.nthCounters.set(rule, n + 1)
      if ((n % m.every === m.packet) === m.neg) return false
      continue
    }
    if (m.kind === 'set') {
      // decided from ipset-save.txt when the set is there; the words say which entry (or none) decided
      const v = evalSetMatch(env.ipsets, withSetOptions(m, matches, k), p, env)
      if (v.decision === 'assumed') (setWhy ??= new Map()).set(m, v.why)
      else env.setNote?.(rule, v.why)
      if (v.decision === 'nomatch') return false
      if (v.decision === 'assumed') (assumed ??= []).push(m)
      continue
    }
    // an option of the `-m set` before it (--return-nomatch...): taken into that match by withSetOptions
    if (m.kind === 'unknown' && m.module === 'set' && setOptionOf(m) !== undefined && precededBySet(matches, k)) continue
    const rpfWhy = m.kind === 'rpfilter' ? rpfilterUndecided(env, p) : undefined
    if (m.kind === 'rpfilter' && rpfWhy !== undefined) {
      // undecidable: the packet is taken to pass the reverse path check, which is said (also when that is what
      // keeps the rule from matching: `--invert`)
      const what = `assumed to pass the reverse path check of ${rpfilterText(m)}: ${rpfWhy}`
      if (m.invert) {
        assumptions.push({rule, what})
        return false
      }
      ;(assumedPass ??= []).push(what)
      continue
    }
    const d = evalMatch(m, p, env)
    if (d === 'nomatch') return false
    if (d === 'assumed') (assumed ??= []).push(m)
  }
  if (assumed) for (const m of assumed) assumptions.push({rule, what: `assumed to match: ${(m.kind === 'set' && setWhy?.get(m)) || describeMatch(m)}`})
  if (assumedPass) for (const what of assumedPass) assumptions.push({rule, what})
  return true
}

/**
 * `env` as the matches see it once the connection's mark is `mark`: `curEnv` (env or a copy of it that differs
 * only in ct.mark) when it says so already, else a copy (a MARK target leaves the ct mark as it was: no copy).
 */
function hasStatistic(rule: IptRule): boolean {
  const matches = rule.matches
  for (let k = 0; k < matches.length; k++) if (matches[k]!.kind === 'statistic') return true
  return false
}

const UNTRACKED_VIEW: CtView = {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set(), mark: 0}

function withCtMark(env: MatchEnv, curEnv: MatchEnv, mark: number): MatchEnv {
  // no entry (or untracked since a NOTRACK in this walk): there is no connection mark to change
  if (!env.ct) return curEnv
  if (curEnv.ct?.mark === mark) return curEnv
  if (env.ct.mark === mark) return env
  return {...env, ct: {...env.ct, mark}}
}

function applyMark(op: 'set' | 'xset' | 'and' | 'or' | 'xor', value: number, mask: number, old: number): number {
  switch (op) {
    case 'set':
      return ((old & ~mask) | value) >>> 0
    case 'xset':
      return ((old & ~mask) ^ value) >>> 0
    case 'and':
      return (old & value) >>> 0
    case 'or':
      return (old | value) >>> 0
    case 'xor':
      return (old ^ value) >>> 0
  }
}

/**
 * Runs `chain` of `table` (a builtin chain) for one packet. Non-terminating targets (MARK, CONNMARK, LOG,
 * CT) take effect and evaluation goes on; a terminating target ends it; falling off a builtin chain applies
 * its policy. NAT targets end with verdict 'NAT' and the target, for the caller to bind.
 */
/**
 * The reusable state of a walk: its callers (chain number, rule list, position: a Frame object is made only for a
 * checkpoint), its trail (copied to an exact-sized array at the end) and the assumptions ruleMatches reports. One
 * per nesting level (a callback of the env, draw or checkpoint, could start another walk): most walks allocate
 * nothing but their result, its trail and the packets MARK makes.
 */
interface Scratch {
  readonly chains: number[]
  readonly rules: (readonly IptRule[])[]
  readonly pos: number[]
  readonly trail: IptRule[]
  readonly sink: Assumption[]
}

const scratches: Scratch[] = []
let level = 0

/** Shared by the results whose trail or assumptions are empty (never written to). */
const NO_RULES: readonly IptRule[] = Object.freeze([])
const NO_ASSUMPTIONS: readonly Assumption[] = Object.freeze([])

/** The packet MARK or CONNMARK --restore-mark made last, from which packet and with which mark. */
let markedFrom: Packet | undefined
let markedMark = 0
let marked: Packet | undefined

/**
 * `p` with skb->mark `mark`: a new packet, or the one made last for the same packet and mark (packets are values,
 * never changed once made: a cascade replays one probe per endpoint, each run through KUBE-MARK-MASQ).
 */
function withMark(p: Packet, mark: number): Packet {
  if (p === markedFrom && mark === markedMark) return marked!
  const out = {...p, mark}
  markedFrom = p
  markedMark = mark
  marked = out
  return out
}

/** The callers sp-1 .. 0 of the scratch stack as the Frame list a checkpoint keeps. */
function framesOf(s: Scratch, sp: number): Frame | undefined {
  let f: Frame | undefined
  for (let k = 0; k < sp; k++) f = {chain: s.chains[k]!, rules: s.rules[k]!, i: s.pos[k]!, up: f, depth: k + 1}
  return f
}

/**
 * Runs `chain` of `table` (a builtin chain) for one packet. Non-terminating targets (MARK, CONNMARK, LOG,
 * CT) take effect and evaluation goes on; a terminating target ends it; falling off a builtin chain applies
 * its policy. NAT targets end with verdict 'NAT' and the target, for the caller to bind.
 */
export function runChain(table: IptTable, chain: string, packet: Packet, env: MatchEnv, ctMark = env.ct?.mark ?? 0, from?: ChainCheckpoint): ChainResult {
  const s = (scratches[level] ??= {chains: [], rules: [], pos: [], trail: [], sink: []})
  level++
  try {
    return walk(s, table, chain, packet, env, ctMark, from)
  } finally {
    level--
  }
}

function walk(s: Scratch, table: IptTable, chain: string, packet: Packet, env: MatchEnv, ctMark: number, from: ChainCheckpoint | undefined): ChainResult {
  // chains by number (tableGraph): a jump is followed without looking its name up among 34,000 chains
  const g = tableGraph(table)
  let cid = startId(g, chain)
  const builtin = cid < g.chains.length ? g.chains[cid] : undefined
  if (!builtin) return {verdict: 'ACCEPT', rule: undefined, target: undefined, policy: true, trail: NO_RULES, assumptions: NO_ASSUMPTIONS, packet, ctMark, notrack: false}
  if (from) env = from.env
  // the trail so far is s.trail[0 .. nTrail); the walk's own assumptions array is made when the first one is
  const trail = s.trail
  let nTrail = 0
  let assumptions: Assumption[] | undefined
  const sink = s.sink
  // the call stack of user chains: caller k (0: outermost) is chains[k], rules[k], pos[k]; sp callers
  const chains = s.chains
  const callers = s.rules
  const pos = s.pos
  let sp = 0
  let p = packet
  let mark = ctMark
  let notrack = false
  let rules: readonly IptRule[]
  let i = 0
  let curEnv = env
  if (from) {
    for (let k = 0; k < from.trailLen; k++) trail[k] = from.trail[k]!
    nTrail = from.trailLen
    if (from.assumptionsLen > 0) assumptions = from.assumptions.slice(0, from.assumptionsLen)
    for (let f = from.stack; f !== undefined; f = f.up) {
      chains[f.depth - 1] = f.chain
      callers[f.depth - 1] = f.rules
      pos[f.depth - 1] = f.i
    }
    sp = from.stack === undefined ? 0 : from.stack.depth
    p = from.packet
    mark = from.ctMark
    notrack = from.notrack
    cid = from.chain
    rules = from.rules
    i = from.i
    curEnv = from.curEnv
  } else {
    // only the rules that can match the packet (chain-index.ts): the destination does not change in a chain walk
    rules = candidateRules(builtin.rules, p)
  }
  const checkpoint = env.checkpoint
  let verdict: ChainVerdict | undefined
  let decided: IptRule | undefined
  for (;;) {
    if (i >= rules.length) {
      if (sp === 0) break
      sp--
      cid = chains[sp]!
      rules = callers[sp]!
      i = pos[sp]!
      continue
    }
    const rule = rules[i++]!
    if (checkpoint !== undefined && hasStatistic(rule)) {
      const save = checkpoint(rule)
      if (save) {
        // the checkpoint keeps copies: the scratch arrays are reused by the next walk
        const kept = trail.slice(0, nTrail)
        save({
          chain: cid,
          rules,
          i: i - 1,
          stack: framesOf(s, sp),
          packet: p,
          ctMark: mark,
          notrack,
          env,
          curEnv,
          trail: kept,
          trailLen: nTrail,
          assumptions: assumptions ?? NO_ASSUMPTIONS,
          assumptionsLen: assumptions === undefined ? 0 : assumptions.length,
        })
      }
    }
    const ok = ruleMatches(rule, p, curEnv, sink)
    if (sink.length !== 0) {
      assumptions ??= []
      for (let k = 0; k < sink.length; k++) assumptions.push(sink[k]!)
      sink.length = 0
    }
    if (!ok) continue
    trail[nTrail++] = rule
    const t = rule.target
    if (!t) continue
    const kind = t.kind
    if (kind === 'ACCEPT' || kind === 'DROP' || kind === 'QUEUE' || kind === 'REJECT') {
      verdict = kind
      decided = rule
      break
    }
    if (kind === 'DNAT' || kind === 'SNAT' || kind === 'MASQUERADE' || kind === 'REDIRECT') {
      verdict = 'NAT'
      decided = rule
      break
    }
    switch (t.kind) {
      case 'RETURN': {
        if (sp === 0) {
          i = rules.length // RETURN in a builtin chain: the policy decides
          break
        }
        sp--
        cid = chains[sp]!
        rules = callers[sp]!
        i = pos[sp]!
        break
      }
      case 'jump':
      case 'goto': {
        const tid = jumpId(g, cid, rule)
        const target = tid >= 0 && tid < g.chains.length ? g.chains[tid] : undefined
        if (!target) {
          ;(assumptions ??= []).push({rule, what: `jump to chain ${t.chain}, which the table does not declare: ignored`})
          break
        }
        if (sp >= MAX_DEPTH) {
          ;(assumptions ??= []).push({rule, what: `chain nesting deeper than ${MAX_DEPTH}: stopped following`})
          break
        }
        if (t.kind === 'jump') {
          chains[sp] = cid
          callers[sp] = rules
          pos[sp] = i
          sp++
        }
        cid = tid
        rules = candidateRules(target.rules, p)
        i = 0
        break
      }
      case 'MARK':
        p = withMark(p, applyMark(t.op, t.value, t.mask, p.mark))
        curEnv = withCtMark(env, curEnv, mark)
        break
      case 'CONNMARK':
        // xt_connmark.c connmark_tg_shift: nothing without a conntrack entry (raw before conntrack, NOTRACK);
        // save = (ctmark & ~ctmask) ^ (skb->mark & nfmask),
        // restore = (skb->mark & ~nfmask) ^ (ctmark & ctmask)
        if (!curEnv.ct || curEnv.ct.state === 'UNTRACKED') break
        if (t.op === 'save') mark = ((mark & ~t.ctmask) ^ (p.mark & t.nfmask)) >>> 0
        else if (t.op === 'restore') p = withMark(p, ((p.mark & ~t.nfmask) ^ (mark & t.ctmask)) >>> 0)
        else if ('value' in t) mark = applyMark(t.op, t.value, t.mask, mark)
        curEnv = withCtMark(env, curEnv, mark)
        break
      case 'CT':
      case 'NOTRACK':
        if (t.kind === 'CT' && !t.notrack) break
        notrack = true
        // the rules after it in the table see the packet untracked (nf_ct_set IP_CT_UNTRACKED), unless it had an
        // entry already (a looped-back packet: notrack_tg leaves it)
        if (!curEnv.ct) curEnv = {...curEnv, ct: UNTRACKED_VIEW}
        break
      case 'LOG':
      case 'TRACE':
        break
      case 'unknown':
        ;(assumptions ??= []).push({rule, what: t.name === 'SET'
          ? `target SET ${t.args.join(' ')} is not modelled: the set's contents are taken as in the snapshot (this packet adds or deletes no entry) and the packet goes on`
          : `target ${t.name} is not modelled: assumed not to change the packet or end the chain`})
        break
    }
  }
  // the rules the trail holds are not needed by the scratch once copied (kept alive by the tables anyway)
  const out = nTrail === 0 ? NO_RULES : trail.slice(0, nTrail)
  const as = assumptions ?? NO_ASSUMPTIONS
  if (decided !== undefined) return {verdict: verdict!, rule: decided, target: decided.target, policy: false, trail: out, assumptions: as, packet: p, ctMark: mark, notrack}
  return {verdict: builtin.policy ?? 'ACCEPT', rule: undefined, target: undefined, policy: true, trail: out, assumptions: as, packet: p, ctMark: mark, notrack}
}
