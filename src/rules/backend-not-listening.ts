// backend-not-listening: a realserver given to check (with its listening sockets, ss-ltnu.txt) where nothing
// listens on the address and port the balanced connections arrive at: every connection the balancer sends there is
// refused (TCP reset) or gets ICMP port unreachable (UDP), while the others work. The classic slips: the daemon
// bound to 127.0.0.1 or to another address only (an LVS-DR realserver must take the VIP), a NAT destination
// written with another port than the daemon's, a service that is down.
//
// Where the backend receives the connection: LVS-NAT and DNAT, the destination's address and port (port 0, or a
// persistent fwmark service: the client's port); LVS-DR and TUN, the VIP and the service port unchanged. The
// realserver's own PREROUTING is followed (a REDIRECT moves the port; a DNAT to a container publishes it and is
// not judged here, as health-check-blocked does).
import {formatEndpoint, formatIp, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {finding, serviceRule} from './engine/helpers.js'
import {ev, UNKNOWN_IF} from './engine/host.js'
import {flowPacket} from './engine/packets.js'
import {received} from './engine/path.js'
import {describeBackend, describeService} from './engine/world.js'
import {writtenPort} from './dr-port-mismatch.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'backend-not-listening',
  title: 'nothing listens where the balanced connections arrive on a realserver',
  severity: 'error',
  description:
    "The balancer sends connections to a realserver, but no socket there listens on the address and port they arrive at (LVS-NAT and DNAT: the destination's address and port; LVS-DR and TUN: the VIP and the service port). The kernel refuses each such TCP connection with a reset and answers UDP with ICMP port unreachable, while health checks aimed elsewhere may keep the realserver in the pool. Start the service, or let it listen where the balancer sends (0.0.0.0, or the VIP on a DR realserver), or point the balancer at the port it serves.",
  sources: [
    'net/ipv4/tcp_ipv4.c tcp_v4_rcv (no socket: tcp_v4_send_reset), net/ipv4/udp.c __udp4_lib_rcv (no socket: ICMP port unreachable)',
    '000_e07122559a47da1e.txt (LVS-DR: the realserver receives the packet for the VIP, so the service must accept it there)',
    'ipvsadm(8) (port forwarding with masquerading only)',
  ],
}

/** the client port the probe uses (any: listeners do not depend on it) */
const CPORT = 40000

export default serviceRule(
  meta,
  (svc, w) => {
    if (svc.proto !== 'tcp' && svc.proto !== 'udp') return undefined
    const tcp = svc.proto === 'tcp'
    const lines: string[] = []
    const evidence: Evidence[] = [ev(svc.loc)]
    const hints: string[] = []
    const seen = new Set<string>()
    for (const b of svc.backends) {
      const rs = b.owner
      const ls = rs?.snap.listeners
      if (!rs || !ls || b.local) continue
      // a quiesced destination (weight 0: drained, keepalived's inhibit_on_failure) gets no new connections
      if (b.weight === 0) continue
      // a DR/TUN destination written with another port is dr-port-mismatch's
      if ((b.method === 'route' || b.method === 'tunnel') && (writtenPort(b.loc) ?? b.port) !== svc.port) continue
      if (b.method !== 'masq' && b.method !== 'dnat' && b.method !== 'route' && b.method !== 'tunnel') continue
      for (const probe of svc.probes) {
        const direct = b.method === 'route' || b.method === 'tunnel'
        const dst: IpAddr | undefined = direct ? (probe.dst ?? svc.vip) : b.ip
        const dport = direct ? probe.dport : b.port || probe.dport
        if (!dst || !dport) continue
        const key = `${rs.name}|${dst.value}|${dport}`
        if (seen.has(key)) continue
        seen.add(key)
        // the realserver's own PREROUTING (a REDIRECT to another port; a DNAT elsewhere is not a socket of it)
        const iif = direct && b.method === 'tunnel' ? UNKNOWN_IF : (rs.oifFor(svc.host.sourceFor(b.ip) ?? b.ip) ?? rs.addressOf(b.ip)?.iface.name ?? UNKNOWN_IF)
        const r = received(rs, flowPacket({src: w.client.ip, sport: CPORT, dst, dport, proto: svc.proto}, tcp ? 'SYN' : 'DATA'), {state: 'NEW', iif})
        if (r.blocked) continue // a firewall drop there is realserver-filter-blocks-service's
        const delivered = r.noFirewall ? rs.isLocal(dst) === true : r.to === 'local'
        if (!delivered) continue
        const local = r.hooks.find((x) => x.hook === 'PREROUTING')?.packet ?? {dst, dport}
        const at = local.dst
        const port = local.dport ?? dport
        if (listenerFor(ls, svc.proto, at, port)) continue
        const samePort = ls.filter((l) => l.proto === svc.proto && l.port === port)
        const where = (l: (typeof ls)[number]) => (l.addr ? formatIp(l.addr) : l.family === 6 ? '[::] (IPv6 only)' : '*')
        lines.push(`  ${describeBackend(b)}: the connections arrive at ${formatEndpoint({ip: at, port})} on ${rs.name}, where no ${svc.proto.toUpperCase()} socket listens${samePort.length ? ` (port ${port} is open on ${samePort.map(where).join(', ')} only)` : ''}`)
        evidence.push(ev(b.loc), ...samePort.slice(0, 6).map((l) => ev(l.loc, rs.name)))
        if (samePort.some((l) => l.addr && ['127.0.0.1', '::1'].includes(formatIp(l.addr)))) hints.push(`on ${rs.name}, the daemon is bound to the loopback address: let it listen on ${formatIp(at)} or on 0.0.0.0`)
        else if (samePort.length) hints.push(`on ${rs.name}, let the daemon listen on ${formatIp(at)} too (or on 0.0.0.0)${direct ? ': an LVS-DR/TUN realserver receives the packets for the VIP' : ''}`)
        else hints.push(`start the service on ${rs.name} (listening on ${formatEndpoint({ip: at, port})} or on 0.0.0.0:${port}), or point the balancer at the port it serves`)
      }
    }
    if (lines.length === 0) return undefined
    return finding(meta, svc.host.name, {
      message:
        `${svc.host.name} balances ${describeService(svc)} to realservers where nothing listens on the address and port the connections arrive at, so ${tcp ? 'each such connection is refused with a TCP reset' : 'each such request gets ICMP port unreachable'} (per the listening sockets in ss-ltnu.txt):\n` +
        lines.join('\n'),
      evidence,
      fix: {summary: [...new Set(hints)].join('; '), ops: []},
    })
  },
  (svc) => svc.backends.some((b) => b.owner?.snap.listeners !== undefined),
)
