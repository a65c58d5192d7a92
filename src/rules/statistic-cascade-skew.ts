// statistic-cascade-skew: the real distribution of a `-m statistic --mode random` cascade. Each rule draws
// only for the packets that reach it: with terminating targets (DNAT, a jump to a chain that DNATs) the first
// match wins, so shares are p1, (1-p1)p2, ...; with MARK the last match wins, so a later p=1 rule takes
// everything. Computed exactly by running the chains for every outcome of the draws (engine/cascade.ts).
import {serviceRule, finding} from './engine/helpers.js'
import {ev, locRef} from './engine/host.js'
import {describeBackend, describeService, type LbService} from './engine/world.js'
import type {StatRule} from './engine/cascade.js'
import type {FixOp} from './engine/fix.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'statistic-cascade-skew',
  title: 'a random statistic cascade does not split traffic as written',
  severity: 'warning',
  description:
    'A chain of `-m statistic --mode random --probability p` rules selects a backend per new connection. Probabilities apply to the packets that reach each rule: first-match-wins for terminating targets (DNAT) and last-match-wins for MARK. The real shares can leave a backend at 0%, let connections fall through to no backend, or differ from the shares the probabilities were written as.',
  sources: ['001_99dd2e38bf121ee9.txt (L4xNAT: MARK with statistic probability 1.0 then 0.5, last match wins)', 'iptables-extensions(8) statistic', 'net/netfilter/xt_statistic.c'],
}

const pct = (p: number) => `${(p * 100).toFixed(1)}%`
const EPS = 0.005
const DECLARED_TOLERANCE = 0.05

function chainOrder(stat: readonly StatRule[]): StatRule[] | undefined {
  const first = stat[0]
  if (!first || stat.some((s) => s.rule.table !== first.rule.table || s.rule.chain !== first.rule.chain || s.ruleset !== first.ruleset)) return undefined
  return [...stat].sort((a, b) => a.rule.index - b.rule.index)
}

function fixOps(svc: LbService, stat: readonly StatRule[], declared: boolean): FixOp[] {
  const fw = svc.host.fw
  const ordered = chainOrder(stat)
  if (!fw || !ordered) return []
  const kinds = new Set(ordered.map((s) => (s.rule.target?.kind === 'MARK' ? 'last' : 'first')))
  if (kinds.size !== 1) return []
  const total = ordered.reduce((a, s) => a + s.p, 0)
  const want = ordered.map((s) => (declared ? s.p / total : 1 / ordered.length))
  const out: FixOp[] = []
  const p: number[] = []
  if (kinds.has('first')) {
    let used = 0
    for (const wi of want) {
      p.push(used >= 1 - 1e-12 ? 1 : Math.min(1, wi / (1 - used)))
      used += wi
    }
    p[p.length - 1] = 1
  } else {
    let after = 0
    for (let i = want.length - 1; i >= 0; i--) {
      p[i] = after >= 1 - 1e-12 ? 1 : Math.min(1, want[i]! / (1 - after))
      after += want[i]!
    }
    p[0] = 1
  }
  ordered.forEach((s, i) => {
    if (Math.abs(s.p - p[i]!) < 1e-9) return
    const r = fw.fixer.replaceProbability(s.rule, s.ruleset, p[i]!)
    if (r) out.push(...r)
  })
  return out
}

export default serviceRule(
  meta,
  (svc) => {
    const c = svc.cascade!
    const none = c.outcomes.filter((o) => !o.value.rule).reduce((a, o) => a + o.p, 0)
    const zero = svc.backends.filter((b) => (b.share ?? 0) < EPS)
    const total = c.stat.reduce((a, s) => a + s.p, 0)
    const declared = Math.abs(total - 1) < 0.01 && c.stat.length > 1
    // declared shares: each rule's probability, credited to the backend it leads to alone
    const off: string[] = []
    if (declared) {
      for (const b of svc.backends) {
        const rulesFor = c.stat.filter((s) => s.rule === b.rule || (s.rule.target?.kind === 'MARK' && s.rule.target.value === c.outcomes.find((o) => o.value.rule === b.rule)?.value.mark))
        const want = rulesFor.reduce((a, s) => a + s.p, 0)
        if (rulesFor.length && Math.abs(want - (b.share ?? 0)) > DECLARED_TOLERANCE) off.push(`${describeBackend(b)}: written as ${pct(want)}, gets ${pct(b.share ?? 0)}`)
      }
    }
    if (zero.length === 0 && none < EPS && off.length === 0) return undefined
    const lines = svc.backends.map((b) => `  ${describeBackend(b)} (${locRef(b.loc)}): ${pct(b.share ?? 0)}`)
    if (none >= EPS) lines.push(`  no backend (the packet falls through the cascade): ${pct(none)}`)
    const problems: string[] = []
    if (zero.length) problems.push(`${zero.map(describeBackend).join(', ')} never ${zero.length > 1 ? 'get' : 'gets'} a connection`)
    if (none >= EPS) problems.push(`${pct(none)} of new connections match no DNAT rule`)
    if (off.length) problems.push(`the probabilities add up to 1, as if each were a share, but they apply to what earlier rules left: ${off.join('; ')}`)
    const ops = fixOps(svc, c.stat, declared)
    return finding(meta, svc.host.name, {
      message: `${describeService(svc)}: ${problems.join('; ')}.\nReal distribution of new connections${c.sampled ? ' (sampled: too many statistic rules to enumerate)' : ''}:\n${lines.join('\n')}`,
      evidence: [...c.stat.map((s) => ev(s.rule.loc)), ...svc.backends.map((b) => ev(b.loc))],
      unverified: c.sampled ? ['the distribution was sampled (4096 draws), not enumerated'] : [],
      fix: {
        summary: ops.length
          ? `rewrite the probabilities so each of the ${c.stat.length} rules gets ${declared ? 'the share its probability was written as' : 'an equal share'}: for first-match rules p_i = w_i / (1 - w_1 - ... - w_(i-1)), the last 1; for MARK rules (last match wins) the same from the end, the first 1`
          : 'order the rules so every backend can be reached and the last rule of the cascade matches with probability 1',
        ops,
      },
    })
  },
  (svc) => svc.kind === 'dnat' && !!svc.cascade && svc.cascade.stat.length > 0,
)
