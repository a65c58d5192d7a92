// The rule engine's firewall for hosts with nftables rulesets (the `Firewall` seam of firewall.ts), and fixes in
// nft syntax.
//
// runHook runs, at one hook, every nft base chain of the host's `ip`/`inet` tables and every iptables table
// (when iptables-save holds rules too) in the kernel's order: by priority, nft chains before an xtables table of
// the same priority (nft-hooks.ts); nat-type chains and iptables' nat table together at the nat core's place
// (NF_IP_PRI_NAT_DST/SRC), in their own priority order, until one binds. nft chains are evaluated by the nft
// interpreter (src/dataplane/nft.ts); what the rules see of them is the iptables view of nft-view.ts, so the
// decisions, trails and assumptions name shadow rules, whose evidence is the nft rule with its handle.
//
// The fixer writes `nft insert rule FAMILY TABLE CHAIN position HANDLE ...` (before a rule), `nft add rule ...`
// (at the end of a chain, where its policy decides), `nft replace rule ... handle N ...` and, where the table
// lacks the chain a fix needs, `nft add chain ... '{ type ... hook ... priority ...; policy accept; }'`. nft
// addresses rules by handle, which no other fix shifts, so these commands are exact in any order. Decisions
// in iptables rulesets of the same host get iptables fixes (IptablesFirewall's fixer).
import {formatPrefix, type IpAddr} from '../../model/ip.js'
import type {IptablesRuleset, IptRule, IptTable, Match, Target} from '../../model/iptables.js'
import {formatNftRule, formatNftStmt, type NftChain, type NftRule, type NftStmt} from '../../model/nft.js'
import type {HostSnapshot} from '../../model/snapshot.js'
import {evalMatch, runChain, type Assumption, type ChainResult, type MatchEnv} from '../../dataplane/netfilter.js'
import {runNftChain, type NftChainResult, type NftEnv} from '../../dataplane/nft.js'
import {iptablesViewBeside, nftFib} from '../../dataplane/nft-hooks.js'
import {NF_IP_PRI} from '../../dataplane/hooks.js'
import type {Packet} from '../../dataplane/packet.js'
import type {RoutingTables} from '../../dataplane/routing.js'
import {parseIptablesSave} from '../../snapshot/parsers/iptables-save.js'
import {binaryOf, decisionOf, IptablesFirewall, setHostHooks, type Decision, type HookSlot, type Firewall, type FirewallFixer, type Hook, type HookResult, type PacketSelector, type TableRun} from './firewall.js'
import type {FixOp} from './fix.js'
import {nftShadows, shadowOf, type NftShadow, type ShadowBase, type ShadowClass} from './nft-view.js'

// ---- the hook walk --------------------------------------------------------------------------------------

const IPT_PRIORITY: Readonly<Record<string, number>> = {raw: NF_IP_PRI.RAW, mangle: NF_IP_PRI.MANGLE, filter: NF_IP_PRI.FILTER, security: NF_IP_PRI.SECURITY}
const TABLES_AT: Readonly<Record<Hook, readonly string[]>> = {
  PREROUTING: ['raw', 'mangle'],
  INPUT: ['mangle', 'filter', 'security'],
  FORWARD: ['mangle', 'filter', 'security'],
  OUTPUT: ['raw', 'mangle', 'filter', 'security'],
  POSTROUTING: ['mangle'],
}

type Runner =
  | {readonly kind: 'ipt'; readonly priority: number; readonly rs: IptablesRuleset; readonly table: IptTable}
  | {readonly kind: 'nft'; readonly priority: number; readonly shadow: NftShadow; readonly base: ShadowBase; readonly order: number}

type Entry = Runner | {readonly kind: 'nat'; readonly priority: number; readonly lookups: readonly Runner[]}

function natPriority(hook: Hook): number {
  return hook === 'PREROUTING' || hook === 'OUTPUT' ? NF_IP_PRI.NAT_DST : NF_IP_PRI.NAT_SRC
}

/**
 * Ties (nf_hook_entries_grow puts a new hook before the first one whose priority is not lower, so the later
 * registration runs first; nft-hooks.ts): nft before xtables, and of two nft chains the later in the dump first.
 */
function byPriority(a: Entry, b: Entry): number {
  if (a.priority !== b.priority) return a.priority - b.priority
  if (a.kind === 'nft' && b.kind === 'nft') return b.order - a.order
  return a.kind === b.kind ? 0 : a.kind === 'nft' ? -1 : b.kind === 'nft' ? 1 : 0
}

/**
 * Where conntrack attaches its entry (nf_conntrack_proto.c ipv4_conntrack_in / ipv4_conntrack_local at
 * NF_IP_PRI_CONNTRACK): a chain at PREROUTING or OUTPUT below or at that priority (an nft chain of equal priority
 * registers after conntrack's hook, so it runs first) sees no entry: `ct state` is invalid there
 * (nft_ct_get_eval; xt_conntrack alike), untracked once a notrack decided it, and the ct keys are absent.
 */
function beforeConntrack(hook: Hook, e: Entry, env: MatchEnv): boolean {
  if (hook !== 'PREROUTING' && hook !== 'OUTPUT') return false
  // a packet looped back keeps the entry it had when it was sent
  if (hook === 'PREROUTING' && env.iif === 'lo') return false
  // IPVS's transmitted packets reach LOCAL_OUT with the entry of PREROUTING, or ip_vs_notrack's UNTRACKED
  // (ip_vs_xmit.c ip_vs_send_or_cont): nf_conntrack_in leaves them as they are (firewall.ts rawBeforeConntrack)
  if (hook === 'OUTPUT' && env.ipvs) return false
  return e.priority <= NF_IP_PRI.CONNTRACK
}

/**
 * The drops further down a hook (later chains of the same hook, after the one that decided) that would still drop
 * the packet if the deciding chain let it pass: a fix accepting the packet must reach every base chain of the
 * hook that drops it (a second `type filter hook forward` chain with policy drop, after the first one's accept).
 * Kept per decision, computed when a fixer asks.
 */
const laterDrops = new WeakMap<Decision, () => readonly Decision[]>()

/** The decisions of the later chains of the same hook that drop the packet a decision dropped (see laterDrops). */
export function dropsAfter(d: Decision): readonly Decision[] {
  return laterDrops.get(d)?.() ?? []
}

export class NftFirewall implements Firewall {
  readonly kind = 'nft' as const
  readonly rulesets: readonly IptablesRuleset[]
  readonly fixer: FirewallFixer
  private readonly entries = new Map<Hook, Entry[]>()

  constructor(
    readonly iptables: readonly IptablesRuleset[],
    readonly shadows: readonly NftShadow[],
    private readonly rt?: RoutingTables,
  ) {
    this.rulesets = [...iptables, ...shadows.map((s) => s.ruleset)]
    this.fixer = new NftFixer(new IptablesFirewall(iptables).fixer)
  }

  private entriesOf(hook: Hook): Entry[] {
    let out = this.entries.get(hook)
    if (out) return out
    const plain: Runner[] = []
    const nat: Runner[] = []
    for (const rs of this.iptables) {
      for (const t of TABLES_AT[hook]) {
        const table = rs.tables.get(t)
        if (table?.chains.has(hook)) plain.push({kind: 'ipt', priority: IPT_PRIORITY[t]!, rs, table})
      }
      const n = rs.tables.get('nat')
      if (n?.chains.has(hook) && hook !== 'FORWARD') nat.push({kind: 'ipt', priority: natPriority(hook), rs, table: n})
    }
    for (const s of this.shadows) {
      for (const b of s.bases) {
        if (b.hook !== hook) continue
        const r: Runner = {kind: 'nft', priority: b.priority, shadow: s, base: b, order: this.dumpOrder(b.chain)}
        if (b.cls === 'nat') nat.push(r)
        else plain.push(r)
      }
    }
    out = [...plain]
    if (nat.length) out.push({kind: 'nat', priority: natPriority(hook), lookups: nat.sort(byPriority)})
    out.sort(byPriority)
    this.entries.set(hook, out)
    return out
  }

  /** HostHooks: the host's chains at a hook, in the order the kernel runs them (nat lookups at the nat core's place). */
  slots(hook: Hook): readonly HookSlot[] {
    let out = this.slotList.get(hook)
    if (out) return out
    out = []
    const slot = (r: Runner, nat: boolean): HookSlot | undefined => {
      const rs = r.kind === 'ipt' ? r.rs : r.shadow.ruleset
      const table = r.kind === 'ipt' ? r.table : r.shadow.ruleset.tables.get(r.base.cls)
      return table ? {rs, table, priority: r.priority, nat} : undefined
    }
    for (const e of this.entriesOf(hook)) {
      if (e.kind === 'nat') {
        for (const lk of e.lookups) {
          const x = slot(lk, true)
          if (x) out.push(x)
        }
      } else {
        const x = slot(e, false)
        if (x) out.push(x)
      }
    }
    this.slotList.set(hook, out)
    return out
  }

  private readonly slotList = new Map<Hook, HookSlot[]>()

  private order?: Map<NftChain, number>

  /** A chain's place in the dump (the order nft registered the base chains in). */
  private dumpOrder(c: NftChain): number {
    if (!this.order) {
      this.order = new Map()
      let n = 0
      for (const t of this.shadows[0]?.nft.tables ?? []) for (const x of t.chains.values()) this.order.set(x, n++)
    }
    return this.order.get(c) ?? 0
  }

  private nftEnv(env: MatchEnv): NftEnv {
    const rt = this.rt
    // every replayed packet is the first of its connection to reach a `numgen inc`: counter 0
    return {...env, numgen: new Map(), fib: rt ? (q) => nftFib(rt, q, (ip, dev) => env.addrType(ip, dev)) : undefined}
  }

  private run(r: Runner, hook: Hook, p: Packet, env: MatchEnv, ctMark: number): {run: TableRun; result: ChainResult} {
    if (r.kind === 'ipt') {
      const result = runChain(r.table, hook, p, env, ctMark)
      return {run: {table: r.table.name, bin: binaryOf(r.rs), result, decision: decisionOf(r.rs, r.table, hook, result)}, result}
    }
    const res = runNftChain(r.shadow.table, r.base.chain, p, this.nftEnv(env), ctMark)
    const result = toChainResult(r.shadow, r.base.cls, res, p, env)
    return {run: {table: r.base.cls, bin: 'iptables', result, decision: nftDecision(r.shadow, r.base, res, result)}, result}
  }

  runHook(hook: Hook, packet: Packet, env: MatchEnv, nat: boolean): HookResult {
    const entries = this.entriesOf(hook)
    const st: WalkState = {p: packet, ctMark: env.ct?.mark ?? 0, notrack: false, env, runs: [], assumptions: [], natDone: undefined}
    const stop = this.walk(hook, entries, 0, st, nat)
    if (!stop) return {hook, verdict: 'ACCEPT', runs: st.runs, packet: st.p, ctMark: st.ctMark, notrack: st.notrack, nat: st.natDone, assumptions: st.assumptions}
    const {at, verdict, decision} = stop
    // what the later chains of this hook would do to the packet had this one let it pass (for fixes, on demand)
    const rest: WalkState = {...st, runs: [], assumptions: []}
    let memo: readonly Decision[] | undefined
    laterDrops.set(decision, () => {
      if (memo) return memo
      const out: Decision[] = []
      const s2: WalkState = {...rest, runs: [], assumptions: []}
      let i = at + 1
      for (;;) {
        const next = this.walk(hook, entries, i, s2, nat)
        if (!next) break
        out.push(next.decision)
        i = next.at + 1
      }
      return (memo = out)
    })
    return {hook, verdict, decision, runs: st.runs, packet: st.p, ctMark: st.ctMark, notrack: st.notrack, nat: st.natDone, assumptions: st.assumptions}
  }

  /**
   * Runs the entries of a hook from `from` on, updating `st`, until one drops, rejects or queues the packet (its
   * place, verdict and decision) or the hook ends (undefined).
   */
  private walk(hook: Hook, entries: readonly Entry[], from: number, st: WalkState, nat: boolean): {at: number; verdict: 'DROP' | 'REJECT' | 'QUEUE'; decision: Decision} | undefined {
    const after = (x: {run: TableRun; result: ChainResult}) => {
      st.runs.push(x.run)
      st.assumptions.push(...x.result.assumptions)
      st.p = x.result.packet
      st.ctMark = x.result.ctMark
      if (x.result.notrack) st.notrack = true
      if (st.env.ct) st.env = {...st.env, ct: {...st.env.ct, mark: st.ctMark}}
      if (x.result.notrack) st.env = {...st.env, ct: UNTRACKED}
    }
    // the environment a chain sees: no conntrack entry yet before conntrack's hook
    const envAt = (e: Entry): MatchEnv => (beforeConntrack(hook, e, st.env) ? {...st.env, ct: st.notrack ? UNTRACKED : undefined} : st.env)
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!
      if (e.kind === 'nat') {
        if (!nat || st.notrack) continue
        for (const lk of e.lookups) {
          const x = this.run(lk, hook, st.p, st.env, st.ctMark)
          after(x)
          const v = x.result.verdict
          if (v === 'DROP' || v === 'REJECT' || v === 'QUEUE') return {at: i, verdict: v, decision: x.run.decision}
          if (v === 'NAT' && x.result.target) {
            const t = x.result.target
            const d = x.run.decision
            if (t.kind === 'DNAT' || t.kind === 'SNAT') {
              const r = t.to[0]
              st.natDone = {kind: t.kind, decision: d, to: {ip: r?.from, port: r?.portFrom}}
              if (t.kind === 'DNAT') st.p = {...st.p, dst: r?.from ?? st.p.dst, dport: r?.portFrom ?? st.p.dport}
              else st.p = {...st.p, src: r?.from ?? st.p.src, sport: r?.portFrom ?? st.p.sport}
            } else if (t.kind === 'MASQUERADE') st.natDone = {kind: 'MASQUERADE', decision: d}
            else if (t.kind === 'REDIRECT') {
              // the primary address of the input device (127.0.0.1 for the host's own packets, nat OUTPUT)
              const ra = hook === 'OUTPUT' ? LOOPBACK_ADDR : st.env.redirectAddr?.(st.env.iif)
              st.natDone = {kind: 'REDIRECT', decision: d, to: {ip: ra, port: t.ports?.[0]}}
              st.p = {...st.p, dst: ra ?? st.p.dst, dport: t.ports?.[0] ?? st.p.dport}
            }
            break // the nat core stops at the first lookup that binds
          }
        }
        continue
      }
      const x = this.run(e, hook, st.p, envAt(e), st.ctMark)
      after(x)
      const v = x.result.verdict
      if (v === 'DROP' || v === 'REJECT' || v === 'QUEUE') return {at: i, verdict: v, decision: x.run.decision}
    }
    return undefined
  }
}

interface WalkState {
  p: Packet
  ctMark: number
  notrack: boolean
  env: MatchEnv
  runs: TableRun[]
  assumptions: Assumption[]
  natDone: HookResult['nat']
}

const UNTRACKED = {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set<string>(), mark: 0} as const

/** The shadow rule standing for an nft rule in this run: the one whose target and static matches fit. */
function pickShadow(shadow: NftShadow, cls: string, rule: NftRule, target: Target | undefined, p: Packet, env: MatchEnv): IptRule | undefined {
  const cands = shadow.rulesOf(cls, rule)
  if (cands.length <= 1) return cands[0]
  const fits = (r: IptRule) => r.matches.every((m) => m.kind === 'statistic' || evalMatch(m, p, env) !== 'nomatch')
  const sameTarget = (r: IptRule) => {
    if (!target) return true
    if (r.target?.kind !== target.kind) return false
    if ((target.kind === 'DNAT' || target.kind === 'SNAT') && r.target.kind === target.kind) {
      const a = target.to[0]?.from
      const b = r.target.to[0]?.from
      return !a || !b || a.value === b.value
    }
    return true
  }
  return cands.find((r) => sameTarget(r) && fits(r)) ?? cands.find(sameTarget) ?? cands.find(fits) ?? cands[0]
}

function toChainResult(shadow: NftShadow, cls: string, res: NftChainResult, p: Packet, env: MatchEnv): ChainResult {
  const rule = res.rule ? pickShadow(shadow, cls, res.rule, res.target, p, env) : undefined
  const trail = res.trail.map((r) => (r === res.rule ? rule : shadow.rulesOf(cls, r)[0])).filter((r): r is IptRule => !!r)
  const assumptions: Assumption[] = []
  for (const a of res.assumptions) {
    const r = a.rule === res.rule ? rule : shadow.rulesOf(cls, a.rule)[0]
    if (r) assumptions.push({rule: r, what: a.what})
  }
  return {verdict: res.verdict, rule, target: res.target, policy: res.policy, trail, assumptions, packet: res.packet, ctMark: res.ctMark, notrack: res.notrack}
}

function nftDecision(shadow: NftShadow, base: ShadowBase, res: NftChainResult, cr: ChainResult): Decision {
  const rs = shadow.ruleset
  const verdict = res.verdict === 'CONTINUE' ? 'ACCEPT' : res.verdict
  if (cr.rule) {
    return {ruleset: rs, bin: 'iptables', table: base.cls, chain: cr.rule.chain, rule: cr.rule, policy: false, verdict, target: res.target, loc: cr.rule.loc, assumed: cr.assumptions.some((a) => a.rule === cr.rule)}
  }
  // a policy reached through a `goto` of the base chain: the chain's later rules were never walked (a `return` in
  // the goto target ends the base chain, nft_do_chain), so a rule placed for this packet goes before that goto
  const via = res.trail.find((r) => r.chain === base.chain.name && r.stmts.some((x) => x.kind === 'verdict' && x.verdict.kind === 'goto'))
  const gotoFrom = via ? shadow.rulesOf(base.cls, via)[0] : undefined
  return {ruleset: rs, bin: 'iptables', table: base.cls, chain: base.hook, policy: true, verdict: verdict === 'NAT' ? 'ACCEPT' : verdict, loc: base.chain.loc, assumed: false, ...(gotoFrom ? {gotoFrom} : {})}
}

/** The nft firewall of a host with an nft ruleset holding `ip`/`inet` tables; undefined otherwise. */
export function nftFirewallFor(snap: HostSnapshot, iptables: readonly IptablesRuleset[], rt: RoutingTables | undefined): NftFirewall | undefined {
  if (!snap.nft) return undefined
  const shadows = nftShadows(snap.nft, {iptablesBeside: iptablesViewBeside(snap)})
  if (shadows.length === 0) return undefined
  const fw = new NftFirewall(iptables, shadows, rt)
  // a cascade run on one of these rulesets alone sees the marks the host's other chains set (firewall.ts HostHooks)
  setHostHooks(fw.rulesets, fw)
  return fw
}

// ---- fixes in nft syntax --------------------------------------------------------------------------------

/** Shell-quotes an nft rule (or chain) text when it holds anything the shell would read. */
export function shellQuote(text: string): string {
  return /^[\w.:/,=@+-]+( [\w.:/,=@+-]+)*$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`
}

function prefixText(p: {family: 4 | 6; value: bigint; len: number}): string {
  return formatPrefix(p)
}

/** A packet selector in nft syntax: `ip daddr 192.0.2.100 tcp dport 80`. */
export function selectorText(sel: PacketSelector): string {
  const out: string[] = []
  const fam = (p: {family: 4 | 6}) => (p.family === 6 ? 'ip6' : 'ip')
  if (sel.src) out.push(`${fam(sel.src)} saddr ${prefixText(sel.src)}`)
  if (sel.dst) out.push(`${fam(sel.dst)} daddr ${prefixText(sel.dst)}`)
  if (sel.oif) out.push(`oifname "${sel.oif}"`)
  if (sel.proto && sel.dport !== undefined) out.push(`${sel.proto} dport ${sel.dport}`)
  else if (sel.proto) out.push(`meta l4proto ${sel.proto}`)
  if (sel.mark !== undefined) out.push(`meta mark 0x${(sel.mark >>> 0).toString(16).padStart(8, '0')}`)
  return out.join(' ')
}

function ruleWith(r: NftRule, stmts: readonly NftStmt[]): string {
  return formatNftRule({family: r.family, stmts, comment: r.comment})
}

function insertCmd(r: NftRule, text: string): string {
  return `nft insert rule ${r.family} ${r.table} ${r.chain} position ${r.handle} ${shellQuote(text)}`
}

function addCmd(c: {family: string; table: string; name: string}, text: string): string {
  return `nft add rule ${c.family} ${c.table} ${c.name} ${shellQuote(text)}`
}

function replaceCmd(r: NftRule, text: string): string {
  return `nft replace rule ${r.family} ${r.table} ${r.chain} handle ${r.handle} ${shellQuote(text)}`
}

const CHAIN_TYPE: Readonly<Record<ShadowClass, {type: string; prio: (hook: string) => number}>> = {
  raw: {type: 'filter', prio: () => -300},
  mangle: {type: 'filter', prio: () => -150},
  nat: {type: 'nat', prio: (h) => (h === 'prerouting' || h === 'output' ? -100 : 100)},
  filter: {type: 'filter', prio: () => 0},
  security: {type: 'filter', prio: () => 50},
}

/** A chain of the shadow's table for (class, shadow chain); for a missing base chain, the commands that create it. */
function chainFor(shadow: NftShadow, cls: string, chain: string): {c: {family: string; table: string; name: string}; create: FixOp[]; rules: readonly NftRule[]} {
  const t = shadow.table
  const found = shadow.chains.get(`${cls}/${chain}`)
  if (found) return {c: {family: t.family, table: t.name, name: found.name}, create: [], rules: found.rules}
  const hook = chain.toLowerCase()
  const kind = CHAIN_TYPE[(cls as ShadowClass) in CHAIN_TYPE ? (cls as ShadowClass) : 'filter']
  let name = cls === 'filter' ? hook : `${cls}_${hook}`
  if (t.chains.has(name)) name = `lvsdoctor_${name}`
  const spec = `{ type ${kind.type} hook ${hook} priority ${kind.prio(hook)}; policy accept; }`
  return {c: {family: t.family, table: t.name, name}, create: [{kind: 'cmd', text: `nft add chain ${t.family} ${t.name} ${name} ${shellQuote(spec)}`}], rules: []}
}

const NFT_LOC = /^(?:ip|ip6|inet|arp|bridge|netdev) \S+ \S+: (.*) # handle \d+(?: \(element .*\))?$/

/** An iptables rule specification (or a shadow rule's evidence text) as an nft rule; undefined when it cannot be said. */
export function specToNft(spec: string, table: string, chain: string, toOutput = false): string | undefined {
  const m = NFT_LOC.exec(spec.trim())
  if (m) {
    const text = m[1]!
    return toOutput ? text.replace(/\biifname\b/g, 'oifname').replace(/\biif\b/g, 'oif') : text
  }
  let rs: IptablesRuleset
  try {
    const builtin = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].includes(chain)
    rs = parseIptablesSave(`*${table}\n:${chain} ${builtin ? 'ACCEPT' : '-'} [0:0]\n-A ${chain} ${spec}\nCOMMIT\n`, 'fix', 4)
  } catch {
    return undefined
  }
  const rule = rs.tables.get(table)?.chains.get(chain)?.rules[0]
  if (!rule) return undefined
  const parts: string[] = []
  let comment: string | undefined
  const ports = rule.matches.filter((x) => x.kind === 'port')
  for (const x of rule.matches) {
    const t = matchToNft(x, ports.length > 0)
    if (t === undefined) return undefined
    if (x.kind === 'comment') comment = x.text
    else if (t) parts.push(t)
  }
  if (rule.target) {
    const t = targetToNft(rule.target)
    if (t === undefined) return undefined
    parts.push(t)
  }
  if (comment !== undefined) parts.push(`comment "${comment}"`)
  return parts.join(' ')
}

function neq(neg: boolean): string {
  return neg ? '!= ' : ''
}

function listText(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`
}

const PROTO_NAME: Readonly<Record<number, string>> = {1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp', 58: 'ipv6-icmp', 47: 'gre', 50: 'esp', 51: 'ah'}

function matchToNft(m: Match, hasPorts: boolean): string | undefined {
  switch (m.kind) {
    case 'addr':
      return `${m.prefix.family === 6 ? 'ip6' : 'ip'} ${m.dir === 'src' ? 'saddr' : 'daddr'} ${neq(m.neg)}${prefixText(m.prefix)}`
    case 'iface':
      return `${m.dir === 'in' ? 'iifname' : 'oifname'} ${neq(m.neg)}"${m.name.endsWith('+') ? m.name.slice(0, -1) + '*' : m.name}"`
    case 'proto':
      if (m.proto === 'all') return m.neg ? undefined : ''
      if (hasPorts && !m.neg) return '' // `tcp dport` implies the protocol
      return `meta l4proto ${neq(m.neg)}${PROTO_NAME[m.proto] ?? m.proto}`
    case 'port': {
      const proto = m.module === 'multiport' ? 'th' : m.module
      if (m.dir === 'any') return undefined
      const items = m.ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`))
      return `${proto} ${m.dir === 'src' ? 'sport' : 'dport'} ${neq(m.neg)}${listText(items)}`
    }
    case 'ctstate':
      return `ct state ${neq(m.neg)}${listText(m.states.map((s) => s.toLowerCase()))}`
    case 'mark': {
      const left = m.module === 'mark' ? 'meta mark' : 'ct mark'
      const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`
      if (m.mask >>> 0 === 0xffffffff) return `${left} ${neq(m.neg)}${hex(m.value)}`
      return `${left} & ${hex(m.mask)} ${m.neg ? '!=' : '=='} ${hex(m.value)}`
    }
    case 'comment':
      return ''
    default:
      return undefined
  }
}

function targetToNft(t: Target): string | undefined {
  const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`
  const ep = (ip: IpAddr | undefined, port: number | undefined) => (ip ? prefixText({...ip, len: ip.family === 4 ? 32 : 128}) : '') + (port !== undefined ? `:${port}` : '')
  switch (t.kind) {
    case 'ACCEPT':
      return 'accept'
    case 'DROP':
      return 'drop'
    case 'RETURN':
      return 'return'
    case 'jump':
    case 'goto':
      return `${t.kind} ${t.chain}`
    case 'REJECT':
      if (t.with === 'tcp-reset') return 'reject with tcp reset'
      return t.with.startsWith('icmp-') && t.with !== 'icmp-port-unreachable' ? `reject with icmp ${t.with.slice(5)}` : 'reject'
    case 'MASQUERADE':
      return 'masquerade' + (t.ports ? ` to :${t.ports[0]}${t.ports[1] !== t.ports[0] ? `-${t.ports[1]}` : ''}` : '')
    case 'SNAT':
    case 'DNAT': {
      const r = t.to[0]
      if (!r?.from && r?.portFrom === undefined) return undefined
      return `${t.kind.toLowerCase()} to ${ep(r.from, r.portFrom)}`
    }
    case 'MARK':
      if (t.op === 'xset' && t.mask >>> 0 === 0xffffffff) return `meta mark set ${hex(t.value)}`
      if (t.op === 'or') return `meta mark set meta mark | ${hex(t.value)}`
      if (t.op === 'and') return `meta mark set meta mark & ${hex(t.value)}`
      return undefined
    case 'CONNMARK':
      if (t.op === 'restore') return 'meta mark set ct mark'
      if (t.op === 'save') return 'ct mark set meta mark'
      if (t.op === 'xset' && 'mask' in t && t.mask >>> 0 === 0xffffffff) return `ct mark set ${hex(t.value)}`
      return undefined
    case 'LOG':
      return t.prefix !== undefined ? `log prefix "${t.prefix}"` : 'log'
    case 'NOTRACK':
      return 'notrack'
    default:
      return undefined
  }
}

function isStateStmt(s: NftStmt): boolean {
  if (s.kind !== 'match') return false
  const l = s.left
  if (l.kind === 'ct' && l.key === 'state') return true
  if (l.kind === 'payload' && l.protocol === 'tcp' && l.field === 'flags') return true
  if (l.kind === 'binop' && l.left.kind === 'payload' && l.left.protocol === 'tcp' && l.left.field === 'flags') return true
  return false
}

const CT_NEW: NftStmt = {kind: 'match', op: 'in', left: {kind: 'ct', key: 'state'}, right: {kind: 'string', value: 'new'}}
const MARK_ZERO: NftStmt = {kind: 'match', op: '==', left: {kind: 'meta', key: 'mark'}, right: {kind: 'number', value: 0}}

/**
 * The commands that put rule `text` before `at` (undefined: at the end) of a chain holding `rules`, never making
 * a second copy of a rule the chain has: one before the place is there already (nothing to do), one after it is
 * deleted and the rule inserted at the place.
 */
function placed(rules: readonly NftRule[], at: NftRule | undefined, text: string, cmds: () => string | string[]): FixOp[] {
  const out = (): FixOp[] => [cmds()].flat().map((t) => ({kind: 'cmd', text: t}))
  const same = rules.find((r) => formatNftRule(r) === text)
  if (!same) return out()
  const atIdx = at ? rules.indexOf(at) : rules.length
  if (same === at || rules.indexOf(same) < atIdx) return []
  return [{kind: 'cmd', text: `nft delete rule ${same.family} ${same.table} ${same.chain} handle ${same.handle}`}, ...out()]
}

/** Whether a rule tests the conntrack state (`ct state ...`, a vmap on it). */
function testsCtState(r: NftRule): boolean {
  return r.stmts.some((s) => (s.kind === 'match' && s.left.kind === 'ct' && s.left.key === 'state') || (s.kind === 'vmap' && s.key.kind === 'ct' && s.key.key === 'state'))
}

/**
 * A rule that decides on `ct state` in a base chain that runs before conntrack (prerouting or output at a priority
 * of -200 or below; beforeConntrack): it sees every packet as invalid (nft_ct_get_eval: no entry yet), so
 * `ct state invalid drop` there drops every packet, of every connection, both ways. An accept before it would have
 * to name every packet; the fix moves the rule to where conntrack has classified the packet: deleted from the
 * early chain, appended to a chain of the same table at the mangle priority (-150, after conntrack's -200, before
 * DNAT's -100), created when the table lacks it. The rule `text` the caller meant to put before it (the accept
 * of the packet that was dropped) goes at the head of that chain: after conntrack the packet may still be invalid
 * (the client's ACK of a path whose replies go around this host: nf_conntrack_proto_tcp.c, SYN_SENT -> sIV).
 * Undefined for any other rule.
 */
function moveAfterConntrack(shadow: NftShadow, r: NftRule, text: string): FixOp[] | undefined {
  const t = shadow.table
  const chain = t.chains.get(r.chain)
  const b = chain?.base
  if (!b || (b.hook !== 'prerouting' && b.hook !== 'output') || b.priority > NF_IP_PRI.CONNTRACK || b.type === 'nat') return undefined
  if (!testsCtState(r)) return undefined
  let name = `${r.chain}_tracked`
  while (t.chains.has(name) && t.chains.get(name)!.base?.priority !== -150) name = `lvsdoctor_${name}`
  const spec = `{ type filter hook ${b.hook} priority -150; policy accept; }`
  return [
    {kind: 'cmd', text: `nft delete rule ${r.family} ${t.name} ${r.chain} handle ${r.handle}`},
    ...(t.chains.has(name) ? [] : [{kind: 'cmd' as const, text: `nft add chain ${t.family} ${t.name} ${name} ${shellQuote(spec)}`}]),
    {kind: 'cmd', text: `nft insert rule ${t.family} ${t.name} ${name} ${shellQuote(text)}`},
    {kind: 'cmd', text: addCmd({family: t.family, table: t.name, name}, formatNftRule(r))},
  ]
}

/** Fixes in nft syntax; decisions in iptables rulesets go to the iptables fixer. */
export class NftFixer implements FirewallFixer {
  constructor(private readonly ipt: FirewallFixer) {}

  private before(d: Decision, text: string): FixOp[] {
    const shadow = shadowOf(d.ruleset)!
    const rule = d.rule ? shadow.origin.get(d.rule) : d.gotoFrom ? shadow.origin.get(d.gotoFrom) : undefined
    const moved = d.rule && rule ? moveAfterConntrack(shadow, rule, text) : undefined
    if (moved) return moved
    if (rule) return placed(shadow.table.chains.get(rule.chain)?.rules ?? [], rule, text, () => insertCmd(rule, text))
    const {c, create, rules} = chainFor(shadow, d.table, d.chain)
    return placed(rules, undefined, text, () => [...create.map((x) => (x as {text: string}).text), addCmd(c, text)])
  }

  acceptBefore(d: Decision, sel: PacketSelector): FixOp[] {
    return [d, ...dropsAfter(d)].flatMap((x) => (shadowOf(x.ruleset) ? this.before(x, `${selectorText(sel)} accept`.trim()) : this.ipt.acceptBefore(x, sel)))
  }

  acceptEstablishedBefore(d: Decision): FixOp[] {
    return [d, ...dropsAfter(d)].flatMap((x) => (shadowOf(x.ruleset) ? this.before(x, 'ct state established,related accept') : this.ipt.acceptEstablishedBefore(x)))
  }

  masqueradeBefore(d: Decision, sel: PacketSelector): FixOp[] {
    if (!shadowOf(d.ruleset)) return this.ipt.masqueradeBefore(d, sel)
    return this.before(d, `${selectorText(sel)} masquerade`.trim())
  }

  replaceStateless(d: {readonly rule: IptRule; readonly ruleset: IptablesRuleset}): FixOp[] | undefined {
    const shadow = shadowOf(d.ruleset)
    if (!shadow) return this.ipt.replaceStateless(d)
    const r = shadow.origin.get(d.rule)
    if (!r) return undefined
    const kept = r.stmts.filter((s) => !isStateStmt(s))
    if (kept.length === r.stmts.length) return undefined
    return [{kind: 'cmd', text: replaceCmd(r, ruleWith(r, kept))}]
  }

  replaceProbability(rule: IptRule, ruleset: IptablesRuleset, p: number): FixOp[] | undefined {
    // nft has no `statistic`: the shadow's probabilities come from numgen/jhash maps, whose shares are exact
    if (!shadowOf(ruleset)) return this.ipt.replaceProbability(rule, ruleset, p)
    return undefined
  }

  replaceNewOnly(rule: IptRule, ruleset: IptablesRuleset): FixOp[] | undefined {
    const shadow = shadowOf(ruleset)
    if (!shadow) return this.ipt.replaceNewOnly(rule, ruleset)
    const r = shadow.origin.get(rule)
    if (!r) return undefined
    return [{kind: 'cmd', text: replaceCmd(r, ruleWith(r, [CT_NEW, ...r.stmts]))}]
  }

  replaceUnmarkedOnly(rule: IptRule, ruleset: IptablesRuleset): FixOp[] | undefined {
    const shadow = shadowOf(ruleset)
    if (!shadow) return this.ipt.replaceUnmarkedOnly(rule, ruleset)
    const r = shadow.origin.get(rule)
    if (!r) return undefined
    return [{kind: 'cmd', text: replaceCmd(r, ruleWith(r, [MARK_ZERO, ...r.stmts]))}]
  }

  insertAt(ruleset: IptablesRuleset, table: string, chain: string, pos: number, spec: string): FixOp[] {
    const shadow = shadowOf(ruleset)
    if (!shadow) return this.ipt.insertAt(ruleset, table, chain, pos, spec)
    const text = specToNft(spec, table, chain, chain === 'OUTPUT' || chain === 'POSTROUTING')
    if (text === undefined) return [{kind: 'cmd', text: `# not expressible in nft syntax by lvsdoctor: ${spec}`}]
    const {c, create, rules} = chainFor(shadow, table, chain)
    const shadowRule = shadow.ruleset.tables.get(table)?.chains.get(chain)?.rules[pos - 1]
    const at = shadowRule ? shadow.origin.get(shadowRule) : undefined
    if (at) return placed(shadow.table.chains.get(at.chain)?.rules ?? [], at, text, () => [...create.map((x) => (x as {text: string}).text), insertCmd(at, text)])
    return placed(rules, undefined, text, () => [...create.map((x) => (x as {text: string}).text), addCmd(c, text)])
  }
}

/** The nft chain a shadow decision names (for messages). */
export function nftChainOf(d: Decision): NftChain | undefined {
  const s = shadowOf(d.ruleset)
  return s?.chains.get(`${d.table}/${d.chain}`)
}

export {formatNftStmt}

const LOOPBACK_ADDR: IpAddr = {family: 4, value: 0x7f000001n}
