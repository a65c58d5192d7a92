// ipvs-no-available-realserver: an IPVS virtual service with no destination it may schedule a new connection
// to (none configured, every weight 0, or every one over its upper threshold). ip_vs_schedule finds nothing,
// and ip_vs_leave answers the client's first packet with ICMP port unreachable and drops it: every new
// connection is refused, while connections already scheduled go on (weight 0 "quiesces" a server).
import {formatEndpoint, makePrefix, prefixContains, type IpAddr} from '../model/ip.js'
import type {Loc} from '../model/source.js'
import type {IpvsDest, IpvsService} from '../model/ipvs.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {listSome} from './engine/list.js'
import {describeService, type LbService, type World} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'ipvs-no-available-realserver',
  title: 'an IPVS virtual service with no realserver to schedule',
  severity: 'error',
  description:
    'ip_vs_schedule skips destinations of weight 0 (quiesced) and destinations over their upper connection threshold. When none is left, or none is configured, ip_vs_leave answers the first packet of every new connection with ICMP port unreachable and drops it: clients see "connection refused" on the VIP, while connections scheduled before go on.',
  sources: [
    'net/netfilter/ipvs/ip_vs_core.c (ip_vs_schedule, ip_vs_leave: icmp_send ICMP_PORT_UNREACH)',
    'net/netfilter/ipvs/ip_vs_lc.c, ip_vs_wlc.c, ip_vs_rr.c (a destination of weight 0 is quiesced; IP_VS_DEST_F_OVERLOAD)',
    'ipvsadm(8) (-w weight, -x upper threshold)',
    'keepalived.conf(5) (inhibit_on_failure, sorry_server)',
  ],
}

const SVC_FLAG = {tcp: '-t', udp: '-u', sctp: '--sctp-service'} as const
const METHOD_FLAG: Partial<Record<IpvsDest['method'], string>> = {masq: '-m', route: '-g', tunnel: '-i'}

/** Above this many services without any destination on one host, they are reported together (kube-proxy IPVS mode). */
const GROUP_ABOVE = 5

/** The destination as ipvsadm -a/-e names it (`-r RIP:PORT`; fwmark services: the port is kept as written). */
function serviceArgs(s: IpvsService): string | undefined {
  if (s.proto === 'fwmark') return s.fwmark !== undefined ? `-f ${s.fwmark}` : undefined
  if (!s.vip || s.port === undefined) return undefined
  return `${SVC_FLAG[s.proto]} ${formatEndpoint({ip: s.vip, port: s.port})}`
}

/** Why a destination takes no new connection, or undefined when it may (a weight the listing does not show counts as available, as trace assumes). */
function unavailable(d: IpvsDest): string | undefined {
  if (d.weight === 0) return 'weight 0'
  if (d.upperThreshold > 0 && d.activeConns !== undefined) {
    const conns = d.activeConns + (d.inactiveConns ?? 0)
    if (conns >= d.upperThreshold) return `${conns} connections, at its upper threshold ${d.upperThreshold}`
  }
  return undefined
}

const fromKeepalived = (h: HostView) => h.snap.ipvs?.source === 'keepalived.conf'
const sorryServer = (s: IpvsService) => s.notModelled?.find((n) => n.what.startsWith('sorry_server'))

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const empty = new Map<HostView, LbService[]>()
  for (const svc of w.services) {
    const s = svc.ipvs
    if (svc.kind !== 'ipvs' || !s) continue
    const sorry = sorryServer(s)
    if (s.dests.length === 0) {
      // keepalived puts the sorry_server in when no real_server is alive: the service is still answered
      if (sorry) continue
      empty.set(svc.host, [...(empty.get(svc.host) ?? []), svc])
      continue
    }
    const why = s.dests.map(unavailable)
    if (why.some((x) => x === undefined)) continue
    out.push(quiesced(svc, s, why as string[], sorry !== undefined))
  }
  for (const [h, svcs] of empty) {
    if (svcs.length > GROUP_ABOVE) out.push(noDestinations(w, h, svcs))
    else for (const svc of svcs) out.push(noDestinations(w, h, [svc]))
  }
  return out
})

function noDestinations(w: World, h: HostView, svcs: readonly LbService[]): RuleFinding {
  const names = svcs.map(describeService)
  const one = svcs.length === 1
  const keepalived = fromKeepalived(h)
  const args = one ? serviceArgs(svcs[0]!.ipvs!) : undefined
  // DR realservers given to check: hosts holding the VIP with an address on one of the director's subnets
  const drs = one && args && !keepalived ? drRealservers(w, h, svcs[0]!) : []
  if (drs.length > 0) {
    const svc = svcs[0]!
    return finding(meta, h.name, {
      message: `${names[0]} has no realserver: every new connection to it gets ICMP port unreachable from ${h.name} (ip_vs_leave) and is refused. ${listSome(drs.map((d) => d.host.name))} ${drs.length === 1 ? 'holds' : 'hold'} its VIP and ${drs.length === 1 ? 'is' : 'are'} on ${h.name}'s network, as LVS-DR realservers are.`,
      evidence: [ev(svc.loc), ...drs.map((d) => ev(d.vipLoc, d.host.name))],
      fix: {
        summary: `add ${drs.length === 1 ? 'that realserver' : 'those realservers'} by direct routing (or the realservers the service is meant for)`,
        ops: drs.map((d) => ({kind: 'cmd' as const, text: `ipvsadm -a ${args} -r ${formatEndpoint({ip: d.ip, port: svc.port!})} -g -w 1`})),
      },
    })
  }
  return finding(meta, h.name, {
    message: one
      ? `${names[0]} has no realserver: every new connection to it gets ICMP port unreachable from ${h.name} (ip_vs_leave) and is refused.`
      : `${svcs.length} virtual services have no realserver (${listSome(names)}): every new connection to them gets ICMP port unreachable from ${h.name} (ip_vs_leave) and is refused.`,
    evidence: svcs.map((s) => ev(s.loc)),
    fix: {
      summary: keepalived
        ? 'give the virtual_server its real_server entries in keepalived.conf (or a sorry_server) and reload keepalived'
        : one && args
          ? `add the realservers (ipvsadm -a ${args} -r <RIP>:<PORT> -m|-g|-i -w 1), or delete the service if it is retired (ipvsadm -D ${args}); kube-proxy and keepalived manage their services themselves: look at their endpoints or health checks instead`
          : 'add the realservers of each (ipvsadm -a <service> -r <RIP>:<PORT> -m|-g|-i -w 1), or delete the retired ones (ipvsadm -D <service>); kube-proxy keeps a virtual service for a Kubernetes service without endpoints: look at those endpoints',
      ops: [],
    },
  })
}

function quiesced(svc: LbService, s: IpvsService, why: readonly string[], sorry: boolean): RuleFinding {
  const h = svc.host
  const keepalived = fromKeepalived(h)
  const allZero = why.every((x) => x === 'weight 0')
  const dests = s.dests.map((d, i) => `${formatEndpoint({ip: d.ip, port: d.port})} (${why[i]})`)
  const args = serviceArgs(s)
  const ops: FixOp[] = []
  if (!keepalived && args) {
    // -e resets what it is not given (the method to -g, the thresholds to 0): name them all
    for (const d of s.dests) {
      const m = METHOD_FLAG[d.method]
      if (!m || d.weight !== 0) continue
      const thresholds = `${d.upperThreshold ? ` -x ${d.upperThreshold}` : ''}${d.lowerThreshold ? ` -y ${d.lowerThreshold}` : ''}`
      ops.push({kind: 'cmd', text: `ipvsadm -e ${args} -r ${formatEndpoint({ip: d.ip, port: d.port})} ${m} -w 1${thresholds}`})
    }
  }
  const inhibit = keepalived ? ' keepalived sets weight 0 on a real_server whose health check fails when inhibit_on_failure is on: every check is failing.' : ''
  return finding(meta, h.name, {
    message:
      `${describeService(svc)} has ${s.dests.length === 1 ? 'one realserver' : `${s.dests.length} realservers`} and none takes new connections: ${listSome(dests)}. ` +
      `Every new connection gets ICMP port unreachable from ${h.name} (ip_vs_leave) and is refused; connections already scheduled go on.` +
      (sorry ? ' keepalived puts its sorry_server in only when no real_server is alive, which a weight of 0 does not mean.' : '') +
      inhibit,
    evidence: [ev(svc.loc), ...s.dests.map((d) => ev(d.loc))],
    fix: {
      summary: keepalived
        ? 'find why the health checks fail (or give the real_server entries a weight above 0 in keepalived.conf) and reload keepalived'
        : allZero
          ? 'give the realservers that should serve a weight above 0 again (weight 0 quiesces a server: it takes no new connection)'
          : 'raise or remove the upper thresholds (-x), or add realservers: every destination is full or quiesced',
      ops,
    },
  })
}

/**
 * The hosts given to check that hold the service's VIP (on lo, a dummy: a DR realserver's) and have an address
 * on a subnet of one of the director's interfaces, where direct routing can reach them.
 */
function drRealservers(w: World, director: HostView, svc: LbService): {host: HostView; ip: IpAddr; vipLoc: Loc}[] {
  const vip = svc.vip
  if (!vip || svc.port === undefined) return []
  const subnets = (director.snap.interfaces ?? []).filter((i) => i.name !== 'lo').flatMap((i) => i.addresses.filter((a) => a.family === vip.family && a.scope === 'global').map((a) => makePrefix(a.ip, a.prefixlen)))
  const out: {host: HostView; ip: IpAddr; vipLoc: Loc}[] = []
  for (const r of w.hosts) {
    if (r === director || r.snap.role === 'director' || r.isLocal(vip) !== true) continue
    const held = r.addressOf(vip)
    if (!held) continue
    let ip: IpAddr | undefined
    for (const i of r.snap.interfaces ?? []) {
      if (i.name === 'lo' || ip) continue
      for (const a of i.addresses) if (a.family === vip.family && a.scope === 'global' && a.ip.value !== vip.value && subnets.some((p) => prefixContains(p, a.ip))) ip ??= a.ip
    }
    if (ip) out.push({host: r, ip, vipLoc: held.addr.loc})
  }
  return out
}
