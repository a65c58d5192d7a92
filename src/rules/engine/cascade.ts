// Random balancing with `-m statistic`: every outcome of the draws and its probability.
//
// The kernel draws independently at each rule the packet reaches (xt_statistic.c: random mode matches when
// (get_random_u32() & 0x7FFFFFFF) < probability * 2^31). `--mode nth --every n` takes 1/n of the packets that
// reach it, which is what this distribution counts over many packets.
//
// The real chains are run, with the draws of the statistic rules forced (MatchEnv.draw), so every target keeps
// its meaning: first-match-wins for terminating targets (DNAT, ACCEPT, a jump into a chain that terminates) and
// last-match-wins for non-terminating ones (MARK). Only the draws a packet actually reaches are branched on:
//   - a cascade of n rules with terminating targets (kube-proxy's KUBE-SVC chains, L4xNAT DNAT) is explored in
//     n + 1 runs, each the outcome "rules 1..k-1 did not match, rule k did", with probability
//     p_k * (1 - p_1) ... (1 - p_(k-1)) (and the fall-through (1 - p_1) ... (1 - p_n));
//   - a block of MARK --set-mark rules with one mask (last match wins) is computed analytically: n + 1 runs, the
//     outcome "rule k is the last to match" with probability p_k * (1 - p_(k+1)) ... (1 - p_n);
//   - any other shape is explored draw by draw (every reachable combination once), up to MAX_RUNS runs, and
//     sampled beyond (a fixed-seed draw per rule and sample: the same snapshot gives the same report).
import type {IptablesRuleset, IptRule, Match} from '../../model/iptables.js'
import {evalMatch, type ChainCheckpoint, type MatchEnv} from '../../dataplane/netfilter.js'
import {candidateRules, jumpId, tableGraph} from '../../dataplane/chain-index.js'
import type {Packet} from '../../dataplane/packet.js'
import {IptablesFirewall, type Firewall, type Hook, type HookResult, type HookState} from './firewall.js'
import {HOOK_TABLES} from './firewall.js'

export interface StatRule {
  readonly rule: IptRule
  readonly ruleset: IptablesRuleset
  /** probability that its statistic match matches a packet that reaches it */
  readonly p: number
}

export interface Outcome<T> {
  readonly value: T
  readonly p: number
}

/** At most this many runs explore a cascade exactly (2^12: any 12 statistic rules); beyond, it is sampled. */
const MAX_RUNS = 4096
const SAMPLES = 4096

/**
 * Cascades of at least this many statistic rules resume runs from checkpoints; smaller ones replay each run
 * from the top. Measured on kube-proxy 100k (cascades of <= 20): both as fast, but the checkpoints outlive
 * young-generation collections (world() ended with ~20 MB more heap, RSS +14 MB); one cascade of 4,000
 * endpoints: 162 ms resumed, 386 ms replayed (n^2/2 draws). Tests lower it to check both ways agree.
 */
export const RESUME = {minStat: 64}

type StatMatch = Extract<Match, {kind: 'statistic'}>

function statP(m: Match): number | undefined {
  if (m.kind !== 'statistic') return undefined
  const p = m.mode === 'random' ? m.probability : 1 / Math.max(1, m.every)
  return m.neg ? 1 - p : p
}

/** The statistic rules a packet can reach in the tables of the given hooks. */
export function reachableStatRules(rulesets: readonly IptablesRuleset[], hooks: readonly Hook[], pkt: Packet, env: MatchEnv, tables?: readonly string[]): StatRule[] {
  const out: StatRule[] = []
  // a rule is met once per table walk: only a second hook (or ruleset) can meet it again
  let seen: Set<IptRule> | undefined
  const many = rulesets.length * hooks.length > 1
  for (const rs of rulesets) {
    for (const hook of hooks) {
      for (const tname of HOOK_TABLES[hook]) {
        if (tables && !tables.includes(tname)) continue
        const table = rs.tables.get(tname)
        if (!table || !table.chains.has(hook)) continue
        // breadth first from the hook's chain, each chain once (chains by number, jumps resolved once: no name
        // lookups; written out rather than with jumpWalk's callbacks: a cascade of every DNAT service walks here)
        const g = tableGraph(table)
        const s = g.ids.get(hook)
        if (s === undefined || s >= g.chains.length) continue
        const walk = ++g.walks
        const {chains, stamp} = g
        const queue: number[] = [s]
        stamp[s] = walk
        for (let qi = 0; qi < queue.length; qi++) {
          const id = queue[qi]!
          // rules whose destination or port cannot fit the packet are left out by the chain index
          const rules = candidateRules(chains[id]!.rules, pkt)
          rules: for (let ri = 0; ri < rules.length; ri++) {
            const r = rules[ri]!
            // the rule's static matches (addresses, protocol, ports) must fit; its first statistic match draws
            let p: number | undefined
            const matches = r.matches
            for (let mi = 0; mi < matches.length; mi++) {
              const m = matches[mi]!
              if (m.kind === 'addr') {
                // the client address is only a representative
                if (m.dir !== 'src' && evalMatch(m, pkt, env) === 'nomatch') continue rules
              } else if (m.kind === 'proto' || m.kind === 'port') {
                if (evalMatch(m, pkt, env) === 'nomatch') continue rules
              } else if (m.kind === 'statistic' && p === undefined) p = statP(m)
            }
            if (p !== undefined && (!many || !(seen ??= new Set()).has(r))) {
              if (many) seen!.add(r)
              out.push({rule: r, ruleset: rs, p})
            }
            const t = r.target
            if (t && (t.kind === 'jump' || t.kind === 'goto')) {
              // the chain it jumps to (undeclared chains are not visited)
              const next = jumpId(g, id, r)
              if (next < 0 || next >= chains.length || stamp[next] === walk) continue
              stamp[next] = walk
              queue.push(next)
            }
          }
        }
      }
    }
  }
  return out
}

export interface Enumeration<T> {
  readonly outcomes: readonly Outcome<T>[]
  readonly stat: readonly StatRule[]
  /** true when the statistic rules were too many to enumerate and the distribution was sampled */
  readonly sampled: boolean
}

type Draw = (rule: IptRule, m: StatMatch) => boolean | undefined

/**
 * `env` with the cascade explorer's draws (MatchEnv's fields written out: a spread that adds keys takes V8's
 * slow path, ~1 µs a copy; the iptables interpreter reads no other field).
 */
function withDraw(env: MatchEnv, draw: Draw, random = env.random, checkpoint?: MatchEnv['checkpoint']): MatchEnv {
  return {iif: env.iif, oif: env.oif, ct: env.ct, ipvs: env.ipvs, addrType: env.addrType, random, nthCounters: env.nthCounters, draw, checkpoint, ipsets: env.ipsets, reverseRoutes: env.reverseRoutes}
}

/** The firewall of `base`, with the statistic draws decided by `draw`; `seen` is told each hook's result. */
function drawingFirewall(base: IptablesFirewall, draw: Draw, seen?: (r: HookResult) => void): Firewall {
  const fw = Object.create(base) as IptablesFirewall
  // the runs of a cascade pass the same env each time: its copy with `draw` is made once
  let lastEnv: MatchEnv | undefined
  let lastDrawEnv: MatchEnv | undefined
  Object.defineProperty(fw, 'runHook', {
    value: (hook: Hook, packet: Packet, env: MatchEnv, nat: boolean): HookResult => {
      if (env !== lastEnv || !lastDrawEnv) {
        lastEnv = env
        lastDrawEnv = withDraw(env, draw)
      }
      const r = base.runHook(hook, packet, lastDrawEnv, nat)
      seen?.(r)
      return r
    },
  })
  return fw
}

/** One run: its value, probability and the stat rules (by index in `stat`) whose draw matched. */
interface Leaf<T> {
  readonly value: T
  readonly p: number
  /** the highest index into `stat` of the rules drawn as matching (-1: none) */
  readonly on: number
  /** when two or more rules were drawn as matching: their indices, highest first (no array per leaf otherwise) */
  readonly ons: readonly number[] | undefined
}

function onLength(l: Leaf<unknown>): number {
  return l.ons ? l.ons.length : l.on < 0 ? 0 : 1
}

/**
 * The order of the old 2^n enumeration (assignment as a binary number, rule i = bit i, first appearance wins),
 * with the rules a leaf leaves undrawn taken as not matching. (The old enumeration skipped assignments of zero
 * probability, so with a `--probability 1` rule that the leaf never reaches it listed that leaf later.)
 */
function byAssignment(a: Leaf<unknown>, b: Leaf<unknown>): number {
  const an = onLength(a)
  const bn = onLength(b)
  const n = Math.min(an, bn)
  for (let i = 0; i < n; i++) {
    const x = a.ons ? a.ons[i]! : a.on
    const y = b.ons ? b.ons[i]! : b.on
    if (x !== y) return x - y
  }
  return an - bn
}

/**
 * The leaves in byAssignment order, as Array.prototype.sort (stable) orders them: a few by insertion in place
 * (sort copies the array into a work array first; 2,265 cascades on kube-proxy 100k).
 */
function sortLeaves<T>(leaves: Leaf<T>[]): Leaf<T>[] {
  if (leaves.length > SCAN_MAX) return leaves.sort(byAssignment)
  // runs of strictly descending leaves reversed first (no two of a run compare equal: a stable sort puts them in that
  // reversed order): the explorer makes a first-match cascade's runs last branch first, which insertion sort would
  // otherwise move one step at a time (n^2/2 comparisons)
  for (let i = 0; i < leaves.length - 1; ) {
    let j = i
    while (j + 1 < leaves.length && byAssignment(leaves[j]!, leaves[j + 1]!) > 0) j++
    for (let a = i, b = j; a < b; a++, b--) {
      const x = leaves[a]!
      leaves[a] = leaves[b]!
      leaves[b] = x
    }
    i = j + 1
  }
  for (let i = 1; i < leaves.length; i++) {
    const x = leaves[i]!
    let j = i - 1
    while (j >= 0 && byAssignment(leaves[j]!, x) > 0) {
      leaves[j + 1] = leaves[j]!
      j--
    }
    leaves[j + 1] = x
  }
  return leaves
}

/**
 * Runs `run` once per reachable outcome of the draws of the statistic rules `stat` and returns the outcomes
 * with their probabilities, merged by `key` (in the order of the assignments, rule i as bit i of a counter;
 * keys are compared as Map keys are: a string, or an object that stands for a class of values).
 * `orig` maps a rule seen by `run` to the ruleset's rule (the identity: the rulesets are not copied).
 */
export function enumerate<T>(
  rulesets: readonly IptablesRuleset[],
  stat: readonly StatRule[],
  run: (fw: Firewall, orig: (r: IptRule) => IptRule) => T,
  key: (v: T) => unknown,
): Enumeration<T> {
  const base = firewallOf(rulesets)
  if (stat.length === 0) return {outcomes: [{value: run(base, sameRule), p: 1}], stat, sampled: false}
  const index = new StatIndex(stat)
  const leaves = lastMatchBlock(base, stat, index, run) ?? explore(base, stat, index, run)
  if (leaves) return {outcomes: merge(sortLeaves(leaves), key), stat, sampled: false}
  return {outcomes: merge(sample(base, stat, index, run), key), stat, sampled: true}
}

/** Up to this many statistic rules, a rule's index in `stat` is found by a scan, and outcomes are merged in a list. */
const SCAN_MAX = 32

/**
 * A rule's index in `stat` (the last, if one is listed twice). Few rules (kube-proxy: <= 20 per cascade, 2,265
 * cascades) are scanned for: a Map per cascade cost ~1.7 MB of growing tables on a kube-proxy 100k dump.
 */
class StatIndex {
  private readonly map: Map<IptRule, number> | undefined
  /** no rule is listed twice: a hint that names the rule is its index */
  private readonly unique: boolean

  constructor(private readonly stat: readonly StatRule[]) {
    let unique = true
    if (stat.length > SCAN_MAX) {
      const map = new Map<IptRule, number>()
      for (let i = 0; i < stat.length; i++) map.set(stat[i]!.rule, i)
      this.map = map
    } else {
      for (let i = 1; i < stat.length && unique; i++) for (let j = 0; j < i; j++) if (stat[j]!.rule === stat[i]!.rule) unique = false
    }
    this.unique = unique
  }

  /** `hint`: where the rule is likely listed (the explorer's k-th draw is mostly stat[k]'s) */
  get(rule: IptRule, hint = -1): number | undefined {
    if (this.map) return this.map.get(rule)
    const stat = this.stat
    if (this.unique && hint >= 0 && hint < stat.length && stat[hint]!.rule === rule) return hint
    for (let i = stat.length - 1; i >= 0; i--) if (stat[i]!.rule === rule) return i
    return undefined
  }

  has(rule: IptRule): boolean {
    return this.get(rule) !== undefined
  }
}

/** `orig` of the runs: the rulesets are not copied (one function for every run: no closure per run) */
const sameRule = (r: IptRule): IptRule => r

/** Per ruleset, the firewall of that ruleset alone (its per-hook table lists are found once, not per cascade). */
const firewalls = new WeakMap<IptablesRuleset, IptablesFirewall>()

/**
 * The firewall the cascades of `rulesets` run: one per ruleset when there is one (the DNAT services of a
 * kube-proxy dump enumerate 2,265 cascades of one ruleset). It holds no state a run leaves behind: its
 * per-hook table lists depend on the ruleset only, and the hook state it keeps for checkpoints is set before
 * each table's chain runs (a nested enumeration runs between runHook calls, never during one).
 */
function firewallOf(rulesets: readonly IptablesRuleset[]): IptablesFirewall {
  if (rulesets.length !== 1) return new IptablesFirewall(rulesets)
  const rs = rulesets[0]!
  let fw = firewalls.get(rs)
  if (!fw) {
    fw = new IptablesFirewall([rs])
    firewalls.set(rs, fw)
  }
  return fw
}

function merge<T>(leaves: readonly {value: T; p: number}[], key: (v: T) => unknown): Outcome<T>[] {
  if (leaves.length <= SCAN_MAX) {
    // a few outcomes: a list searched by key as a Map compares keys (SameValueZero), in the order of first appearance
    const keys: unknown[] = []
    const out: {value: T; p: number}[] = []
    for (let li = 0; li < leaves.length; li++) {
      const l = leaves[li]!
      if (l.p === 0) continue
      const k = key(l.value)
      let j = 0
      while (j < keys.length && !sameValueZero(keys[j], k)) j++
      if (j < keys.length) out[j]!.p += l.p
      else {
        keys.push(k)
        out.push({value: l.value, p: l.p})
      }
    }
    return out
  }
  const merged = new Map<unknown, {value: T; p: number}>()
  for (const l of leaves) {
    if (l.p === 0) continue
    const k = key(l.value)
    const cur = merged.get(k)
    if (cur) cur.p += l.p
    else merged.set(k, {value: l.value, p: l.p})
  }
  return [...merged.values()]
}

function sameValueZero(a: unknown, b: unknown): boolean {
  return a === b || (a !== a && b !== b)
}

/** leafOf for the first `n` draws of `base` with the one at `k` the other way. */
function leafOfForced<T>(value: T, p: number, base: readonly Drawn[], n: number, k: number): Leaf<T> {
  let first = -1
  let more = false
  for (let j = 0; j < n; j++) {
    const x = base[j]!
    if (j === k ? x.d : !x.d) continue
    if (first < 0) first = x.i
    else if (x.i !== first) more = true
  }
  if (!more) return {value, p, on: first, ons: undefined}
  const on = new Set<number>()
  for (let j = 0; j < n; j++) if (j === k ? !base[j]!.d : base[j]!.d) on.add(base[j]!.i)
  const ons = [...on].sort((a, b) => b - a)
  return {value, p, on: ons[0]!, ons}
}

/** A leaf: the rules (indices) whose draw matched, each once, highest first. */
function leafOf<T>(value: T, p: number, drawn: readonly {i: number; d: boolean}[]): Leaf<T> {
  let first = -1
  let more = false
  for (let k = 0; k < drawn.length; k++) {
    const x = drawn[k]!
    if (!x.d) continue
    if (first < 0) first = x.i
    else if (x.i !== first) more = true
  }
  if (!more) return {value, p, on: first, ons: undefined}
  const ons = [...new Set(drawn.filter((x) => x.d).map((x) => x.i))].sort((a, b) => b - a)
  return {value, p, on: ons[0]!, ons}
}

/** A draw a run met: the stat rule (index), its probability, the decision, and the checkpoint before its rule. */
interface Drawn {
  readonly i: number
  readonly p: number
  readonly d: boolean
  readonly cp: Checkpoint | undefined
}

/** Where a run stood before a rule with a statistic match: in runHook call `call`, after `draws` draws. */
interface Checkpoint {
  readonly call: CallInfo
  readonly draws: number
  readonly at: HookState
  readonly chain: ChainCheckpoint
}

/** One runHook call of a run: its arguments, the draws before it and the results of the calls before it. */
interface CallInfo {
  readonly n: number
  readonly hook: Hook
  readonly packet: Packet
  readonly env: MatchEnv
  readonly nat: boolean
  readonly draws: number
  readonly prior: readonly HookResult[]
}

/** A run still to make: the draws of `base` before `k` as they were, draw `k` the other way, the rest likelier. */
interface Todo {
  readonly base: readonly Drawn[]
  readonly k: number
  readonly p: number
}

const NO_DRAWN: readonly Drawn[] = []
/** `drawn` of a run whose draws are all forced ones so far (not written: they are `forcedBase`'s, see explore) */
const FORCED_ONLY: Drawn[] = Object.freeze([]) as unknown as Drawn[]
const NO_RESULTS: readonly HookResult[] = []

function firstStatistic(rule: IptRule): Match | undefined {
  const ms = rule.matches
  for (let i = 0; i < ms.length; i++) if (ms[i]!.kind === 'statistic') return ms[i]
  return undefined
}

function statCount(rule: IptRule): number {
  let n = 0
  for (const m of rule.matches) if (m.kind === 'statistic') n++
  return n
}

/**
 * Every reachable combination of draws, each run once: a run takes the likelier branch at each draw it meets
 * beyond the forced ones, and queues the other branch. undefined when more than MAX_RUNS runs would be needed.
 *
 * A run that differs from an earlier one from draw k on does not replay the hooks from the top: `run` is
 * called again (it is a deterministic function of what runHook returns), its runHook calls before the one
 * that met draw k answer with the earlier run's results, and that call resumes the earlier run's hook from
 * its state just before the rule of draw k (IptablesFirewall.resumeHook). Once a hook has drawn from
 * env.random, or when nth counters are kept, runs replay from the top (that state is not in a checkpoint).
 * A cascade of n endpoints costs n short runs instead of ~n^2/2 draws (used from RESUME.minStat rules on).
 */
function explore<T>(base: IptablesFirewall, stat: readonly StatRule[], index: StatIndex, run: (fw: Firewall, orig: (r: IptRule) => IptRule) => T): Leaf<T>[] | undefined {
  let forcedBase: readonly Drawn[] = NO_DRAWN
  let forcedK = -1
  let drawn: Drawn[] = []
  let latest: Checkpoint | undefined
  // the runHook call in progress (its CallInfo is made when a checkpoint needs it)
  let callN = 0
  let callHook: Hook = 'PREROUTING'
  let callPacket: Packet | undefined
  let callEnv: MatchEnv | undefined
  let callNat = false
  let callDraws = 0
  let call: CallInfo | undefined
  // the runHook calls of the current run, their results, and the checkpoint it resumes from
  let calls = 0
  let results: HookResult[] | undefined
  let resume: Checkpoint | undefined
  let replayOnly = false
  // no checkpoints (fewer statistic rules than RESUME.minStat): every run replays from the top, no draw has a
  // checkpoint, and a run whose draws are all forced ones keeps none (see `forced`)
  const plain = stat.length < RESUME.minStat
  // while `drawn` is FORCED_ONLY: the run's draws so far are `forced` draws that are forcedBase's (the same rule
  // and probability), the one at forcedK the other way. A run that only meets forced draws (kube-proxy: every
  // run but a cascade's first) keeps no array of its draws; the first other draw writes them out.
  let forced = 0
  const onDrawn: (Drawn | undefined)[] = new Array(stat.length)
  const offDrawn: (Drawn | undefined)[] = new Array(stat.length)
  // without a checkpoint a draw is its rule, probability and decision: one object each, shared by the runs
  // (a kube-proxy 100k dump meets ~250,000 draws); kept per rule for the statistic match last asked about
  const shared = (i: number, p: number, d: boolean): Drawn => {
    const known = d ? onDrawn[i] : offDrawn[i]
    if (known !== undefined && known.p === p) return known
    const x: Drawn = {i, p, d, cp: undefined}
    if (d) onDrawn[i] = x
    else offDrawn[i] = x
    return x
  }
  /** `drawn` written out (a run with forced draws only so far, meeting another draw or a different rule). */
  const writeOut = () => {
    const out: Drawn[] = []
    for (let k = 0; k < forced; k++) {
      const b = forcedBase[k]!
      out.push(k < forcedK ? b : shared(b.i, b.p, !b.d))
    }
    drawn = out
  }
  // the draw's probability: its StatRule's when the match is the rule's first statistic match (StatRule.p is statP
  // of that one), read instead of derived again at each draw (~250,000 draws on a kube-proxy 100k dump)
  const probOf = (i: number, m: StatMatch): number => (firstStatistic(stat[i]!.rule) === m ? stat[i]!.p : statP(m)!)
  const draw: Draw = (rule, m) => {
    if (drawn === FORCED_ONLY) {
      const k = forced
      const i = index.get(rule, k)
      if (i === undefined) return undefined
      if (k <= forcedK) {
        const b = forcedBase[k]!
        if (b.i === i && b.p === probOf(i, m)) {
          forced++
          return k < forcedK ? b.d : !b.d
        }
      }
      writeOut()
    }
    const k = drawn.length
    const i = index.get(rule, k)
    if (i === undefined) return undefined
    const p = probOf(i, m)
    const d = k < forcedK ? forcedBase[k]!.d : k === forcedK ? !forcedBase[k]!.d : p >= 1
    if (latest === undefined) drawn.push(shared(i, p, d))
    else drawn.push({i, p, d, cp: latest})
    return d
  }
  const save = (chain: ChainCheckpoint) => {
    call ??= {n: callN, hook: callHook, packet: callPacket!, env: callEnv!, nat: callNat, draws: callDraws, prior: callN === 0 ? NO_RESULTS : results!.slice(0, callN)}
    latest = {call, draws: drawn.length, at: base.hookState(), chain}
  }
  // a checkpoint before a stat rule whose draws are not all forced: the other branch of one resumes there
  const checkpoint = (rule: IptRule) => (index.has(rule) && drawn.length + statCount(rule) - 1 > forcedK ? save : undefined)
  let lastEnv: MatchEnv | undefined
  let lastDrawEnv: MatchEnv | undefined
  const fw = Object.create(base) as IptablesFirewall
  Object.defineProperty(fw, 'runHook', {
    value: (hook: Hook, packet: Packet, env: MatchEnv, nat: boolean): HookResult => {
      const n = calls++
      const cp = resume
      if (cp && n < cp.call.n) {
        // the earlier run's result (kept for the prior results of a checkpoint this run makes later)
        const known = cp.call.prior[n]!
        if (results) results.push(known)
        else results = [known]
        return known
      }
      if (env !== lastEnv || !lastDrawEnv) {
        lastEnv = env
        // random draws and nth counters are state a checkpoint does not hold: such runs replay from the top
        lastDrawEnv = env.nthCounters || replayOnly || plain ? withDraw(env, draw) : withDraw(env, draw, () => ((replayOnly = true), env.random()), checkpoint)
      }
      callN = n
      callHook = hook
      callPacket = packet
      callEnv = env
      callNat = nat
      callDraws = drawn.length
      call = undefined
      let r: HookResult
      if (cp && n === cp.call.n && cp.call.hook === hook && cp.call.packet === packet && cp.call.env === env && cp.call.nat === nat && !replayOnly && lastDrawEnv.checkpoint) {
        // the draws before the checkpoint, as the earlier run made them
        if (drawn.length === 0) drawn = forcedBase.slice(0, cp.draws)
        else for (let k = drawn.length; k < cp.draws; k++) drawn.push(forcedBase[k]!)
        r = base.resumeHook(cp.at, cp.chain)
      } else r = base.runHook(hook, packet, lastDrawEnv, nat)
      resume = undefined
      // (the results are for checkpoints: none without them)
      if (!plain) {
        if (results) results.push(r)
        else results = [r]
      }
      return r
    },
  })
  const leaves: Leaf<T>[] = []
  // the runs still to make (Todo's fields in three stacks: no object per todo)
  const todoBase: (readonly Drawn[])[] = [NO_DRAWN]
  const todoK: number[] = [-1]
  const todoP: number[] = [1]
  while (todoBase.length) {
    if (leaves.length >= MAX_RUNS) return undefined
    // the run still to make (a Todo, from the three stacks)
    const nextBase = todoBase.pop()!
    const nextK = todoK.pop()!
    const nextP = todoP.pop()!
    forcedBase = nextBase
    forcedK = nextK
    calls = 0
    results = undefined
    latest = undefined
    // resume from the checkpoint before the rule of the draw that goes the other way, when it has one
    resume = nextK >= 0 && !replayOnly ? nextBase[nextK]!.cp : undefined
    forced = 0
    drawn = plain && !resume && nextK >= 0 ? FORCED_ONLY : resume && resume.call.draws > 0 ? nextBase.slice(0, resume.call.draws) : []
    const value = run(fw, sameRule)
    if (drawn === FORCED_ONLY) {
      // forced draws only (at most forcedK + 1 of them): nothing left to branch on, their probability is nextP
      leaves.push(leafOfForced(value, nextP, forcedBase, forced, forcedK))
      continue
    }
    let p = nextP
    for (let k = nextK + 1; k < drawn.length; k++) {
      const x = drawn[k]!
      // the branch not taken: the draws so far, then the other decision here
      const other = x.d ? 1 - x.p : x.p
      if (other > 0 && p > 0) {
        todoBase.push(drawn)
        todoK.push(k)
        todoP.push(p * other)
      }
      // the forced draws' probabilities are in next.p already
      p *= x.d ? x.p : 1 - x.p
    }
    leaves.push(leafOf(value, p, drawn))
  }
  return leaves
}

/**
 * The common MARK shape, computed analytically: the statistic rules are one block of consecutive rules of one
 * chain, each `-j MARK --set-(x)mark v/M` with the same mask M (v inside M) and no match on the packet mark,
 * so the last rule of the block that matches decides the mark and nothing else differs between outcomes.
 * Runs: one with every draw failing, and one per rule with only that rule's draw matching; each must meet
 * the same draws in the same order. undefined when the shape does not hold.
 */
function lastMatchBlock<T>(base: IptablesFirewall, stat: readonly StatRule[], index: StatIndex, run: (fw: Firewall, orig: (r: IptRule) => IptRule) => T): Leaf<T>[] | undefined {
  if (stat.length < 2) return undefined
  const first = stat[0]!
  const rs = first.ruleset
  // the targets first: most cascades (DNAT, jumps) fail there, before any name is looked up
  const t0 = first.rule.target
  if (t0?.kind !== 'MARK') return undefined
  const chain = rs.tables.get(first.rule.table)?.chains.get(first.rule.chain)
  if (!chain) return undefined
  let mask: number | undefined
  for (const s of stat) {
    const r = s.rule
    if (s.ruleset !== rs || r.table !== first.rule.table || r.chain !== first.rule.chain) return undefined
    const t = r.target
    if (t?.kind !== 'MARK' || (t.op !== 'set' && t.op !== 'xset') || (t.value & ~t.mask) !== 0) return undefined
    if (mask === undefined) mask = t.mask
    else if (mask !== t.mask) return undefined
    let stats = 0
    for (const m of r.matches) {
      if (m.kind === 'mark' && m.module === 'mark') return undefined
      if (m.kind === 'statistic') stats++
    }
    if (stats !== 1) return undefined
  }
  const lo = Math.min(...stat.map((s) => s.rule.index))
  const hi = Math.max(...stat.map((s) => s.rule.index))
  if (hi - lo + 1 !== stat.length || chain.rules[lo - 1] === undefined) return undefined
  for (let k = lo; k <= hi; k++) if (!index.has(chain.rules[k - 1]!)) return undefined

  let on = -1
  const drawn: number[] = []
  let trail = new Set<IptRule>()
  const fw = drawingFirewall(
    base,
    (rule) => {
      const i = index.get(rule)
      if (i === undefined) return undefined
      drawn.push(i)
      return i === on
    },
    (r) => {
      for (const x of r.runs) for (const t of x.result.trail) trail.add(t)
    },
  )
  const once = (i: number) => {
    on = i
    drawn.length = 0
    trail = new Set()
    return run(fw, sameRule)
  }
  const none = once(-1)
  const order = [...drawn]
  // each rule met once, and in chain order
  if (new Set(order).size !== order.length) return undefined
  for (let k = 1; k < order.length; k++) if (stat[order[k]!]!.rule.index <= stat[order[k - 1]!]!.rule.index) return undefined
  const runs: {i: number; value: T; matched: boolean}[] = []
  for (const i of order) {
    const value = once(i)
    if (drawn.length !== order.length || drawn.some((x, k) => x !== order[k])) return undefined
    runs.push({i, value, matched: trail.has(stat[i]!.rule)})
  }
  // rules whose other matches fail never match: their draws change nothing
  const live = runs.filter((x) => x.matched)
  const leaves: Leaf<T>[] = []
  let after = 1
  for (let k = live.length - 1; k >= 0; k--) {
    const x = live[k]!
    const p = stat[x.i]!.p
    // "rule k is the last to match": k matches, the live rules after it do not, the others are free
    leaves.push({value: x.value, p: p * after, on: x.i, ons: undefined})
    after *= 1 - p
  }
  leaves.push({value: none, p: after, on: -1, ons: undefined})
  return leaves
}

/** More than MAX_RUNS outcomes: SAMPLES runs with a fixed-seed draw per statistic rule (the same each report). */
function sample<T>(base: IptablesFirewall, stat: readonly StatRule[], index: StatIndex, run: (fw: Firewall, orig: (r: IptRule) => IptRule) => T): {value: T; p: number}[] {
  let seed = 0x2545f491
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 2 ** 32
  }
  let assign: boolean[] = []
  const fw = drawingFirewall(base, (rule) => {
    const i = index.get(rule)
    return i === undefined ? undefined : assign[i]
  })
  const out: {value: T; p: number}[] = []
  for (let k = 0; k < SAMPLES; k++) {
    assign = stat.map((s) => rnd() < s.p)
    out.push({value: run(fw, sameRule), p: 1 / SAMPLES})
  }
  return out
}
