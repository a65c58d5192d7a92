// udp-reply-wrong-source: a UDP service answers from another address than the one the client asked. UDP has no
// accepted socket carrying the connection's local address: a server socket bound to a wildcard (0.0.0.0, or `*`)
// that answers with sendto() gets the source address of its route back (udp_sendmsg: the bound address, else the
// route's, inet_select_addr), unless the server reads the request's destination (IP_PKTINFO) as BIND and dnsmasq
// do. An LVS-DR realserver (or one behind a DR-shaped route) is asked at the VIP, which sits on lo: its answer
// leaves from its own address, and the client's connected socket (a resolver checking the source) drops it.
import {formatEndpoint, formatIp, ipEquals, type IpAddr} from '../model/ip.js'
import type {Listener} from '../model/misc.js'
import type {Evidence} from '../model/finding.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {describeForward} from './engine/forward.js'
import {describeService} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'udp-reply-wrong-source',
  title: 'a UDP service answers from another address than the one it was asked at',
  severity: 'warning',
  description:
    "A UDP server socket bound to a wildcard address (0.0.0.0) answers from the source address the kernel picks for the route back to the client, not from the address the request was sent to, unless the server reads the request's destination (IP_PKTINFO). An LVS-DR realserver is asked at the VIP (on lo) and answers from its own address; the client drops the answer as coming from a stranger. Bind the service to the VIP (and the other addresses it serves) or use a server that answers from the request's destination.",
  sources: [
    'net/ipv4/udp.c udp_sendmsg (source: the bound address, else the route\'s); net/ipv4/devinet.c inet_select_addr',
    'LVS-HOWTO, LocalNode (http://www.austintek.com/LVS/LVS-HOWTO/HOWTO/LVS-HOWTO.localnode.html): the service must listen on the VIP so that its replies come from the VIP',
    'test/kernel/random-udp-scenarios.ts (udp121-1: a DR-shaped route, a server bound to 0.0.0.0:53: the answer left from 10.1.0.10 and the client timed out)',
  ],
}

interface Asked {
  readonly rs: HostView
  readonly addr: IpAddr
  readonly port: number
  readonly what: string
  readonly evidence: readonly Evidence[]
}

function asked(w: Parameters<Parameters<typeof customRule>[1]>[0]): Asked[] {
  const out: Asked[] = []
  for (const svc of w.services) {
    if (svc.proto !== 'udp') continue
    const probe = svc.probes[0]
    for (const b of svc.backends) {
      const rs = b.owner
      if (!rs || b.local || b.share === 0) continue
      if (b.method === 'route') {
        if (!probe || probe.dport === undefined || !rs.isLocal(probe.dst)) continue
        out.push({rs, addr: probe.dst, port: probe.dport, what: `${rs.name} is an LVS-DR realserver of ${describeService(svc)} on ${svc.host.name}`, evidence: [ev(svc.loc, svc.host.name), ev(b.loc, svc.host.name)]})
      }
      // NAT backends answering through another interface are left out: whether the balancer masquerades (and so
      // which route the answer takes) is forward-drops-nat-replies' and nat-reply-bypasses-director's ground
    }
  }
  for (const fp of w.forwards) {
    if (fp.proto !== 'udp') continue
    out.push({rs: fp.realserver, addr: fp.vip, port: fp.port, what: `${fp.realserver.name} serves ${describeForward(fp)}`, evidence: [...fp.routeEvidence.map((e) => ({...e, host: fp.host.name})), ev(fp.vipLoc, fp.realserver.name)]})
  }
  return out
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const a of asked(w)) {
    const listeners = a.rs.snap.listeners
    if (!listeners) continue
    const key = `${a.rs.name}|${a.addr.value}|${a.port}`
    if (seen.has(key)) continue
    seen.add(key)
    const l: Listener | undefined = listenerFor(listeners, 'udp', a.addr, a.port)
    if (!l || l.addr) continue
    const from = a.rs.sourceFor(w.client.ip)
    if (!from || ipEquals(from, a.addr)) continue
    out.push(
      finding(meta, a.rs.name, {
        message:
          `${a.what}: clients send to ${formatEndpoint({ip: a.addr, port: a.port})}, and ${a.rs.name}'s UDP socket for port ${a.port} is bound to a wildcard (${l.loc.text.trim().replace(/\s+/g, ' ')}). ` +
          `Its answers leave from ${formatIp(from)}, the source of its route to the client ${formatIp(w.client.ip)}, so the client, which asked ${formatIp(a.addr)}, drops them and times out.\n` +
          `A server that answers from the request's destination address (IP_PKTINFO, as BIND and dnsmasq do) is not affected; a plain one bound to 0.0.0.0 (socat, nc -u, most small daemons) is.`,
        evidence: [...a.evidence, ev(l.loc, a.rs.name)],
        unverified: [`whether the server program on ${a.rs.name} answers from the request's destination address (IP_PKTINFO): the socket list cannot tell`],
        fix: {summary: `bind the service on ${a.rs.name} to ${formatIp(a.addr)} (listen-on / bind address), so that its answers come from it`, ops: []},
      }),
    )
  }
  return out
})
