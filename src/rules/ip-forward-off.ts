// ip-forward-off: NAT balancing forwards packets (LVS-NAT replies at FORWARD, DNAT'ed requests), which the
// kernel does only with forwarding on (ip_route_input_slow: IN_DEV_FORWARD). LVS-DR/TUN do not need it.
import {hostRule, finding, unverifiedFinding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {listSome} from './engine/list.js'
import {describeService, isNatMethod} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'ip-forward-off',
  title: 'NAT balancing with IP forwarding off',
  severity: 'error',
  description:
    'LVS-NAT replies and DNAT-balanced requests are forwarded packets; with net.ipv4.ip_forward = 0 the kernel drops them at the routing decision (before FORWARD, so IPVS never un-NATs a reply). LVS-DR and LVS-TUN work without forwarding (LVS-HOWTO 29.11.4).',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3, 29.11.4)', '001_99dd2e38bf121ee9.txt', 'net/ipv4/route.c ip_route_input_slow'],
}

export default hostRule(meta, (h, w) => {
  const svcs = w.services.filter((s) => s.host === h && s.backends.some((b) => isNatMethod(b.method) && !b.local))
  if (svcs.length === 0) return undefined
  const v = h.sysctl.get('net.ipv4.ip_forward')
  if (!v) {
    return unverifiedFinding(meta, h.name, `${h.name} balances with NAT (${listSome(svcs.map(describeService))}) but the snapshot has no net.ipv4.ip_forward: forwarding could not be checked.`, ['net.ipv4.ip_forward (sysctl.txt)'], svcs.map((s) => ev(s.loc)))
  }
  if (v.value.trim() !== '0') return undefined
  return finding(meta, h.name, {
    message: `${h.name} balances with NAT (${listSome(svcs.map(describeService))}) but net.ipv4.ip_forward = 0: ${svcs.some((s) => s.kind === 'ipvs') ? "the realservers' replies are not forwarded, so IPVS never un-NATs them" : 'the DNAT\'ed packets are not forwarded to the backends'}.`,
    evidence: [ev(v.loc), ...svcs.map((s) => ev(s.loc))],
    fix: {summary: 'turn forwarding on (and persist it in /etc/sysctl.d)', ops: [{kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1'}]},
  })
})
