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
  title: 'a lowered IPVS tcp timeout forgets idle connections before TCP keepalives refresh them',
  severity: 'info',
  description:
    "IPVS keeps a connection entry per balanced TCP connection and drops it after the connection has been idle for the tcp timeout (`ipvsadm --set TCP TCPFIN UDP`, 900 s by default). The client's next packet finds no entry; IPVS schedules only a SYN, so the packet reaches the director's own stack, which answers with a reset (a packet the realserver sends first is not translated back in NAT mode: the connection hangs). Keepalives would refresh the entry, but the kernel sends the first one (on sockets with SO_KEEPALIVE) only after net.ipv4.tcp_keepalive_time (7200 s by default) of idleness: with the timeout lowered below it, connections that stay idle longer (connection pools, brokers, ssh, websockets) break at random-looking moments. The default 900 s is every director's and not reported.",
  sources: [
    'net/netfilter/ipvs/ip_vs_proto_tcp.c (tcp_timeouts[IP_VS_TCP_S_ESTABLISHED] = 15*60*HZ; tcp_conn_schedule: only th->syn, or sysctl sloppy_tcp)',
    'net/netfilter/ipvs/ip_vs_ctl.c (ip_vs_set_timeout: a 0 keeps the timeout)',
    'ipvsadm(8) (--set tcp tcpfin udp, -L --timeout); keepalived.conf(5) (lvs_timeouts)',
    'Documentation/networking/ip-sysctl.rst (tcp_keepalive_time 7200, tcp_keepalive_intvl 75)',
  ],
}

/** ip_vs_proto_tcp.c tcp_timeouts[IP_VS_TCP_S_ESTABLISHED] */
const DEFAULT_TCP = 900
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
    // without `ipvsadm -Ln --timeout` (or lvs_timeouts) the timeout is not known: nothing is said. At the kernel's
    // default or above it, the mismatch with the default keepalive time is every director's: not reported
    if (!t || t.tcp === undefined || t.tcp === 0 || t.tcp >= DEFAULT_TCP) continue
    // each realserver's keepalive clock (its snapshot, else the kernel default): any one at or above the timeout
    // has connections that can outlive the entry
    const owners = [...new Set(svcs.flatMap((s) => s.backends.map((b) => b.owner)).filter((o): o is HostView => !!o && o !== h))]
    const clocks = owners.map((o) => ({o, v: o.sysctl.get('net.ipv4.tcp_keepalive_time'), n: o.sysctl.num('net.ipv4.tcp_keepalive_time') ?? KEEPALIVE_DEFAULT}))
    const late = clocks.filter((c) => c.n >= t.tcp!)
    if (owners.length > 0 && late.length === 0) continue
    const worst = late.reduce<(typeof late)[number] | undefined>((a, c) => (!a || c.n > a.n ? c : a), undefined)
    const keep = worst?.n ?? KEEPALIVE_DEFAULT
    const intvl = worst?.o.sysctl.num('net.ipv4.tcp_keepalive_intvl') ?? INTVL_DEFAULT
    const sloppy = h.sysctl.get('net.ipv4.vs.sloppy_tcp')
    const sloppyOn = (h.sysctl.num('net.ipv4.vs.sloppy_tcp') ?? 0) !== 0
    const evidence: Evidence[] = [ev(t.loc), ...svcs.slice(0, 3).map((s) => ev(s.loc)), ...late.filter((c) => c.v).map((c) => ev(c.v!.loc, c.o.name)), ...(sloppyOn && sloppy ? [ev(sloppy.loc)] : [])]
    const target = keep + intvl
    const clockWords = late.length
      ? late.map((c) => `${c.n} s on ${c.o.name}${c.v ? '' : ' (the kernel default: its snapshot has no net.ipv4.tcp_keepalive_time)'}`).join(', ')
      : `${KEEPALIVE_DEFAULT} s (the kernel default: no realserver snapshot gives net.ipv4.tcp_keepalive_time)`
    out.push(
      finding(meta, h.name, {
        message:
          `${h.name}'s IPVS tcp timeout was lowered to ${t.tcp} s (${t.loc.file}; the kernel's default is ${DEFAULT_TCP} s): the entry of a TCP connection idle that long is dropped, ` +
          `and kernel keepalives (sockets with SO_KEEPALIVE) start only after net.ipv4.tcp_keepalive_time of idleness: ${clockWords}. ` +
          `A connection to ${listSome(svcs.map(describeService))} that stays idle longer than ${t.tcp} s then breaks: ` +
          (sloppyOn
            ? `its next packet is scheduled anew (net.ipv4.vs.sloppy_tcp=${h.sysctl.num('net.ipv4.vs.sloppy_tcp')}), and unless the scheduler or a persistence template picks the same realserver, that one answers with a reset.`
            : `the client's next packet meets no IPVS entry (IPVS schedules only a SYN) and ${h.name}'s own stack answers it with a reset` +
              (svcs.some((s) => s.backends.some((b) => b.method === 'masq')) ? `; in NAT mode a packet the realserver sends first is not translated back, and the connection hangs.` : '.')) +
          ` Short requests are not affected; idle pools, brokers, ssh and websocket sessions can be, unless the application sends its own keepalives more often.`,
        evidence,
        fix: {
          summary:
            `keep idle connections as long as the keepalive clock: raise the IPVS tcp timeout above ${keep} s + one keepalive interval (0 keeps the tcpfin and udp timeouts; ` +
            `persist it with keepalived's global_defs \`lvs_timeouts tcp ${target}\` or your boot scripts), or lower net.ipv4.tcp_keepalive_time below ${t.tcp} s on the hosts whose applications enable keepalives`,
          ops: [{kind: 'cmd', text: `ipvsadm --set ${target} 0 0`}],
        },
      }),
    )
  }
  return out
})
