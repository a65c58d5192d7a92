// net.ipv4.vs.conntrack is one switch per network namespace: every rule that would propose turning it on
// (ipvs-conntrack-off for stateful rules, nat-reply-bypasses-director for SNAT of IPVS traffic) must first ask
// what it does to the other services of the same director. With vs.conntrack=1 the conntrack entry of an
// LVS-DR/TUN connection is kept and confirmed, but the director never sees a reply: it stays SYN_SENT and every
// later client packet is INVALID (nf_conntrack_proto_tcp.c: an ORIGINAL ACK in SYN_SENT is sIV). A stateful
// filter in front of the service then drops them (the IPVS lab's dr-state-new-ct1: the handshake completes
// around the director, the request never reaches the realserver).
import type {HostView} from './host.js'
import {describeReplay, ipvsKnobs, params, requestIn} from './flows.js'
import {describeService, type World} from './world.js'

/**
 * The LVS-DR/TUN services of director `h` that net.ipv4.vs.conntrack=1 would break: one line per service, the
 * packet it would lose and where. Empty when the switch is safe (or already on).
 */
export function conntrackOnBreaks(h: HostView, w: World): string[] {
  const out: string[] = []
  const k = ipvsKnobs(h)
  if (k.vsConntrack) return out
  for (const o of w.services) {
    if (o.host !== h || o.kind !== 'ipvs' || o.proto !== 'tcp') continue
    const b = o.backends.find((x) => x.method === 'route' || x.method === 'tunnel')
    if (!b) continue
    const m = b.method === 'tunnel' ? 'tunnel' : 'route'
    for (const probe of o.probes.slice(0, 1)) {
      for (const kind of ['ACK', 'DATA', 'FIN'] as const) {
        const off = requestIn(o, w, probe, kind, params(k, m, o.proto))
        const on = requestIn(o, w, probe, kind, params({...k, vsConntrack: true}, m, o.proto))
        if (!off.result.blocked && on.result.blocked) {
          out.push(`${describeService(o)} (${m === 'route' ? 'LVS-DR' : 'LVS-TUN'}): with vs.conntrack=1, ${describeReplay(on)}: its entry stays SYN_SENT, since the director never sees a reply`)
          break
        }
      }
    }
  }
  return out
}
