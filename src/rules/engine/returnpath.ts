// The way a server's packets to the client take, followed hop by hop across the snapshots: does it pass
// through a given host (the balancer), and what proves it? Rules about one-way paths (the director sees only
// the client's half of a connection) need this proof before they call a path one-way.
import {formatIp, type IpAddr} from '../../model/ip.js'
import type {Evidence} from '../../model/finding.js'
import {routeEvidence} from '../../dataplane/routing.js'
import {ev, type HostView} from './host.js'
import type {World} from './world.js'

export type ReturnVerdict =
  /** the replies pass through `via` */
  | {readonly kind: 'through'; readonly evidence: readonly Evidence[]}
  /** the replies reach the client without passing `via`; `reason` says where they go instead */
  | {readonly kind: 'around'; readonly reason: string; readonly evidence: readonly Evidence[]}
  /** the snapshots do not tell */
  | {readonly kind: 'unknown'; readonly what: string}

/** The kernel's default policy rules say nothing an engineer has to look at. */
export function isDefaultRule(text: string): boolean {
  return /^(0|32766|32767):\s+from all lookup (local|main|default)$/.test(text.trim())
}

/**
 * Follows `from`'s route to the client (source `src`), hop by hop while the next hop is a host among the
 * snapshots, and says whether it passes through `via`.
 */
export function returnRoute(w: World, via: HostView, from: HostView, src: IpAddr | undefined): ReturnVerdict {
  const evidence: Evidence[] = []
  let cur = from
  let s: IpAddr | undefined = src
  const client = w.client.ip
  const path: string[] = []
  for (let hop = 0; hop < 8; hop++) {
    if (cur === via) return {kind: 'through', evidence}
    if (cur.isLocal(client)) return {kind: 'around', reason: `the replies reach the client ${formatIp(client)} by ${path.join(' -> ')} -> ${cur.name}, not through ${via.name}`, evidence}
    path.push(cur.name)
    const r = cur.route({dst: client, src: s})
    if (!r) return {kind: 'unknown', what: `the routes of ${cur.name} (ip -j route show table all, ip -j addr show)`}
    for (const loc of routeEvidence(r)) if (!isDefaultRule(loc.text)) evidence.push(ev(loc, cur.name))
    if (r.kind !== 'unicast') return {kind: 'unknown', what: `${cur.name} has no usable route to the client ${formatIp(client)} (${r.kind})`}
    if (!r.gateway) {
      if (via.isLocal(client)) return {kind: 'through', evidence}
      return {kind: 'around', reason: `${cur.name} reaches ${formatIp(client)} directly on ${r.dev ?? '?'}, not through ${via.name}`, evidence}
    }
    if (via.isLocal(r.gateway)) return {kind: 'through', evidence}
    const next = w.ownerOf(r.gateway, cur)
    if (next === via) return {kind: 'through', evidence}
    if (!next || !next.rt) {
      if (via.isLocal(r.gateway) === undefined) return {kind: 'unknown', what: `whether ${formatIp(r.gateway)} is ${via.name}: ${via.name} has no ip-addr.json`}
      return {kind: 'around', reason: `${cur.name} sends the replies to ${formatIp(r.gateway)}${r.dev ? ` via ${r.dev}` : ''}, which is not ${via.name}`, evidence}
    }
    cur = next
    s = undefined
  }
  return {kind: 'unknown', what: 'the return route loops through more than 8 hops'}
}
