// vip-not-local: IPVS takes packets at LOCAL_IN, so the VIP of a non-fwmark service must be an address of
// the director; otherwise the packets are forwarded (or dropped) and never reach IPVS.
import {formatIp, hostPrefix, formatPrefix} from '../model/ip.js'
import {serviceRule, finding, unverifiedFinding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {describeService} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'vip-not-local',
  title: 'the VIP is not an address of the director',
  severity: 'error',
  description:
    'ip_vs_in is hooked at LOCAL_IN: only packets routed to this host reach it. A virtual service (not fwmark) whose VIP is not a local address of the director never sees its packets.',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3)', 'ipvsadm(8)', 'net/netfilter/ipvs/ip_vs_core.c'],
}

export default serviceRule(
  meta,
  (svc) => {
    const h = svc.host
    const vip = svc.vip!
    const local = h.isLocal(vip)
    if (local === undefined) {
      return unverifiedFinding(meta, h.name, `Cannot tell whether ${formatIp(vip)} (${describeService(svc)}) is an address of ${h.name}: the snapshot has no ip-addr.json or ip-route.json.`, ['the director\'s addresses (ip -j addr show, ip -j route show table all)'], [ev(svc.loc)])
    }
    if (local) return undefined
    const vrrp = h.snap.keepalived?.vrrpAddresses.find((a) => a.ip.family === vip.family && a.ip.value === vip.value)
    if (vrrp) {
      return finding(meta, h.name, {
        severity: 'info',
        message: `${formatIp(vip)} (${describeService(svc)}) is not on ${h.name} now, but keepalived's VRRP holds it: this director is the BACKUP and takes the VIP on failover.`,
        evidence: [ev(svc.loc), ev(vrrp.loc)],
      })
    }
    return finding(meta, h.name, {
      message: `${describeService(svc)}: ${formatIp(vip)} is not a local address of ${h.name} (not on any interface, no local route), so its packets never reach IPVS at LOCAL_IN.`,
      evidence: [ev(svc.loc)],
      fix: {
        summary: `make ${formatIp(vip)} an address of ${h.name}: the command below adds the local route that \`ip addr add ${formatIp(vip)}/32 dev <if>\` would install (persist the address in the network configuration)`,
        ops: [{kind: 'cmd', text: `ip route add local ${formatPrefix(hostPrefix(vip))}${vip.family === 4 ? '/32' : '/128'} dev lo table local`}],
      },
    })
  },
  (svc) => svc.kind === 'ipvs' && svc.fwmark === undefined && svc.vip !== undefined,
)
