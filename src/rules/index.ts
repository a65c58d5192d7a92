// The explicit registry of rules. A test checks that each has docs/rules/<id>.md and fixtures.
import type {Finding} from '../model/finding.js'
import type {Rule, RuleContext} from './types.js'

export const RULES: readonly Rule[] = []

export function runRules(ctx: RuleContext, rules: readonly Rule[] = RULES): Finding[] {
  const out: Finding[] = []
  for (const r of rules) out.push(...r.check(ctx))
  return out
}
