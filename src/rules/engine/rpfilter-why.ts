// Why a `-m rpfilter --invert` rule drops a client's packets, in words: the route back to the client (the reverse
// lookup ipt_rpfilter.c makes, dataplane/rpfilter.ts) leaves by another device, or there is none.
import {formatIp} from '../../model/ip.js'
import type {IptRule, Match} from '../../model/iptables.js'
import type {Packet} from '../../dataplane/packet.js'
import type {HostView} from './host.js'

/** undefined unless `rule` drops because its rpfilter match failed the packet arriving on `iif` */
export function rpfilterWhy(h: HostView, rule: IptRule | undefined, p: Packet, iif: string): string | undefined {
  const m = rule?.matches?.find((x): x is Extract<Match, {kind: 'rpfilter'}> => x.kind === 'rpfilter')
  if (!m || !m.invert || !h.snap.routes) return undefined
  const res = h.route({dst: p.src, src: p.dst, iif: 'lo', mark: m.validMark ? p.mark : 0})
  if (!res) return undefined
  const mark = m.validMark && p.mark ? ` with the packets' mark 0x${p.mark.toString(16)} (--validmark)` : ''
  if (res.kind !== 'unicast' && !(res.kind === 'local' && m.acceptLocal)) {
    return `Its reverse path check fails: ${h.name} has no unicast route back to ${formatIp(p.src)}${mark} (${res.kind === 'none' ? 'no route matches' : `the route found is ${res.kind}`}).`
  }
  if (m.loose) return undefined
  const dev = res.kind === 'unicast' ? res.dev : res.route.dev
  if (!dev || dev === iif) return undefined
  return `Its reverse path check fails: the client's packets arrive on ${iif}, but ${h.name}'s route back to ${formatIp(p.src)}${mark} leaves by ${dev} (asymmetric routing; rpfilter --loose would accept any device).`
}
