// Shared by the rules about stateful filtering of load-balanced flows: which packets a chain drops, the
// rule that let the SYN in, and the fix that makes the service's accept stateless (LVS-HOWTO 29.14/29.16).
import type {IptRule} from '../../model/iptables.js'
import type {Evidence} from '../../model/finding.js'
import type {Decision, Firewall, PacketSelector} from './firewall.js'
import type {FixOp} from './fix.js'
import {ev} from './host.js'
import type {Replay} from './flows.js'

export interface Blocked {
  readonly replay: Replay
  readonly decision: Decision
  /** what a stateless accept inserted before the decision must match */
  readonly selector: PacketSelector
}

/** A rule whose match depends on the connection state or on the SYN flag. */
export function isStateful(rule: IptRule): boolean {
  return rule.matches.some((m) => (m.kind === 'ctstate' && !m.neg) || m.kind === 'tcpflags')
}

export function acceptsEstablished(rule: IptRule): boolean {
  return rule.target?.kind === 'ACCEPT' && rule.matches.some((m) => m.kind === 'ctstate' && !m.neg && m.states.includes('ESTABLISHED'))
}

function covers(accepting: Decision, b: Blocked): boolean {
  const d = b.decision
  if (d.ruleset !== accepting.ruleset || d.table !== accepting.table || d.chain !== accepting.chain) return false
  if (d.policy) return true
  return !!d.rule && !!accepting.rule && d.rule.index > accepting.rule.index
}

/**
 * The fix: replace the stateful rule that accepted the SYN by its stateless form when the blocked packets
 * passed it (same chain, decided later), and insert a stateless accept before every other decision.
 */
export function statelessFix(fw: Firewall, accepting: Decision | undefined, blocked: readonly Blocked[]): FixOp[] {
  const ops: FixOp[] = []
  let replaced: Decision | undefined
  if (accepting?.rule && isStateful(accepting.rule) && blocked.some((b) => covers(accepting, b))) {
    const r = fw.fixer.replaceStateless({rule: accepting.rule, ruleset: accepting.ruleset})
    if (r) {
      ops.push(...r)
      replaced = accepting
    }
  }
  const done = new Set<string>()
  for (const b of blocked) {
    if (replaced && covers(replaced, b)) continue
    const k = `${b.decision.ruleset.file}|${b.decision.table}|${b.decision.chain}|${b.decision.rule?.index ?? 'policy'}|${JSON.stringify(b.selector, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`
    if (done.has(k)) continue
    done.add(k)
    ops.push(...fw.fixer.acceptBefore(b.decision, b.selector))
  }
  return ops
}

/**
 * One stateless accept per side and chain, before the earliest of the decisions that drop that side's packets
 * there (a policy counts as the end of the chain): the fix of a path whose packets several rules drop.
 */
export function acceptBeforeFirst(fw: Firewall, blocked: readonly {readonly side: 'in' | 'out'; readonly decision: Decision}[], sel: Readonly<Record<'in' | 'out', PacketSelector>>): FixOp[] {
  const first = new Map<string, {readonly side: 'in' | 'out'; readonly decision: Decision}>()
  const pos = (d: Decision) => (d.rule ? d.rule.index : Number.MAX_SAFE_INTEGER)
  for (const b of blocked) {
    const k = `${b.side}|${b.decision.ruleset.file}|${b.decision.table}|${b.decision.chain}`
    const cur = first.get(k)
    if (!cur || pos(b.decision) < pos(cur.decision)) first.set(k, b)
  }
  return [...first.values()].flatMap((b) => fw.fixer.acceptBefore(b.decision, sel[b.side]))
}

export function decisionEvidence(ds: readonly (Decision | undefined)[], host?: string): Evidence[] {
  return ds.filter((d): d is Decision => !!d).map((d) => ev(d.loc, host))
}
