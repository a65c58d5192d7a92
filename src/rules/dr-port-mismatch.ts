// dr-port-mismatch: LVS-DR and LVS-TUN do not rewrite the packet, so the realserver receives the service
// port whatever port the destination names (ipvsadm(8): port forwarding works with masquerading only).
import {formatEndpoint, parseEndpoint} from '../model/ip.js'
import type {Loc} from '../model/source.js'
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {describeService} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dr-port-mismatch',
  title: 'a DR/TUN destination port differs from the service port',
  severity: 'error',
  description:
    'Direct routing and tunnelling forward the client packet unchanged: it reaches the realserver on the service port. A destination configured with another port (keepalived real_server, an edited ipvsadm save) is health-checked on a port that gets no traffic and serves none.',
  sources: ['ipvsadm(8) (-g, -i: "port forwarding is supported with masquerading only")', '000_e07122559a47da1e.txt'],
}

/**
 * The destination port as written in the line (ipvsadm -Sn `-r RIP:PORT`, -Ln `-> RIP:PORT`, keepalived
 * `real_server RIP PORT`): the parsers give DR/TUN destinations the service port, as ipvsadm does when it
 * adds one, but the kernel (and keepalived's health checks) keep the port that was written.
 */
export function writtenPort(loc: Loc): number | undefined {
  const t = loc.text
  const ep = /(?:^|\s)-r\s+(\S+)/.exec(t)?.[1] ?? /->\s+(\S+)/.exec(t)?.[1]
  if (ep) return parseEndpoint(ep)?.port
  const ka = /\breal_server\s+\S+\s+(\d+)/.exec(t)
  return ka ? Number(ka[1]) : undefined
}

const SVC_FLAG = {tcp: '-t', udp: '-u', sctp: '--sctp-service'} as const
const METHOD_FLAG = {route: '-g', tunnel: '-i'} as const

export default serviceRule(
  meta,
  (svc) => {
    const out = []
    for (const b of svc.backends) {
      if (b.method !== 'route' && b.method !== 'tunnel') continue
      const port = writtenPort(b.loc) ?? b.port
      if (!port || port === svc.port) continue
      const vs = formatEndpoint({ip: svc.vip!, port: svc.port!})
      const w = Number.isFinite(b.weight) ? b.weight : 1
      out.push(
        finding(meta, svc.host.name, {
          message: `${describeService(svc)} sends to ${formatEndpoint({ip: b.ip, port})} by ${b.method === 'route' ? 'direct routing' : 'tunnelling'}, which cannot change the port: the realserver receives port ${svc.port}, not ${port}.`,
          evidence: [ev(svc.loc), ev(b.loc)],
          fix: {
            summary: `give the destination the service port ${svc.port} (and make the realserver listen on ${svc.port}); with keepalived, set the real_server port`,
            ops: [
              {kind: 'cmd', text: `ipvsadm -d ${SVC_FLAG[svc.proto]} ${vs} -r ${formatEndpoint({ip: b.ip, port})}`},
              {kind: 'cmd', text: `ipvsadm -a ${SVC_FLAG[svc.proto]} ${vs} -r ${formatEndpoint({ip: b.ip, port: svc.port!})} ${METHOD_FLAG[b.method]} -w ${w}`},
            ],
          },
        }),
      )
    }
    return out
  },
  (svc) => svc.kind === 'ipvs' && svc.fwmark === undefined && svc.vip !== undefined && svc.port !== undefined && svc.port !== 0,
)
