// A host's packet filter as the rules see it: run one packet through every table registered at a hook, in the
// kernel's priority order, and build fixes in the ruleset's own syntax.
//
// Hook/priority table (include/uapi/linux/netfilter_ipv4.h, enum nf_ip_hook_priorities):
//   NF_IP_PRI_RAW -300, NF_IP_PRI_CONNTRACK -200, NF_IP_PRI_MANGLE -150, NF_IP_PRI_NAT_DST -100,
//   NF_IP_PRI_FILTER 0, NF_IP_PRI_SECURITY 50, NF_IP_PRI_NAT_SRC 100.
// Tables register at (net/ipv4/netfilter/iptable_*.c valid_hooks):
//   raw: PREROUTING OUTPUT; mangle: all five; nat: PREROUTING INPUT OUTPUT POSTROUTING;
//   filter and security: INPUT FORWARD OUTPUT.
// IPVS (net/netfilter/ipvs/ip_vs_core.c ip_vs_ops4): ip_vs_remote_request4 at LOCAL_IN NAT_SRC-1 (after
// filter INPUT), ip_vs_reply4 at FORWARD 100 (after filter FORWARD); its transmitted packets are sent
// through LOCAL_OUT (ip_vs_xmit.c ip_vs_send_or_cont / ip_vs_nat_send_or_cont).
//
// This module is the seam for nftables (src/model/nft.ts, issue 7): an nft implementation of `Firewall`
// runs nft base chains at their hook and priority, and renders fixes in nft syntax. Rules only use this
// interface, packet selectors and decisions, never iptables text, except through `fixer`.
import {formatPrefix, hostPrefix, type IpAddr, type Prefix} from '../../model/ip.js'
import type {IptablesRuleset, IptChain, IptRule, IptTable, Target} from '../../model/iptables.js'
import type {Loc} from '../../model/source.js'
import {runChain, type Assumption, type ChainCheckpoint, type ChainResult, type MatchEnv} from '../../dataplane/netfilter.js'
import type {Packet} from '../../dataplane/packet.js'
import {NF_IP_PRI} from '../../dataplane/hooks.js'
import {formatProbability, specTokens, statelessSpec, withMatch, withOption, joinSpec, type FixOp, type IptBinary} from './fix.js'

export type Hook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING'

export const HOOK_TABLES: Readonly<Record<Hook, readonly string[]>> = {
  PREROUTING: ['raw', 'mangle', 'nat'],
  INPUT: ['mangle', 'filter', 'security', 'nat'],
  FORWARD: ['mangle', 'filter', 'security'],
  OUTPUT: ['raw', 'mangle', 'nat', 'filter', 'security'],
  POSTROUTING: ['mangle', 'nat'],
}

/** Where a packet's fate was decided: a rule, or the policy of a builtin chain. */
export interface Decision {
  readonly ruleset: IptablesRuleset
  readonly bin: IptBinary
  readonly table: string
  /** the chain holding the rule; for a policy, the builtin chain */
  readonly chain: string
  readonly rule?: IptRule
  readonly policy: boolean
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT' | 'QUEUE' | 'NAT'
  readonly target?: Target
  /** the rule's line, or the `:CHAIN POLICY` line */
  readonly loc: Loc
  /** the decision rests on a match the snapshot cannot decide (ipset, limit, ...) */
  readonly assumed: boolean
  /** a policy decision reached by a `-g` rule of the builtin chain (the rules after it were not walked) */
  readonly gotoFrom?: IptRule
}

export interface TableRun {
  readonly table: string
  readonly bin: IptBinary
  readonly result: ChainResult
  readonly decision: Decision
}

export interface HookResult {
  readonly hook: Hook
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT' | 'QUEUE'
  /** the deciding rule of a DROP/REJECT/QUEUE verdict */
  readonly decision?: Decision
  readonly runs: readonly TableRun[]
  /** the packet after marks and NAT */
  readonly packet: Packet
  readonly ctMark: number
  readonly notrack: boolean
  /** the NAT binding made at this hook, if any */
  readonly nat?: {readonly kind: 'DNAT' | 'SNAT' | 'MASQUERADE' | 'REDIRECT'; readonly decision: Decision; readonly to?: {readonly ip?: IpAddr; readonly port?: number}}
  readonly assumptions: readonly Assumption[]
}

/** The fields a fix rule matches on, rendered in the ruleset's syntax by the fixer. */
export interface PacketSelector {
  readonly src?: Prefix
  readonly dst?: Prefix
  readonly proto?: 'tcp' | 'udp' | 'sctp'
  readonly dport?: number
  readonly sport?: number
  readonly mark?: number
  readonly oif?: string
}

export interface FirewallFixer {
  /** a rule `selector -j ACCEPT` placed where the packet is still undecided: just before the decision */
  acceptBefore(d: Decision, sel: PacketSelector): FixOp[]
  /** `-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` placed just before the decision */
  acceptEstablishedBefore(d: Decision): FixOp[]
  /** a NAT rule appended (or inserted before the decision of a packet that would skip it) in nat POSTROUTING */
  masqueradeBefore(d: Decision, sel: PacketSelector): FixOp[]
  /** the same rule without its ctstate/--syn conditions */
  replaceStateless(d: {readonly rule: IptRule; readonly ruleset: IptablesRuleset}): FixOp[] | undefined
  /** the same rule with another statistic probability */
  replaceProbability(rule: IptRule, ruleset: IptablesRuleset, p: number): FixOp[] | undefined
  /** the same rule restricted to the first packet of a connection */
  replaceNewOnly(rule: IptRule, ruleset: IptablesRuleset): FixOp[] | undefined
  /** the same rule restricted to packets whose mark is still 0 */
  replaceUnmarkedOnly(rule: IptRule, ruleset: IptablesRuleset): FixOp[] | undefined
  /** a rule (CONNMARK save/restore, MARK...) inserted before original position `pos` of a chain (the chain's own copy is moved there instead) */
  insertAt(ruleset: IptablesRuleset, table: string, chain: string, pos: number, spec: string): FixOp[]
}

export interface Firewall {
  readonly kind: 'iptables' | 'nft'
  readonly rulesets: readonly IptablesRuleset[]
  /** runs the packet through the tables of `hook`; `nat` says whether the nat table is consulted (new ct) */
  runHook(hook: Hook, packet: Packet, env: MatchEnv, nat: boolean): HookResult
  readonly fixer: FirewallFixer
}

export function binaryOf(rs: IptablesRuleset): IptBinary {
  const legacy = rs.file.includes('legacy')
  if (rs.family === 6) return legacy ? 'ip6tables-legacy' : 'ip6tables'
  return legacy ? 'iptables-legacy' : 'iptables'
}

function policyLoc(chain: IptChain | undefined, ruleset: IptablesRuleset, table: string): Loc {
  return chain?.loc ?? {file: ruleset.file, line: 0, text: `*${table}`}
}

export function decisionOf(rs: IptablesRuleset, table: IptTable, builtin: string, res: ChainResult): Decision {
  return decisionWith(rs, binaryOf(rs), table, builtin, res)
}

function assumedBy(assumptions: readonly Assumption[], rule: IptRule): boolean {
  for (let i = 0; i < assumptions.length; i++) if (assumptions[i]!.rule === rule) return true
  return false
}

function decisionWith(rs: IptablesRuleset, bin: IptBinary, table: IptTable, builtin: string, res: ChainResult): Decision {
  const assumed = !!res.rule && assumedBy(res.assumptions, res.rule)
  if (res.rule) {
    return {
      ruleset: rs,
      bin,
      table: table.name,
      chain: res.rule.chain,
      rule: res.rule,
      policy: false,
      verdict: res.verdict === 'CONTINUE' ? 'ACCEPT' : res.verdict,
      target: res.target,
      loc: res.rule.loc,
      assumed,
    }
  }
  const chain = table.chains.get(builtin)
  // a policy reached through a `-g` of the builtin chain: the chain's later rules were never walked (a RETURN from
  // the goto target ends the builtin chain), so a rule placed for this packet must go before that goto
  let gotoFrom: IptRule | undefined
  for (const r of res.trail) {
    if (r.chain === builtin && r.target?.kind === 'goto') {
      gotoFrom = r
      break
    }
  }
  return {
    ruleset: rs,
    bin,
    table: table.name,
    chain: builtin,
    policy: true,
    verdict: res.verdict === 'CONTINUE' || res.verdict === 'NAT' ? 'ACCEPT' : res.verdict,
    loc: policyLoc(chain, rs, table.name),
    assumed: false,
    ...(gotoFrom ? {gotoFrom} : {}),
  }
}

/** The tables (of every ruleset) that have a chain at a hook, in the order the hook runs them. */
interface HookStep {
  readonly tableName: string
  readonly tables: readonly {readonly rs: IptablesRuleset; readonly table: IptTable; readonly bin: IptBinary}[]
  /**
   * Another ruleset's chain of the same host and hook (HostHooks), run for the marks it leaves (meta mark, ct mark),
   * which the kernel carries from one base chain to the next: its verdicts, NAT and NOTRACK belong to that ruleset's
   * own judgement. `priority`: where it registers (a chain at or below NF_IP_PRI_CONNTRACK sees no entry yet).
   */
  readonly foreign?: {readonly priority: number}
}

/** One chain a host runs at a hook: an iptables table, or an nft base chain (its shadow table), in kernel order. */
export interface HookSlot {
  readonly rs: IptablesRuleset
  readonly table: IptTable
  readonly priority: number
  /** consulted by the nat core (iptables' nat table, nft nat-type chains), which stops at the first binding */
  readonly nat: boolean
}

/** The chains of every ruleset of one host, per hook, in the order the kernel runs them (nft-firewall.ts). */
export interface HostHooks {
  slots(hook: Hook): readonly HookSlot[]
}

const hostHooks = new WeakMap<IptablesRuleset, HostHooks>()

/**
 * Tells the firewalls made of some of a host's rulesets alone (a DNAT cascade runs the nat table's ruleset: an nft
 * table's shadow) which other chains the host runs at each hook: the marks those set before (or after) reach the
 * packet as in the kernel, where every base chain of a hook runs in priority order across tables.
 */
export function setHostHooks(rulesets: readonly IptablesRuleset[], h: HostHooks): void {
  for (const rs of rulesets) hostHooks.set(rs, h)
}

/** Does a table hold a rule that sets the packet's or the connection's mark (MARK, CONNMARK; nft `meta/ct mark set`)? */
const marking = new WeakMap<IptTable, boolean>()

function setsMarks(t: IptTable): boolean {
  let v = marking.get(t)
  if (v === undefined) {
    v = false
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        const k = r.target?.kind
        if (k === 'MARK' || k === 'CONNMARK') {
          v = true
          break
        }
      }
      if (v) break
    }
    marking.set(t, v)
  }
  return v
}

/** Shared by the results of hooks where no table ran or nothing was assumed (never written to). */
const NO_RUNS: readonly TableRun[] = Object.freeze([])
const NO_ASSUMPTIONS: readonly Assumption[] = Object.freeze([])

/** iptables (nf_tables or legacy backend) rulesets of one address family. */
export class IptablesFirewall implements Firewall {
  readonly kind = 'iptables' as const
  readonly fixer: FirewallFixer
  /** per hook, the tables to run: found once (a check replays hundreds of thousands of packets) */
  private readonly steps = new Map<Hook, readonly HookStep[]>()

  constructor(readonly rulesets: readonly IptablesRuleset[]) {
    this.fixer = new IptablesFixer()
  }

  private stepsOf(hook: Hook): readonly HookStep[] {
    let steps = this.steps.get(hook)
    if (!steps) steps = this.hostSteps(hook)
    if (!steps) {
      const out: HookStep[] = []
      for (const tableName of HOOK_TABLES[hook]) {
        const tables: {rs: IptablesRuleset; table: IptTable; bin: IptBinary}[] = []
        for (const rs of this.rulesets) {
          const table = rs.tables.get(tableName)
          if (table && table.chains.has(hook)) tables.push({rs, table, bin: binaryOf(rs)})
        }
        if (tables.length) out.push({tableName, tables})
      }
      steps = out
      this.steps.set(hook, steps)
    }
    return steps
  }

  /**
   * The steps of a hook where the host runs chains of other rulesets that set marks (HostHooks): every chain in the
   * host's order, this firewall's own tables as themselves (its nat tables as one step at the nat core's place),
   * the other rulesets' marking chains as `foreign` steps. undefined when there are none (the plain steps).
   */
  private hostSteps(hook: Hook): readonly HookStep[] | undefined {
    const own = this.rulesets
    const h = own.length ? hostHooks.get(own[0]!) : undefined
    if (!h || own.some((rs) => hostHooks.get(rs) !== h)) return undefined
    const slots = h.slots(hook)
    if (!slots.some((x) => !x.nat && !own.includes(x.rs) && setsMarks(x.table))) return undefined
    const out: HookStep[] = []
    let nat: {rs: IptablesRuleset; table: IptTable; bin: IptBinary}[] | undefined
    for (const x of slots) {
      const mine = own.includes(x.rs)
      if (x.nat) {
        if (!mine) continue
        if (!nat) out.push({tableName: 'nat', tables: (nat = [])})
        nat.push({rs: x.rs, table: x.table, bin: binaryOf(x.rs)})
      } else if (mine) out.push({tableName: x.table.name, tables: [{rs: x.rs, table: x.table, bin: binaryOf(x.rs)}]})
      else if (setsMarks(x.table)) out.push({tableName: x.table.name, tables: [{rs: x.rs, table: x.table, bin: binaryOf(x.rs)}], foreign: {priority: x.priority}})
    }
    this.steps.set(hook, out)
    return out
  }

  runHook(hook: Hook, packet: Packet, env: MatchEnv, nat: boolean): HookResult {
    return this.runFrom(hook, nat, 0, 0, packet, env.ct?.mark ?? 0, false, env, undefined, undefined, undefined, undefined)
  }

  /**
   * Resumes a hook run from inside one of its tables' chains (`at`: hookState() when the chain made `chain`,
   * see MatchEnv.checkpoint): the same result as running the hook from the top with the same draws.
   */
  resumeHook(at: HookState, chain: ChainCheckpoint): HookResult {
    return this.runFrom(at.hook, at.nat, at.step, at.table, at.packet, at.ctMark, at.notrack, at.env, at.runs?.slice(), at.assumptions?.slice(), at.natDone, chain)
  }

  /** While a chain asks for checkpoints (MatchEnv.checkpoint): the hook run's state before its table. */
  private live?: {-readonly [K in keyof HookState]: HookState[K]} & {made?: HookState}

  /** The state of the hook run before the table whose chain is running (for a checkpoint it makes). */
  hookState(): HookState {
    const l = this.live!
    return (l.made ??= {hook: l.hook, nat: l.nat, step: l.step, table: l.table, packet: l.packet, ctMark: l.ctMark, notrack: l.notrack, env: l.env, runs: l.runs?.slice(), assumptions: l.assumptions?.slice(), natDone: l.natDone})
  }

  /** The tables of `hook` from table `t0` of step `s0` on, with the state the tables before left. */
  private runFrom(
    hook: Hook,
    nat: boolean,
    s0: number,
    t0: number,
    p: Packet,
    ctMark: number,
    notrack: boolean,
    curEnv: MatchEnv,
    runs: TableRun[] | undefined,
    assumptions: Assumption[] | undefined,
    natDone: HookResult['nat'],
    from: ChainCheckpoint | undefined,
  ): HookResult {
    const steps = this.stepsOf(hook)
    for (let s = s0; s < steps.length; s++) {
      const step = steps[s]!
      const tableName = step.tableName
      if (tableName === 'nat' && (!nat || notrack)) continue
      const tables = step.tables
      if (step.foreign) {
        // another ruleset's chain: the marks it leaves, nothing else (no draws, no checkpoints: not this cascade's)
        const {table} = tables[0]!
        const early = step.foreign.priority <= NF_IP_PRI.CONNTRACK && (hook === 'PREROUTING' || hook === 'OUTPUT') && rawBeforeConntrack(hook, curEnv)
        const base: MatchEnv = {...curEnv, draw: undefined, checkpoint: undefined}
        const env = early ? {...base, ct: notrack ? RAW_UNTRACKED : undefined} : base
        const res = runChain(table, hook, p, env, early ? 0 : ctMark)
        if (res.packet.mark !== p.mark) p = {...p, mark: res.packet.mark}
        if (!early && res.ctMark !== ctMark) {
          ctMark = res.ctMark
          if (curEnv.ct) curEnv = {...curEnv, ct: {...curEnv.ct, mark: ctMark}}
        }
        continue
      }
      for (let ti = s === s0 ? t0 : 0; ti < tables.length; ti++) {
        const {rs, table, bin} = tables[ti]!
        if (curEnv.checkpoint !== undefined) {
          // the chain may make checkpoints: hookState() tells the state before this table (no copy until asked)
          const l = (this.live ??= {hook, nat, step: s, table: ti, packet: p, ctMark, notrack, env: curEnv, runs, assumptions, natDone})
          l.hook = hook
          l.nat = nat
          l.step = s
          l.table = ti
          l.packet = p
          l.ctMark = ctMark
          l.notrack = notrack
          l.env = curEnv
          l.runs = runs
          l.assumptions = assumptions
          l.natDone = natDone
          l.made = undefined
        }
        // raw PREROUTING/OUTPUT runs before conntrack attaches the packet's entry: no state yet (INVALID), or
        // UNTRACKED after a NOTRACK; no ct mark to read or set (xt_connmark: no ct, nothing done)
        const early = tableName === 'raw' && rawBeforeConntrack(hook, curEnv)
        const res = runChain(table, hook, p, early ? (notrack ? untrackedEnv(curEnv) : noCtEnv(curEnv)) : curEnv, early ? 0 : ctMark, from)
        from = undefined
        const decision = decisionWith(rs, bin, table, hook, res)
        const run: TableRun = {table: tableName, bin, result: res, decision}
        if (runs) runs.push(run)
        else runs = [run]
        if (res.assumptions.length) (assumptions ??= []).push(...res.assumptions)
        p = res.packet
        if (!early) ctMark = res.ctMark
        if (res.notrack) notrack = true
        if (curEnv.ct && curEnv.ct.mark !== ctMark) curEnv = {...curEnv, ct: {...curEnv.ct, mark: ctMark}}
        if (notrack && tableName === 'raw') curEnv = {...curEnv, ct: {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set(), mark: 0}}
        if (res.verdict === 'DROP' || res.verdict === 'REJECT' || res.verdict === 'QUEUE') {
          return {hook, verdict: res.verdict, decision, runs, packet: p, ctMark, notrack, nat: natDone, assumptions: assumptions ?? NO_ASSUMPTIONS}
        }
        if (res.verdict === 'NAT' && res.target && !natDone) {
          const t = res.target
          if (t.kind === 'DNAT' || t.kind === 'SNAT') {
            const r = t.to[0]
            natDone = {kind: t.kind, decision, to: {ip: r?.from, port: r?.portFrom}}
            if (t.kind === 'DNAT') p = {...p, dst: r?.from ?? p.dst, dport: r?.portFrom ?? p.dport}
            else p = {...p, src: r?.from ?? p.src, sport: r?.portFrom ?? p.sport}
          } else if (t.kind === 'MASQUERADE') {
            natDone = {kind: 'MASQUERADE', decision}
          } else if (t.kind === 'REDIRECT') {
            // the primary address of the input device (127.0.0.1 for the host's own packets, nat OUTPUT)
            const ra = hook === 'OUTPUT' ? LOOPBACK_ADDR : curEnv.redirectAddr?.(curEnv.iif)
            natDone = {kind: 'REDIRECT', decision, to: {ip: ra, port: t.ports?.[0]}}
            p = {...p, dst: ra ?? p.dst, dport: t.ports?.[0] ?? p.dport}
          }
        }
      }
    }
    return {hook, verdict: 'ACCEPT', runs: runs ?? NO_RUNS, packet: p, ctMark, notrack, nat: natDone, assumptions: assumptions ?? NO_ASSUMPTIONS}
  }
}

/**
 * Does the raw table at `hook` see the packet before conntrack has attached its entry? The raw table registers at
 * NF_IP_PRI_RAW (-300), conntrack at NF_IP_PRI_CONNTRACK (-200) (nf_conntrack_proto.c ipv4_conntrack_in /
 * ipv4_conntrack_local). With no entry, `-m state`/`-m conntrack --ctstate` see INVALID, or UNTRACKED once a
 * NOTRACK decided it (xt_state.c state_mt, xt_conntrack.c conntrack_mt: `ct ? bit(ctinfo) : ctinfo ==
 * IP_CT_UNTRACKED ? UNTRACKED : INVALID`). Packets that already carry one keep it: a packet looped back (received on
 * lo with the entry it was sent with), and IPVS's transmitted packets at LOCAL_OUT (the entry of PREROUTING, or
 * ip_vs_notrack's UNTRACKED). A caller that gives no entry at all (env.ct undefined) keeps its meaning.
 */
export function rawBeforeConntrack(hook: Hook, env: MatchEnv): boolean {
  if (!env.ct) return false
  if (hook === 'PREROUTING') return env.iif !== 'lo'
  if (hook === 'OUTPUT') return !env.ipvs
  return false
}

const RAW_UNTRACKED = {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set<string>(), mark: 0} as const
/** per env, its copy without an entry / with an untracked one (a hook run makes one env per packet: no copy per table) */
const noCt = new WeakMap<MatchEnv, MatchEnv>()
const untracked = new WeakMap<MatchEnv, MatchEnv>()

function noCtEnv(env: MatchEnv): MatchEnv {
  let e = noCt.get(env)
  if (!e) noCt.set(env, (e = {...env, ct: undefined}))
  return e
}

function untrackedEnv(env: MatchEnv): MatchEnv {
  let e = untracked.get(env)
  if (!e) untracked.set(env, (e = {...env, ct: RAW_UNTRACKED}))
  return e
}

/** A hook run's state before one of its tables (IptablesFirewall.hookState, resumeHook). */
export interface HookState {
  readonly hook: Hook
  readonly nat: boolean
  readonly step: number
  readonly table: number
  readonly packet: Packet
  readonly ctMark: number
  readonly notrack: boolean
  readonly env: MatchEnv
  readonly runs: readonly TableRun[] | undefined
  readonly assumptions: readonly Assumption[] | undefined
  readonly natDone: HookResult['nat']
}

// ---- fixes in iptables syntax ---------------------------------------------------------------------------

export function selectorSpec(sel: PacketSelector): string[] {
  const out: string[] = []
  if (sel.src) out.push('-s', prefixArg(sel.src))
  if (sel.dst) out.push('-d', prefixArg(sel.dst))
  if (sel.oif) out.push('-o', sel.oif)
  if (sel.proto) out.push('-p', sel.proto)
  if (sel.proto && (sel.dport !== undefined || sel.sport !== undefined)) {
    out.push('-m', sel.proto)
    if (sel.sport !== undefined) out.push('--sport', String(sel.sport))
    if (sel.dport !== undefined) out.push('--dport', String(sel.dport))
  }
  if (sel.mark !== undefined) out.push('-m', 'mark', '--mark', `0x${sel.mark.toString(16)}`)
  return out
}

function prefixArg(p: Prefix): string {
  const s = formatPrefix(p)
  return s.includes('/') ? s : `${s}/${p.family === 4 ? 32 : 128}`
}

export function hostSelector(ip: IpAddr, rest: Omit<PacketSelector, 'dst'> = {}): PacketSelector {
  return {...rest, dst: hostPrefix(ip)}
}

function chainLen(rs: IptablesRuleset, table: string, chain: string): number {
  return rs.tables.get(table)?.chains.get(chain)?.rules.length ?? 0
}

/** Does a rule test the conntrack state (`-m state --state`, `-m conntrack --ctstate`)? */
function testsState(r: IptRule): boolean {
  return r.matches.some((m) => m.kind === 'ctstate')
}

/**
 * A raw PREROUTING/OUTPUT rule that decides on the conntrack state runs before conntrack (rawBeforeConntrack): every
 * packet is INVALID there (the kernel: `--ctstate INVALID -j DROP` in raw PREROUTING matched every packet of a
 * connection, `--ctstate NEW` none), both ways, so an accept before it would have to name every packet of every
 * connection. The fix moves the rule to where conntrack has classified the packet: deleted from raw, inserted at
 * the head of mangle's chain of the same hook (NF_IP_PRI_MANGLE -150, after conntrack's -200, before DNAT's -100).
 * undefined for any other decision.
 */
function moveAfterConntrack(d: Decision): FixOp[] | undefined {
  const r = d.rule
  if (!r || d.table !== 'raw' || (d.chain !== 'PREROUTING' && d.chain !== 'OUTPUT') || !testsState(r)) return undefined
  return [
    {kind: 'ipt', bin: d.bin, table: 'raw', chain: d.chain, op: 'D', pos: r.index, chainLen: chainLen(d.ruleset, 'raw', d.chain)},
    {kind: 'ipt', bin: d.bin, table: 'mangle', chain: d.chain, op: 'I', pos: 1, chainLen: chainLen(d.ruleset, 'mangle', d.chain), spec: joinSpec(specTokens(r.loc.text))},
  ]
}

class IptablesFixer implements FirewallFixer {
  private insertBefore(d: Decision, spec: string): FixOp[] {
    const moved = moveAfterConntrack(d)
    if (moved) return moved
    const len = chainLen(d.ruleset, d.table, d.chain)
    return this.place(d.ruleset, d.bin, d.table, d.chain, d.rule ? d.rule.index : d.gotoFrom ? d.gotoFrom.index : len + 1, spec)
  }

  /**
   * A rule inserted before original position `pos`; never a second copy of a rule the chain has: one before
   * `pos` is there already (nothing to add), one after it is moved (deleted where it is, inserted at `pos`).
   */
  private place(rs: IptablesRuleset, bin: IptBinary, table: string, chain: string, pos: number, spec: string): FixOp[] {
    const rules = rs.tables.get(table)?.chains.get(chain)?.rules ?? []
    const ins: FixOp = {kind: 'ipt', bin, table, chain, op: 'I', pos, chainLen: rules.length, spec}
    const same = rules.find((r) => joinSpec(specTokens(r.loc.text)) === spec)
    if (!same) return [ins]
    if (same.index < pos) return []
    return [{kind: 'ipt', bin, table, chain, op: 'D', pos: same.index, chainLen: rules.length}, ins]
  }

  acceptBefore(d: Decision, sel: PacketSelector): FixOp[] {
    return this.insertBefore(d, joinSpec([...selectorSpec(sel), '-j', 'ACCEPT']))
  }

  acceptEstablishedBefore(d: Decision): FixOp[] {
    return this.insertBefore(d, joinSpec(['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']))
  }

  masqueradeBefore(d: Decision, sel: PacketSelector): FixOp[] {
    return this.insertBefore(d, joinSpec([...selectorSpec(sel), '-j', 'MASQUERADE']))
  }

  private replace(rule: IptRule, rs: IptablesRuleset, tokens: readonly string[]): FixOp[] {
    return [
      {
        kind: 'ipt',
        bin: binaryOf(rs),
        table: rule.table,
        chain: rule.chain,
        op: 'R',
        pos: rule.index,
        chainLen: chainLen(rs, rule.table, rule.chain),
        spec: joinSpec(tokens),
      },
    ]
  }

  replaceStateless(d: {rule: IptRule; ruleset: IptablesRuleset}): FixOp[] | undefined {
    const before = specTokens(d.rule.loc.text)
    const after = statelessSpec(before)
    if (after.join(' ') === before.join(' ')) return undefined
    return this.replace(d.rule, d.ruleset, after)
  }

  replaceProbability(rule: IptRule, rs: IptablesRuleset, p: number): FixOp[] | undefined {
    const t = withOption(specTokens(rule.loc.text), '--probability', formatProbability(p))
    return t ? this.replace(rule, rs, t) : undefined
  }

  replaceNewOnly(rule: IptRule, rs: IptablesRuleset): FixOp[] | undefined {
    return this.replace(rule, rs, withMatch(specTokens(rule.loc.text), ['-m', 'conntrack', '--ctstate', 'NEW']))
  }

  replaceUnmarkedOnly(rule: IptRule, rs: IptablesRuleset): FixOp[] | undefined {
    return this.replace(rule, rs, withMatch(specTokens(rule.loc.text), ['-m', 'mark', '--mark', '0x0']))
  }

  insertAt(rs: IptablesRuleset, table: string, chain: string, pos: number, spec: string): FixOp[] {
    return this.place(rs, binaryOf(rs), table, chain, pos, spec)
  }
}

const LOOPBACK_ADDR: IpAddr = {family: 4, value: 0x7f000001n}
