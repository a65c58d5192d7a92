// The explicit registry of rules. A test checks that each has docs/rules/<id>.md and fixtures.
import type {Finding} from '../model/finding.js'
import {runRulesInRounds, type RoundOptions} from './rounds.js'
import type {Rule, RuleContext, RuleFinding} from './types.js'
import drStatefulFilter from './dr-stateful-filter.js'
import rejectOnOneWayFlow from './reject-on-one-way-flow.js'
import natReplyBypassesDirector from './nat-reply-bypasses-director.js'
import localhostDnat from './localhost-dnat.js'
import natStatefulOutput from './nat-stateful-output.js'
import ipvsConntrackOff from './ipvs-conntrack-off.js'
import fwmarkServiceUnmarked from './fwmark-service-unmarked.js'
import vipNotLocal from './vip-not-local.js'
import ipForwardOff from './ip-forward-off.js'
import filterBlocksVip from './filter-blocks-vip.js'
import statisticCascadeSkew from './statistic-cascade-skew.js'
import markNotConnmarked from './mark-not-connmarked.js'
import drRealserverArp from './dr-realserver-arp.js'
import rpFilterAsymmetric from './rp-filter-asymmetric.js'
import drPortMismatch from './dr-port-mismatch.js'
import forwardDropsNatReplies from './forward-drops-nat-replies.js'
import ipvsNoAvailableRealserver from './ipvs-no-available-realserver.js'
import realserverFilterBlocksService from './realserver-filter-blocks-service.js'
import forwardBlocksRoutedVip from './forward-blocks-routed-vip.js'
import forwardDropsNatRequests from './forward-drops-nat-requests.js'
import udpReplyWrongSource from './udp-reply-wrong-source.js'
import dnatUntracked from './dnat-untracked.js'
import drReplyViaDirector from './dr-reply-via-director.js'
import drRealserverNoVip from './dr-realserver-no-vip.js'
import ipvsHashQuiesced from './ipvs-hash-quiesced.js'
import oneWayReplySnat from './one-way-reply-snat.js'
import conntrackTableFull from './conntrack-table-full.js'
import healthCheckBlocked from './health-check-blocked.js'
import localClientBlocked from './local-client-blocked.js'
import routeDropsService from './route-drops-service.js'
import backendNotListening from './backend-not-listening.js'
import ipvsIdleTimeout from './ipvs-idle-timeout.js'

export const RULES: readonly Rule[] = [
  drStatefulFilter,
  rejectOnOneWayFlow,
  natReplyBypassesDirector,
  localhostDnat,
  natStatefulOutput,
  ipvsConntrackOff,
  fwmarkServiceUnmarked,
  vipNotLocal,
  ipForwardOff,
  filterBlocksVip,
  statisticCascadeSkew,
  markNotConnmarked,
  drRealserverArp,
  rpFilterAsymmetric,
  drPortMismatch,
  forwardDropsNatReplies,
  ipvsNoAvailableRealserver,
  realserverFilterBlocksService,
  forwardBlocksRoutedVip,
  forwardDropsNatRequests,
  udpReplyWrongSource,
  dnatUntracked,
  drReplyViaDirector,
  drRealserverNoVip,
  ipvsHashQuiesced,
  oneWayReplySnat,
  conntrackTableFull,
  healthCheckBlocked,
  localClientBlocked,
  routeDropsService,
  backendNotListening,
  ipvsIdleTimeout,
]

export function ruleById(id: string, rules: readonly Rule[] = RULES): Rule | undefined {
  return rules.find((r) => r.meta.id === id)
}

/** Runs the rules; a rule that throws is reported as an internal-error finding, never silently lost. */
export function runRuleChecks(ctx: RuleContext, rules: readonly Rule[] = RULES): RuleFinding[] {
  const out: RuleFinding[] = []
  for (const r of rules) {
    try {
      out.push(...r.check(ctx))
    } catch (e) {
      out.push({
        rule: r.meta.id,
        severity: 'warning',
        host: ctx.hosts[0]?.name ?? '-',
        title: `${r.meta.id} could not run`,
        message: `internal error in rule ${r.meta.id}: ${(e as Error).message} (please report it; the other rules ran)`,
        evidence: [],
        unverified: [`everything ${r.meta.id} checks`],
      })
    }
  }
  return out
}

/**
 * Runs the rules and renders their fixes as command lines (positions exact in the order given), then judges the
 * hosts again as those fixes leave them: problems the first blockers hid follow, marked `hiddenBehind`
 * (src/rules/rounds.ts).
 */
export function runRules(ctx: RuleContext, rules: readonly Rule[] = RULES, o: RoundOptions = {}): Finding[] {
  return runRulesInRounds(ctx, rules, runRuleChecks, o)
}
