// The ladder of rule helpers (hadolint's simpleRule -> customRule -> veryCustomRule): the simplest rules
// look at one item at a time; the most general ones see the whole world and decide at the end.
//
//   iptablesRule  one iptables rule at a time (with its ruleset and host)
//   hostRule      one host at a time
//   serviceRule   one load-balanced service at a time (IPVS virtual service or DNAT balancer)
//   customRule    the whole set of hosts
import type {Evidence, Severity} from '../../model/finding.js'
import type {IptablesRuleset, IptRule} from '../../model/iptables.js'
import type {Rule, RuleContext, RuleFinding, RuleMeta} from '../types.js'
import type {FixOp} from './fix.js'
import type {HostView} from './host.js'
import {isLbHost, world, type LbService, type World} from './world.js'

export interface FindingInit {
  readonly message: string
  readonly evidence: readonly Evidence[]
  readonly fix?: {readonly summary: string; readonly ops: readonly FixOp[]}
  readonly unverified?: readonly string[]
  readonly severity?: Severity
  readonly title?: string
}

export function finding(meta: RuleMeta, host: string, f: FindingInit): RuleFinding {
  const out: RuleFinding = {
    rule: meta.id,
    severity: f.severity ?? meta.severity,
    host,
    title: f.title ?? meta.title,
    message: f.message,
    evidence: dedupeEvidence(f.evidence),
    ...(f.fix && f.fix.ops.length + f.fix.summary.length > 0 ? {fix: f.fix} : {}),
    ...(f.unverified && f.unverified.length ? {unverified: [...new Set(f.unverified)]} : {}),
  }
  return out
}

/** An info finding that says what the rule could not check, and why. */
export function unverifiedFinding(meta: RuleMeta, host: string, message: string, what: readonly string[], evidence: readonly Evidence[] = []): RuleFinding {
  return finding(meta, host, {message, evidence, unverified: what, severity: 'info', title: `${meta.title} (not verified)`})
}

/**
 * The evidence in order, each `host|file|line|text` once. With no '|' in a host or file name that text names
 * the four fields unambiguously, so they are compared field by field, line first (no key text per line).
 */
function dedupeEvidence(e: readonly Evidence[]): Evidence[] {
  if (e.some((x) => x.file.includes('|') || !!x.host?.includes('|'))) return dedupeByText(e)
  const byLine = new Map<number, Evidence[]>()
  const out: Evidence[] = []
  for (const x of e) {
    const same = byLine.get(x.line)
    if (same) {
      if (same.some((y) => (y.host ?? '') === (x.host ?? '') && y.file === x.file && y.text === x.text)) continue
      same.push(x)
    } else byLine.set(x.line, [x])
    out.push(x)
  }
  return out
}

function dedupeByText(e: readonly Evidence[]): Evidence[] {
  const seen = new Set<string>()
  const out: Evidence[] = []
  for (const x of e) {
    const k = `${x.host ?? ''}|${x.file}|${x.line}|${x.text}`
    if (seen.has(k)) continue
    seen.add(k)
    out.push(x)
  }
  return out
}

type Many = RuleFinding | readonly RuleFinding[] | undefined

function flat(x: Many): RuleFinding[] {
  if (!x) return []
  return Array.isArray(x) ? [...(x as readonly RuleFinding[])] : [x as RuleFinding]
}

export function customRule(meta: RuleMeta, check: (w: World, ctx: RuleContext) => Many): Rule {
  return {meta, check: (ctx) => flat(check(world(ctx), ctx))}
}

/** One host at a time; by default only hosts that take part in load balancing (see isLbHost). */
export function hostRule(meta: RuleMeta, check: (h: HostView, w: World) => Many, opts: {allHosts?: boolean} = {}): Rule {
  return customRule(meta, (w) => w.hosts.filter((h) => opts.allHosts || isLbHost(w, h)).flatMap((h) => flat(check(h, w))))
}

export function serviceRule(meta: RuleMeta, check: (svc: LbService, w: World) => Many, filter: (svc: LbService) => boolean = () => true): Rule {
  return customRule(meta, (w) => {
    const out: RuleFinding[] = []
    const services = w.services
    for (let i = 0; i < services.length; i++) {
      const s = services[i]!
      if (!filter(s)) continue
      const x = check(s, w)
      if (!x) continue
      if (Array.isArray(x)) out.push(...(x as readonly RuleFinding[]))
      else out.push(x as RuleFinding)
    }
    return out
  })
}

export function iptablesRule(meta: RuleMeta, check: (rule: IptRule, rs: IptablesRuleset, h: HostView, w: World) => Many, tables?: readonly string[]): Rule {
  return hostRule(meta, (h, w) => {
    const out: RuleFinding[] = []
    for (const rs of h.fw?.rulesets ?? []) {
      for (const [tname, t] of rs.tables) {
        if (tables && !tables.includes(tname)) continue
        for (const c of t.chains.values()) for (const r of c.rules) out.push(...flat(check(r, rs, h, w)))
      }
    }
    return out
  })
}
