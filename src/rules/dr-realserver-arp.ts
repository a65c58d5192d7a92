// dr-realserver-arp: a DR/TUN realserver holds the VIP (on lo, a dummy or the tunnel) so that it accepts the
// packets; it must not answer ARP for it, or clients and routers send VIP traffic straight to it. The kernel
// answers ARP for any local address on any interface unless arp_ignore >= 1, and announces the VIP as ARP
// source unless arp_announce >= 2; the effective value is max(conf.all, conf.<if>) (IN_DEV_ARP_IGNORE/ANNOUNCE).
import {formatIp, ipEquals, isLoopback, makePrefix, prefixContains, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {customRule, finding, unverifiedFinding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {describeBackend, describeService, type Backend, type LbService} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dr-realserver-arp',
  title: 'a DR/TUN realserver answers ARP for the VIP',
  severity: 'error',
  description:
    'An LVS-DR or LVS-TUN realserver carries the VIP so that it accepts the forwarded packets, but must leave ARP for the VIP to the director. That needs arp_ignore >= 1 and arp_announce >= 2 on the interfaces facing the clients\' network (the kernel uses the larger of conf.all and conf.<if>), and the VIP must not sit on such an interface.',
  sources: ['000_e07122559a47da1e.txt (DR: only the MAC is changed)', 'Documentation/networking/ip-sysctl.rst (arp_ignore, arp_announce)', 'include/linux/inetdevice.h IN_DEV_ARP_IGNORE, IN_DEV_ARP_ANNOUNCE'],
}

const TUNNEL_KINDS = new Set(['ipip', 'gre', 'dummy', 'tun', 'sit', 'ip6tnl', 'gretap'])

function arpInterfaces(rs: HostView): string[] {
  return (rs.snap.interfaces ?? [])
    .filter((i) => i.name !== 'lo' && !TUNNEL_KINDS.has(i.kind ?? '') && !/^tunl|^dummy/.test(i.name) && !i.flags.includes('NOARP') && i.addresses.some((a) => a.family === 4 && !isLoopback(a.ip)))
    .map((i) => i.name)
}

/** Is the address inside the subnet of one of the host's ARP interfaces (neighbours there would ARP for it)? */
function onLink(rs: HostView, ip: IpAddr): boolean {
  const ifs = new Set(arpInterfaces(rs))
  return (rs.snap.interfaces ?? []).some((i) => ifs.has(i.name) && i.addresses.some((x) => x.family === ip.family && x.prefixlen < 32 && prefixContains(makePrefix(x.ip, x.prefixlen), ip)))
}

function checkHost(rs: HostView, vip: IpAddr, context: string, extraEvidence: Evidence[], unverified: string[]): RuleFinding | undefined {
  const at = rs.addressOf(vip)
  if (!at) return undefined
  const ifs = arpInterfaces(rs)
  if (ifs.includes(at.iface.name)) {
    return finding(meta, rs.name, {
      message: `${context}: the VIP ${formatIp(vip)} is configured on ${at.iface.name}, an interface that does ARP: ${rs.name} answers ARP for it whatever arp_ignore says and competes with the director for the VIP. Put the VIP on lo (or a dummy/tunnel interface).`,
      evidence: [...extraEvidence, ev(at.addr.loc)],
      unverified,
      fix: {summary: `move ${formatIp(vip)} from ${at.iface.name} to lo (ip addr del ${formatIp(vip)}/${at.addr.prefixlen} dev ${at.iface.name}; ip addr add ${formatIp(vip)}/32 dev lo) and set arp_ignore=1, arp_announce=2`, ops: []},
    })
  }
  if (!rs.sysctl.present) {
    return unverifiedFinding(meta, rs.name, `${context}: ${rs.name} holds the VIP ${formatIp(vip)} on ${at.iface.name}, but the snapshot has no sysctl.txt to check arp_ignore/arp_announce.`, ['net.ipv4.conf.*.arp_ignore / arp_announce (sysctl.txt)'], [...extraEvidence, ev(at.addr.loc)])
  }
  const bad: string[] = []
  const evidence: Evidence[] = [...extraEvidence, ev(at.addr.loc)]
  let needIgnore = false
  let needAnnounce = false
  for (const i of ifs) {
    const ig = rs.sysctl.conf('arp_ignore', i, 'max')
    const an = rs.sysctl.conf('arp_announce', i, 'max')
    if (ig.value < 1) {
      needIgnore = true
      bad.push(`${i}: effective arp_ignore = ${ig.value} (max of conf.all and conf.${i}): ${rs.name} answers ARP requests for ${formatIp(vip)} arriving on ${i}`)
      evidence.push(...ig.lines.map((l) => ev(l.loc)))
    }
    if (an.value < 2) {
      needAnnounce = true
      bad.push(`${i}: effective arp_announce = ${an.value}: ${rs.name} may use ${formatIp(vip)} as the source of its own ARP requests on ${i}, updating neighbours' caches`)
      evidence.push(...an.lines.map((l) => ev(l.loc)))
    }
  }
  if (bad.length === 0) return undefined
  const ops: FixOp[] = []
  if (needIgnore) ops.push({kind: 'sysctl', key: 'net.ipv4.conf.all.arp_ignore', value: '1'})
  if (needAnnounce) ops.push({kind: 'sysctl', key: 'net.ipv4.conf.all.arp_announce', value: '2'})
  return finding(meta, rs.name, {
    message: `${context}: ${rs.name} holds the VIP ${formatIp(vip)} on ${at.iface.name} and will claim it on the LAN:\n${bad.map((b) => `  ${b}`).join('\n')}`,
    evidence,
    unverified,
    fix: {summary: 'stop answering and announcing ARP for addresses not on the receiving interface (persist in /etc/sysctl.d)', ops},
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  const missing = new Map<LbService, Backend[]>()
  for (const svc of w.services) {
    if (svc.kind !== 'ipvs' || !svc.vip) continue
    for (const b of svc.backends) {
      if ((b.method !== 'route' && b.method !== 'tunnel') || b.local) continue
      if (!b.owner) {
        missing.set(svc, [...(missing.get(svc) ?? []), b])
        continue
      }
      const key = `${b.owner.name}|${svc.vip.value}`
      if (seen.has(key)) continue
      seen.add(key)
      const f = checkHost(b.owner, svc.vip, `${describeBackend(b)} is a ${b.method === 'route' ? 'DR' : 'TUN'} realserver of ${describeService(svc)}`, [ev(svc.loc, svc.host.name), ev(b.loc, svc.host.name)], [])
      if (f) out.push(f)
    }
  }
  for (const [svc, bs] of missing) {
    out.push(unverifiedFinding(meta, svc.host.name, `${svc.host.name} forwards ${describeService(svc)} by DR/TUN to ${bs.map(describeBackend).join(', ')}, but no snapshot of ${bs.length > 1 ? 'those realservers' : 'that realserver'} was given: their ARP settings for the VIP could not be checked.`, bs.map((b) => `ARP settings of the host owning ${formatIp(b.ip)} (no snapshot)`), [ev(svc.loc), ...bs.map((b) => ev(b.loc))]))
  }
  // a realserver checked on its own: the VIPs it carries on lo stand for the service. A VIP that a host among
  // the snapshots routes to it through a gateway (a forwarded path, engine/forward.ts) is not resolved by
  // ARP; its ARP matters only where the VIP is inside one of the realserver's networks, where neighbours
  // would ask for it.
  for (const h of w.hosts) {
    if (h.snap.role !== 'realserver' || w.services.some((s) => s.backends.some((b) => b.owner === h))) continue
    for (const a of (h.snap.interfaces ?? []).find((i) => i.name === 'lo')?.addresses ?? []) {
      if (a.family !== 4 || isLoopback(a.ip)) continue
      if (w.forwards.some((f) => f.realserver === h && ipEquals(f.vip, a.ip)) && !onLink(h, a.ip)) continue
      const f = checkHost(h, a.ip, `${h.name} is a realserver carrying ${formatIp(a.ip)} on lo`, [], [`no director snapshot: ${formatIp(a.ip)} on lo is taken to be a DR/TUN VIP`])
      if (f) out.push(f)
    }
  }
  return out
})
