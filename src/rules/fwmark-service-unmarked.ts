// fwmark-service-unmarked: an IPVS fwmark service (-f MARK) receives only packets whose skb->mark equals its
// mark when they reach LOCAL_IN. If no reachable MARK rule sets it, or a later MARK rule overwrites it, the
// service receives nothing.
import {serviceRule, finding} from './engine/helpers.js'
import {ev, UNKNOWN_IF} from './engine/host.js'
import {ctView} from './engine/ctmodel.js'
import {enumerate, reachableStatRules} from './engine/cascade.js'
import {markSetters, selectorOf, describeService, type LbService, type World} from './engine/world.js'
import {flowPacket} from './engine/packets.js'
import {specTokens, joinSpec, type FixOp} from './engine/fix.js'
import type {IptRule} from '../model/iptables.js'
import type {Evidence} from '../model/finding.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'fwmark-service-unmarked',
  title: 'an fwmark virtual service whose mark no rule sets',
  severity: 'error',
  description:
    "IPVS looks up an fwmark service by the packet's mark (skb->mark) at LOCAL_IN. The mark must be set before, in mangle PREROUTING (LVS-HOWTO 29.8: packets may never get to the FWMARK rules if they come after ACCEPT rules). A service whose mark no reachable MARK rule sets, or that a later non-terminating MARK rule overwrites, never receives a connection.",
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.8, 29.11.2)', 'ipvsadm(8) (-f, --fwmark-service)', 'net/netfilter/ipvs/ip_vs_core.c ip_vs_in (ip_vs_service_find by fwmark)'],
}

const hex = (n: number) => `0x${n.toString(16)}`

function analyse(svc: LbService, w: World): {evidence: Evidence[]; message: string; ops: FixOp[]} | undefined {
  const h = svc.host
  const mark = svc.fwmark!
  const fw = h.fw
  const setters = (fw?.rulesets ?? []).flatMap((rs) => markSetters(rs, mark).map((rule) => ({rule, rs})))
  if (setters.length === 0) {
    return {
      evidence: [ev(svc.loc)],
      message: `${describeService(svc)}: no MARK rule reachable from mangle PREROUTING sets mark ${hex(mark)}${fw ? '' : ' (the snapshot has no iptables-save)'}, so no packet is ever given to this service.`,
      ops: [],
    }
  }
  const problems: string[] = []
  const evidence: Evidence[] = [ev(svc.loc)]
  const ops: FixOp[] = []
  for (const {rule, rs} of setters) {
    const sel = selectorOf(rs, rule)
    if (!sel.dst && sel.dport === undefined) continue
    const dst = sel.dst ? {family: sel.dst.family, value: sel.dst.value} : (h.primaryAddress() ?? w.client.ip)
    const pkt = flowPacket({src: w.client.ip, sport: w.client.port, dst, dport: sel.dport ?? 80, proto: sel.proto ?? 'tcp'}, 'SYN')
    const env = h.env({iif: UNKNOWN_IF, ct: ctView('NEW'), assumeLocal: [dst]})
    const stat = reachableStatRules([rs], ['PREROUTING'], pkt, env, ['raw', 'mangle'])
    const res = enumerate([rs], stat, (f, orig) => {
      const r = f.runHook('PREROUTING', pkt, env, false)
      const mangle = r.runs.find((x) => x.table === 'mangle')
      const trail = (mangle?.result.trail ?? []).map(orig)
      const markers = trail.filter((t) => t.target?.kind === 'MARK')
      return {mark: r.packet.mark, reached: trail.includes(rule), last: markers.at(-1), decided: mangle?.decision.rule ? orig(mangle.decision.rule) : undefined}
    }, (o) => `${o.mark}|${o.reached}|${o.last?.loc.line}|${o.decided?.loc.line}`)
    if (res.outcomes.some((o) => o.value.mark === mark)) return undefined // some packets get the mark: the service works
    const o = res.outcomes[0]!.value
    evidence.push(ev(rule.loc))
    if (!o.reached) {
      const by = o.decided
      problems.push(`${rule.loc.file}:${rule.loc.line} sets ${hex(mark)} but packets to the service never reach it${by ? `: ${by.loc.file}:${by.loc.line} ends the chain first` : ''}`)
      if (by) {
        evidence.push(ev(by.loc))
        if (by.chain === rule.chain) ops.push(...fw!.fixer.insertAt(rs, 'mangle', by.chain, by.index, joinSpec(specTokens(rule.loc.text))))
      }
    } else if (o.last && o.last !== rule) {
      problems.push(`${rule.loc.file}:${rule.loc.line} sets ${hex(mark)}, but ${o.last.loc.file}:${o.last.loc.line} later sets the mark to ${hex(o.mark)} (MARK does not end the chain: the last one wins)`)
      evidence.push(ev(o.last.loc))
      const r = fw!.fixer.replaceUnmarkedOnly(o.last as IptRule, rs)
      if (r) ops.push(...r)
    } else {
      problems.push(`${rule.loc.file}:${rule.loc.line} sets ${hex(mark)} but the packet leaves mangle PREROUTING with mark ${hex(o.mark)}`)
    }
  }
  if (problems.length === 0) return undefined
  return {evidence, message: `${describeService(svc)} never receives a packet:\n${problems.map((p) => `  ${p}`).join('\n')}`, ops}
}

export default serviceRule(
  meta,
  (svc, w) => {
    const a = analyse(svc, w)
    if (!a) return undefined
    return finding(meta, svc.host.name, {
      message: a.message,
      evidence: a.evidence,
      fix: {
        summary: a.ops.length
          ? 'let the service\'s mark survive mangle PREROUTING (the overwriting rule only marks unmarked packets / the MARK rule goes before the rule that ends the chain)'
          : `add a MARK rule in mangle PREROUTING that sets ${hex(svc.fwmark!)} on the service's packets (iptables -t mangle -A PREROUTING -d <VIP> -p tcp -m multiport --dports <ports> -j MARK --set-mark ${hex(svc.fwmark!)})`,
        ops: a.ops,
      },
    })
  },
  (svc) => svc.kind === 'ipvs' && svc.fwmark !== undefined,
)
