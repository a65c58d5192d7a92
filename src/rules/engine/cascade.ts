// Random balancing with `-m statistic`: every outcome of the draws and its probability.
//
// The kernel draws independently at each rule the packet reaches (xt_statistic.c: random mode matches when
// (get_random_u32() & 0x7FFFFFFF) < probability * 2^31). Enumerating all 2^n match/no-match assignments of
// the n statistic rules a packet can reach, and running the real chains for each, gives the exact
// distribution with first-match-wins for terminating targets (DNAT, ACCEPT, a jump into a chain that
// terminates) and last-match-wins for non-terminating ones (MARK), because the chains are simply run.
// `--mode nth --every n` takes 1/n of the packets that reach it, which is what this distribution counts
// over many packets.
import type {IptablesRuleset, IptChain, IptRule, IptTable, Match} from '../../model/iptables.js'
import {evalMatch, type MatchEnv} from '../../dataplane/netfilter.js'
import type {Packet} from '../../dataplane/packet.js'
import {IptablesFirewall, type Firewall, type Hook} from './firewall.js'
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

/** Up to 2^MAX_EXACT assignments are enumerated; more statistic rules are sampled (and said so). */
const MAX_EXACT = 12
const SAMPLES = 4096

const ALWAYS: Match = {kind: 'comment', text: ''}
const NEVER: Match = {kind: 'proto', neg: true, proto: 'all', name: 'all'}

function statP(m: Match): number | undefined {
  if (m.kind !== 'statistic') return undefined
  const p = m.mode === 'random' ? m.probability : 1 / Math.max(1, m.every)
  return m.neg ? 1 - p : p
}

/** Could the rule's static matches (addresses, protocol, ports) match the packet? */
function couldMatch(rule: IptRule, pkt: Packet, env: MatchEnv): boolean {
  for (const m of rule.matches) {
    if (m.kind === 'addr' || m.kind === 'proto' || m.kind === 'port') {
      if (m.kind === 'addr' && m.dir === 'src') continue // the client address is only a representative
      if (evalMatch(m, pkt, env) === 'nomatch') return false
    }
  }
  return true
}

/** The statistic rules a packet can reach in the tables of the given hooks. */
export function reachableStatRules(rulesets: readonly IptablesRuleset[], hooks: readonly Hook[], pkt: Packet, env: MatchEnv, tables?: readonly string[]): StatRule[] {
  const out: StatRule[] = []
  const seen = new Set<IptRule>()
  for (const rs of rulesets) {
    for (const hook of hooks) {
      for (const tname of HOOK_TABLES[hook]) {
        if (tables && !tables.includes(tname)) continue
        const table = rs.tables.get(tname)
        const start = table?.chains.get(hook)
        if (!table || !start) continue
        const visited = new Set<string>()
        const queue: IptChain[] = [start]
        while (queue.length) {
          const chain = queue.shift()!
          if (visited.has(chain.name)) continue
          visited.add(chain.name)
          for (const r of chain.rules) {
            if (!couldMatch(r, pkt, env)) continue
            for (const m of r.matches) {
              const p = statP(m)
              if (p !== undefined && !seen.has(r)) {
                seen.add(r)
                out.push({rule: r, ruleset: rs, p})
              }
            }
            const t = r.target
            if (t && (t.kind === 'jump' || t.kind === 'goto')) {
              const next = table.chains.get(t.chain)
              if (next) queue.push(next)
            }
          }
        }
      }
    }
  }
  return out
}

/** A copy of the rulesets where each given statistic rule always or never matches. */
function variant(rulesets: readonly IptablesRuleset[], fixed: ReadonlyMap<IptRule, boolean>): {fw: IptablesFirewall; orig: Map<IptRule, IptRule>} {
  const orig = new Map<IptRule, IptRule>()
  const out = rulesets.map((rs) => {
    const tables = new Map<string, IptTable>()
    for (const [tn, t] of rs.tables) {
      const chains = new Map<string, IptChain>()
      for (const [cn, c] of t.chains) {
        if (!c.rules.some((r) => fixed.has(r))) {
          chains.set(cn, c)
          continue
        }
        const rules = c.rules.map((r) => {
          const v = fixed.get(r)
          if (v === undefined) return r
          const copy: IptRule = {...r, matches: r.matches.map((m) => (m.kind === 'statistic' ? (v ? ALWAYS : NEVER) : m))}
          orig.set(copy, r)
          return copy
        })
        chains.set(cn, {...c, rules})
      }
      tables.set(tn, {...t, chains})
    }
    return {...rs, tables}
  })
  return {fw: new IptablesFirewall(out), orig}
}

export interface Enumeration<T> {
  readonly outcomes: readonly Outcome<T>[]
  readonly stat: readonly StatRule[]
  /** true when the statistic rules were too many to enumerate and the distribution was sampled */
  readonly sampled: boolean
}

/**
 * Runs `run` once per assignment of the statistic rules (on a firewall where each is fixed to match or not)
 * and returns the outcomes with their probabilities, merged by `key`.
 */
export function enumerate<T>(
  rulesets: readonly IptablesRuleset[],
  stat: readonly StatRule[],
  run: (fw: Firewall, orig: (r: IptRule) => IptRule) => T,
  key: (v: T) => string,
): Enumeration<T> {
  const merged = new Map<string, {value: T; p: number}>()
  const add = (v: T, p: number) => {
    const k = key(v)
    const cur = merged.get(k)
    if (cur) cur.p += p
    else merged.set(k, {value: v, p})
  }
  const exec = (assign: boolean[]) => {
    const fixed = new Map<IptRule, boolean>()
    stat.forEach((s, i) => fixed.set(s.rule, assign[i]!))
    const {fw, orig} = variant(rulesets, fixed)
    return run(fw, (r) => orig.get(r) ?? r)
  }
  if (stat.length === 0) {
    add(run(new IptablesFirewall(rulesets), (r) => r), 1)
    return {outcomes: [...merged.values()], stat, sampled: false}
  }
  if (stat.length <= MAX_EXACT) {
    for (let bits = 0; bits < 1 << stat.length; bits++) {
      const assign = stat.map((_, i) => (bits & (1 << i)) !== 0)
      const p = stat.reduce((acc, s, i) => acc * (assign[i] ? s.p : 1 - s.p), 1)
      if (p === 0) continue
      add(exec(assign), p)
    }
    return {outcomes: [...merged.values()], stat, sampled: false}
  }
  // deterministic sampling (a fixed-seed LCG: the same snapshot gives the same report)
  let seed = 0x2545f491
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 2 ** 32
  }
  for (let k = 0; k < SAMPLES; k++) add(exec(stat.map((s) => rnd() < s.p)), 1 / SAMPLES)
  return {outcomes: [...merged.values()], stat, sampled: true}
}
