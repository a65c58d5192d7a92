// filter-blocks-vip: the first packet of a client's connection to a VIP:port is dropped before IPVS sees it
// (filter INPUT runs before ip_vs_remote_request4 at LOCAL_IN), or, for a DNAT balancer, before it is
// forwarded to a backend (filter FORWARD).
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {assumedNote, guessesOf, requestIn, requestInBlocked, params, ipvsKnobs, where, ipSel, placeOf} from './engine/flows.js'
import {describeService, vipSelector, type LbService} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'filter-blocks-vip',
  title: 'the firewall drops new connections to the VIP before the balancer sees them',
  severity: 'error',
  description:
    'A new connection to a virtual service meets filter INPUT before IPVS (LOCAL_IN, IPVS registers after the filter table); for a DNAT balancer it meets filter FORWARD after the DNAT. A DROP or REJECT there (a rule or the chain policy) means no client ever reaches a realserver.',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3, 29.6, 29.11.2)', '001_99dd2e38bf121ee9.txt', 'net/netfilter/ipvs/ip_vs_core.c ip_vs_ops4'],
}

export default serviceRule(meta, (svc: LbService, w) => {
  const h = svc.host
  if (!h.fw) return undefined
  const k = ipvsKnobs(h)
  for (const probe of svc.probes) {
    const p = params(k, svc.kind === 'dnat' ? 'dnat' : 'masq', svc.proto)
    // the verdict first (its forwarded part shared with other services' packets); the packet itself when it is blocked
    if (!requestInBlocked(svc, w, probe, 'SYN', p, 'NEW')) continue
    const r = requestIn(svc, w, probe, 'SYN', p, 'NEW')
    const b = r.result.blocked
    if (!b) continue
    // a DNAT service whose own rule did not take this packet (it selects other sources, e.g. OpenWrt's reflection
    // rules for LAN clients only): the drop is not about the service's connections
    if (svc.kind === 'dnat' && b.hook.hook !== 'PREROUTING' && !r.result.hooks.some((hk) => hk.hook === 'PREROUTING' && (hk.nat?.kind === 'DNAT' || hk.nat?.kind === 'REDIRECT'))) continue
    const d = b.decision
    // the packet as the dropping chain sees it: after the DNAT (FORWARD, or INPUT for a DNAT/REDIRECT to the host itself)
    const seen = r.result.packet
    const afterDnat = b.hook.hook === 'FORWARD' || b.hook.hook === 'POSTROUTING' || seen.dst.value !== probe.dst.value || seen.dport !== probe.dport
    const sel = afterDnat ? ipSel(seen.dst, svc.proto, seen.dport) : vipSelector(svc)
    const note = assumedNote(d)
    const guesses = guessesOf([r])
    const target = svc.kind === 'ipvs' ? 'IPVS' : 'the DNAT backends'
    return finding(meta, h.name, {
      severity: note || guesses.length ? 'info' : undefined,
      message:
        `New connections to ${describeService(svc)} are ${d.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(d)}, ` +
        `before ${target} ${svc.kind === 'ipvs' ? 'sees them (filter INPUT runs before IPVS at LOCAL_IN)' : 'receive them'}.`,
      evidence: [ev(svc.loc), ...r.result.hooks.flatMap((hk) => hk.runs.filter((x) => x.decision.rule && x.decision.verdict !== 'ACCEPT').map((x) => ev(x.decision.loc))), ev(d.loc)],
      unverified: [note, ...guesses, svc.vipAssumed ? `the DNAT rule has no destination address: ${h.name}'s own address stands for the VIP` : undefined].filter((x): x is string => !!x),
      fix: {
        summary: `accept the service's packets before ${placeOf(d)} (stateless, so that every packet of the connection passes)`,
        ops: h.fw.fixer.acceptBefore(d, sel),
      },
    })
  }
  return undefined
})
