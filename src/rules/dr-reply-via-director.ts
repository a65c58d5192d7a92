// dr-reply-via-director: an LVS-DR (or TUN) realserver whose route to the clients goes back through the director.
// Its answers leave from the VIP, which is one of the director's own addresses: the director's input route drops a
// packet whose source is one of its own addresses as a martian (fib_validate_source, unless accept_local), so no
// answer reaches a client. In LVS-DR the realservers answer the clients themselves: their default route must point
// to a router, not to the director (LVS-HOWTO, LVS-DR: "the director is not the default gw for the realservers").
import {formatIp} from '../model/ip.js'
import {customRule, finding} from './engine/helpers.js'
import {answerSource, ev} from './engine/host.js'
import {returnRoute} from './engine/returnpath.js'
import {describeService} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dr-reply-via-director',
  title: "an LVS-DR realserver answers through the director, which drops its own VIP as a martian source",
  severity: 'error',
  description:
    "An LVS-DR or LVS-TUN realserver answers the client itself, from the VIP. When its route to the clients goes back through the director, the director receives packets whose source address is one of its own (the VIP) and drops them as martians (fib_validate_source, net.ipv4.conf.<if>.accept_local=0): the client never gets an answer. Point the realservers' default route at a router other than the director, or use LVS-NAT, where the director is meant to carry the answers.",
  sources: [
    'LVS-HOWTO, LVS-DR (http://www.austintek.com/LVS/LVS-HOWTO/HOWTO/LVS-HOWTO.LVS-DR.html): the realservers reply to the client directly, through a router that is not the director',
    'net/ipv4/fib_frontend.c fib_validate_source (a local address as the source: martian unless accept_local)',
    'test/ipvs-lab random scenarios (a DR realserver whose gateway is the director: the kernel dropped its SYN/ACK, trace said so, check was silent)',
  ],
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const svc of w.services) {
    if (svc.kind !== 'ipvs' || !svc.vip) continue
    const d = svc.host
    if (d.isLocal(svc.vip) !== true) continue
    for (const b of svc.backends) {
      const rs = b.owner
      if (!rs || (b.method !== 'route' && b.method !== 'tunnel') || b.weight === 0) continue
      if (rs.isLocal(svc.vip) !== true) continue
      const key = `${rs.name}|${svc.vip.value}`
      if (seen.has(key)) continue
      // a UDP server on 0.0.0.0 answers without a source at route lookup: `ip rule from VIP` does not apply (answerSource)
      const src = answerSource(rs, svc.proto, svc.vip, svc.port ?? svc.probes[0]?.dport)
      const ret = returnRoute(w, d, rs, src)
      if (ret.kind !== 'through') continue
      // the director's interface the answers arrive on, and whether it accepts a local source there
      const back = rs.route({dst: w.client.ip, ...(src ? {src} : {})})
      const gw = back?.kind === 'unicast' ? back.gateway : undefined
      const iif = (gw && d.addressOf(gw)?.iface.name) ?? 'all'
      const acceptLocal = d.sysctl.conf('accept_local', iif, 'or')
      if (acceptLocal.value === 1) continue
      seen.add(key)
      out.push(
        finding(meta, rs.name, {
          message:
            `${rs.name} is an LVS-${b.method === 'route' ? 'DR' : 'TUN'} realserver of ${describeService(svc)} on ${d.name}, and its answers to the client ${formatIp(w.client.ip)} go back through ${d.name}${gw ? ` (its route via ${formatIp(gw)})` : ''}. ` +
            `They leave from the VIP ${formatIp(svc.vip)}, which is ${d.name}'s own address: ${d.name} drops them as martians (net.ipv4.conf.${iif}.accept_local is ${acceptLocal.lines.length ? '0' : 'not set (default 0)'}), so no client gets an answer.`,
          evidence: [ev(svc.loc, d.name), ev(b.loc, d.name), ...ret.evidence, ...acceptLocal.lines.map((l) => ev(l.loc, d.name))],
          fix: {summary: `give ${rs.name} a default route to the router the clients are behind, not to ${d.name} (or balance this service with LVS-NAT, whose answers the director is meant to carry)`, ops: []},
        }),
      )
    }
  }
  return out
})
