// ipvs-idle-timeout: IPVS forgets an ESTABLISHED TCP connection that has been idle for its tcp timeout (ipvsadm --set,
// 900 s by default; keepalived's lvs_timeouts). The client's next packet finds no connection entry: IPVS schedules
// only a SYN (tcp_conn_schedule; any packet with net.ipv4.vs.sloppy_tcp=1), so the packet goes on to the director's
// own stack, where nothing listens on the VIP, and the client gets a reset. Kernel TCP keepalives would keep the
// entry fresh, but they start only after net.ipv4.tcp_keepalive_time (7200 s by default): with the timeout below it,
// idle long-lived connections (database pools, message brokers, ssh, websockets) break after the timeout.
import {customRule, finding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {describeService, type LbService} from './engine/world.js'
import {listSome} from './engine/list.js'
import type {Evidence} from '../model/finding.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'ipvs-idle-timeout',
  title: 'IPVS forgets idle TCP connections before TCP keepalives refresh them',
  severity: 'info',
  description:
    "IPVS keeps a connection entry per balanced TCP connection and drops it after the connection has been idle for the tcp timeout (`ipvsadm --set TCP TCPFIN UDP`, 900 s by default). The next packet of that connection finds no entry; IPVS schedules only a SYN, so the packet reaches the director's own stack, where nothing listens on the VIP, and the client gets a reset. TCP keepalives would refresh the entry, but the kernel sends the first one only after net.ipv4.tcp_keepalive_time (7200 s by default) of idleness: connections that stay idle longer than the IPVS timeout (connection pools, brokers, ssh, websockets) break at random-looking moments.",
  sources: [
    'net/netfilter/ipvs/ip_vs_proto_tcp.c (tcp_timeouts[IP_VS_TCP_S_ESTABLISHED] = 15*60*HZ; tcp_conn_schedule: only th->syn, or sysctl sloppy_tcp)',
    'net/netfilter/ipvs/ip_vs_ctl.c (ip_vs_set_timeout: a 0 keeps the timeout)',
    'ipvsadm(8) (--set tcp tcpfin udp, -L --timeout); keepalived.conf(5) (lvs_timeouts)',
    'Documentation/networking/ip-sysctl.rst (tcp_keepalive_time 7200, tcp_keepalive_intvl 75)',
  ],
}

const KEEPALIVE_DEFAULT = 7200
const INTVL_DEFAULT = 75

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const byHost = new Map<HostView, LbService[]>()
  for (const s of w.services) {
    // an fwmark service balances whatever its mark selects, TCP included
    if (s.kind !== 'ipvs' || (s.proto !== 'tcp' && s.fwmark === undefined)) continue
    if (s.backends.every((b) => b.weight === 0)) continue
    byHost.set(s.host, [...(byHost.get(s.host) ?? []), s])
  }
  for (const [h, svcs] of byHost) {
    const t = h.snap.ipvsTimeouts
    // without `ipvsadm -Ln --timeout` (or lvs_timeouts) the timeout is not known: nothing is said
    if (!t || t.tcp === undefined) continue
    // the servers' keepalive clock: the realservers given (the smallest), else the kernel default, said so
    const owners = [...new Set(svcs.flatMap((s) => s.backends.map((b) => b.owner)).filter((o): o is HostView => !!o && o !== h))]
    const known = owners.map((o) => ({o, v: o.sysctl.get('net.ipv4.tcp_keepalive_time'), n: o.sysctl.num('net.ipv4.tcp_keepalive_time')})).filter((x) => x.v && x.n !== undefined)
    const keep = known.length ? Math.min(...known.map((x) => x.n!)) : KEEPALIVE_DEFAULT
    if (t.tcp > keep) continue
    const kHost = known.find((x) => x.n === keep)
    const intvl = kHost?.o.sysctl.num('net.ipv4.tcp_keepalive_intvl') ?? INTVL_DEFAULT
    const sloppy = h.sysctl.get('net.ipv4.vs.sloppy_tcp')
    const sloppyOn = h.sysctl.num('net.ipv4.vs.sloppy_tcp') === 1
    const evidence: Evidence[] = [ev(t.loc), ...svcs.slice(0, 3).map((s) => ev(s.loc)), ...(kHost ? [ev(kHost.v!.loc, kHost.o.name)] : []), ...(sloppy ? [ev(sloppy.loc)] : [])]
    const target = keep + intvl
    out.push(
      finding(meta, h.name, {
        message:
          `${h.name}'s IPVS drops the entry of a TCP connection idle for ${t.tcp} s (tcp timeout, ${t.loc.file}), and TCP keepalives start only after ${keep} s of idleness (` +
          (kHost ? `net.ipv4.tcp_keepalive_time on ${kHost.o.name}` : `the kernel default: no realserver snapshot gives net.ipv4.tcp_keepalive_time`) +
          `). A connection to ${listSome(svcs.map(describeService))} that stays idle longer than ${t.tcp} s ` +
          (sloppyOn
            ? `is scheduled anew when its next packet comes (net.ipv4.vs.sloppy_tcp=1), to a realserver that may not know it: a reset unless it is the same one.`
            : `meets no IPVS entry with its next packet: IPVS schedules only a SYN, the packet reaches ${h.name}'s own stack, where nothing listens on the VIP, and the client gets a reset.`) +
          ` Short requests are not affected; idle pools, brokers, ssh and websocket sessions are.`,
        evidence,
        fix: {
          summary:
            `keep idle connections longer than the keepalive clock: raise the IPVS tcp timeout above ${keep} s + one keepalive interval (0 keeps the tcpfin and udp timeouts; ` +
            `persist it with keepalived's global_defs \`lvs_timeouts tcp ${target}\` or your boot scripts), or lower net.ipv4.tcp_keepalive_time below ${t.tcp} s where the applications enable keepalives`,
          ops: [{kind: 'cmd', text: `ipvsadm --set ${target} 0 0`}],
        },
      }),
    )
  }
  return out
})
