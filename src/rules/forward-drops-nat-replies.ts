// forward-drops-nat-replies: the replies of a NAT-balanced connection (DNAT, LVS-NAT) come back through the
// balancer as forwarded packets and meet filter FORWARD before the NAT is undone (DNAT: the source is
// rewritten back at POSTROUTING; LVS-NAT: ip_vs_reply4 at FORWARD after the filter table). A FORWARD chain
// that accepts the request (the DNATed destination) but has no rule for the replies, under a DROP policy or
// before a catch-all DROP/REJECT, lets the SYN through and drops the SYN/ACK: no connection ever completes.
import {formatIp, hostPrefix} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {acceptedBy, backendOutcome, clientIif, describeReplay, guessesOf, ipvsKnobs, params, placeOf, replyInByClass, requestIn, requestInBlocked, type Replay} from './engine/flows.js'
import {hookByDstClass, receivedBySrcClass, receivedSrcClass} from './engine/path.js'
import {ctStateOf, natConsulted, SERVER_PACKETS} from './engine/ctmodel.js'
import {returnRoute} from './engine/returnpath.js'
import {requestCtMark} from './engine/connmark.js'
import type {Decision} from './engine/firewall.js'
import type {FixOp} from './engine/fix.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import type {FlowPacket} from './engine/ctmodel.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'forward-drops-nat-replies',
  title: 'FORWARD drops the replies of NAT-balanced connections',
  severity: 'error',
  description:
    "The replies of a DNAT- or LVS-NAT-balanced connection are forwarded packets: they cross the balancer's filter FORWARD chain (still from the backend's address; DNAT is undone at POSTROUTING, IPVS un-NATs at FORWARD after the filter table). A FORWARD chain that accepts the DNATed request but has no rule for the replies (a DROP policy, or a catch-all DROP/REJECT, and no `--ctstate RELATED,ESTABLISHED` accept before it) passes the SYN and drops the SYN/ACK.",
  sources: [
    'net/netfilter/nf_nat_core.c (reply direction: the source is restored at NF_INET_POST_ROUTING)',
    'net/netfilter/ipvs/ip_vs_core.c ip_vs_ops4 (ip_vs_reply4 at FORWARD, priority 100, after filter)',
    '001_99dd2e38bf121ee9.txt (DNAT mode: the balancer is the backends\' gateway)',
    'iptables-extensions(8) conntrack --ctstate',
  ],
}

const REPLIES = SERVER_PACKETS

interface Dropped {
  readonly b: Backend
  readonly replay: Replay
  readonly decision: Decision
}

/** Does a SNAT/MASQUERADE in nat POSTROUTING cover the DNATed packet (the replies then come back whatever the backend routes)? */
function snatted(h: HostView, w: World, svc: LbService, b: Backend): boolean {
  if (!h.fw) return false
  const probe = svc.probes[0]
  const mark = backendOutcome(svc, b)?.mark ?? probe?.mark ?? 0
  // one evaluation per class of backend addresses (only the NAT binding is read)
  const post = hookByDstClass(h, 'POSTROUTING', {src: w.client.ip, sport: w.client.port, dst: b.ip, dport: b.port ?? probe?.dport ?? 0, proto: svc.proto, mark}, 'SYN', {state: 'NEW', oif: h.oifFor(b.ip) ?? UNKNOWN_IF}, true)
  return post?.nat?.kind === 'SNAT' || post?.nat?.kind === 'MASQUERADE'
}

/**
 * A DNAT backend's reply as it crosses FORWARD (conntrack: ESTABLISHED, reply direction), evaluated once per
 * class of backend addresses the rules cannot tell apart: the rule reads its verdict, decision and guesses only.
 */
function dnatReply(svc: LbService, w: World, b: Backend, iif: string, kind: FlowPacket, ctMark: number): Replay {
  const probe = svc.probes[0]!
  const {packet, result} = receivedBySrcClass(svc.host, {src: b.ip, sport: b.port ?? probe.dport ?? 0, dst: w.client.ip, dport: w.client.port, proto: svc.proto}, kind, {state: 'ESTABLISHED', dir: 'REPLY', iif, local: false, ctMark})
  return {kind, state: 'ESTABLISHED', place: 'both-ways', result, packet}
}

type Fate = {readonly replay: Replay; readonly decision: Decision}
type Classes<V> = Map<string, V>

/** The map under `k` (made when missing): the levels of the per-class memo. */
function level<K, K2, V>(m: Map<K, Map<K2, V>>, k: K): Map<K2, V> {
  let v = m.get(k)
  if (!v) {
    v = new Map()
    m.set(k, v)
  }
  return v
}

/**
 * Per host and per context of the services (what a reply is made of besides its backend: the kind of
 * balancer, the protocol, the conntrack knobs, the client's probe), per class of backends (source class,
 * source port, arrival interface), the replies FORWARD drops. The replays are the first backend's of the class
 * (maybe another service's): only their kind, state, verdicts, decisions and guesses are read.
 */
const fates = new WeakMap<HostView, Map<string, Classes<Map<number, Map<string, Fate[]>>>>>()

function classesOf(h: HostView, context: string): Classes<Map<number, Map<string, Fate[]>>> {
  let m = fates.get(h)
  if (!m) {
    m = new Map()
    fates.set(h, m)
  }
  return level(m, context)
}

function check(svc: LbService, w: World): RuleFinding | undefined {
  const h = svc.host
  const fw = h.fw
  if (!fw) return undefined
  const k = ipvsKnobs(h)
  const ipvs = svc.kind === 'ipvs'
  const probe = svc.probes[0]
  if (!probe) return undefined
  const synParams = params(k, ipvs ? 'masq' : 'dnat', svc.proto)
  // a request the firewall drops is filter-blocks-vip's finding; the replies are still checked, so that the fixes of
  // both findings together make the connection work (fixing the request alone would only move the failure here)
  const requestBlocked = requestInBlocked(svc, w, probe, 'SYN', synParams, 'NEW')
  const dropped: Dropped[] = []
  const around: string[] = []
  const pOff = params(k, 'masq', svc.proto)
  const pOn = params({...k, vsConntrack: true}, 'masq', svc.proto)
  const kinds = svc.proto === 'tcp' ? REPLIES : (['RDATA'] as const)
  // does any reply meet the nat table (IPVS with conntrack off: a reply is a new connection to conntrack)?
  const nat = ipvs && kinds.some((kind) => [pOff, pOn].some((p) => natConsulted(ctStateOf('ipvs-reply', kind, p)) && !p.vsConntrack))
  // the connection's mark, as the client's SYN left it on the balancer: the replies read it (engine/connmark.ts)
  const ctMark = ipvs ? 0 : requestCtMark(h, {src: w.client.ip, sport: w.client.port, dst: probe.dst, dport: probe.dport ?? 0, proto: svc.proto, mark: probe.mark}, {iif: clientIif(h, w, svc.vip, svc)})
  const byClass = classesOf(h, `${ipvs ? 'ipvs' : 'dnat'}|${svc.proto}|${k.vsConntrack}|${k.tcpLoose}|${probe.src.family}:${probe.src.value}|${probe.sport}|${probe.proto}|${ctMark}`)
  let last: {readonly cls: string; readonly port: number; readonly iif: string; readonly found: readonly Fate[]} | undefined
  for (const b of svc.backends) {
    if (b.local || !(b.method === 'dnat' || b.method === 'masq') || b.share === 0) continue
    // replies that provably go around the balancer are nat-reply-bypasses-director's; they are still checked, as
    // its fix (SNAT, or the balancer as gateway) brings them back through FORWARD (found by the random kernel scenarios)
    if (b.owner && !(ipvs ? false : snatted(h, w, svc, b))) {
      const v = returnRoute(w, h, b.owner, b.ip)
      if (v.kind === 'around') around.push(describeBackend(b))
    }
    const iif = h.oifFor(b.ip) ?? UNKNOWN_IF
    // backends the rules on the way cannot tell apart (source class, source port, arrival interface) meet the same fate
    const cls = receivedSrcClass(h, b.ip, nat)
    const port = b.port ?? probe.dport ?? 0
    // the backends of a service mostly share class, port and interface: the previous backend's answer first
    if (last && last.cls === cls && last.port === port && last.iif === iif) {
      for (const f of last.found) dropped.push({b, replay: f.replay, decision: f.decision})
      continue
    }
    const byIif = level(level(byClass, cls), port)
    let found = byIif.get(iif)
    if (!found) {
      found = []
      for (const kind of kinds) {
        let r: Replay
        if (ipvs) {
          r = replyInByClass(svc, probe, b, iif, kind, pOff)
          // with conntrack off, a reply that an ESTABLISHED accept would pass is ipvs-conntrack-off's finding
          if (!k.vsConntrack && !replyInByClass(svc, probe, b, iif, kind, pOn).result.blocked) continue
        } else r = dnatReply(svc, w, b, iif, kind, ctMark)
        const bl = r.result.blocked
        if (bl && bl.hook.hook === 'FORWARD') found.push({replay: r, decision: bl.decision})
      }
      byIif.set(iif, found)
    }
    last = {cls, port, iif, found}
    for (const f of found) dropped.push({b, replay: f.replay, decision: f.decision})
  }
  if (dropped.length === 0) return undefined
  const stateless = ipvs && !k.vsConntrack
  const ops: FixOp[] = []
  const done = new Set<string>()
  for (const d of dropped) {
    const key = `${d.decision.ruleset.file}|${d.decision.chain}|${d.decision.rule?.index ?? 'policy'}|${stateless ? formatIp(d.b.ip) + ':' + (d.b.port ?? '') : ''}`
    if (done.has(key)) continue
    done.add(key)
    ops.push(...(stateless ? fw.fixer.acceptBefore(d.decision, {src: hostPrefix(d.b.ip), proto: svc.proto, sport: d.b.port ?? probe.dport}) : fw.fixer.acceptEstablishedBefore(d.decision)))
  }
  const accepting = requestBlocked ? undefined : acceptedBy(requestIn(svc, w, probe, 'SYN', synParams, 'NEW'), 'FORWARD')
  const answer = svc.proto === 'tcp' ? 'SYN/ACK' : 'response'
  const guesses = guessesOf(dropped.map((d) => d.replay))
  const assumed = dropped.filter((d) => d.decision.assumed)
  const backends = [...new Set(dropped.map((d) => describeBackend(d.b)))]
  const undo = ipvs ? 'before IPVS un-NATs them (ip_vs_reply4 runs at FORWARD after the filter table)' : 'before the DNAT is undone (the source is restored at POSTROUTING)'
  const evidence: Evidence[] = [ev(svc.loc), ...[...new Set(dropped.map((d) => d.b))].map((b) => ev(b.loc)), ...(accepting ? [ev(accepting.loc)] : []), ...dropped.map((d) => ev(d.decision.loc))]
  return finding(meta, h.name, {
    severity: guesses.length || assumed.length ? 'info' : undefined,
    message:
      `${describeService(svc)}: the replies from ${backends.join(', ')} cross ${h.name}'s FORWARD chain ${undo}, and nothing there accepts them:\n` +
      [...new Set(dropped.map((d) => `  ${describeReplay(d.replay)}`))].join('\n') +
      (requestBlocked
        ? `\nThe request is dropped on its way in as well (see filter-blocks-vip); once it passes, the backend answers, but its ${answer} never reaches the client: connections time out.`
        : `\nThe request passes${accepting ? ` (${locRef(accepting.loc)} accepts it)` : ''}, so the backend answers, but its ${answer} never reaches the client: connections time out.`) +
      (around.length
        ? backends.some((x) => around.includes(x))
          ? `\n(${around.join(', ')}: replies go around ${h.name} now (see nat-reply-bypasses-director); once they come back through it, as that finding's fix makes them, this chain drops them)`
          : `\n(${around.join(', ')}: replies go around ${h.name}; see nat-reply-bypasses-director)`
        : ''),
    evidence,
    unverified: [...guesses, ...assumed.map((d) => `${locRef(d.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
    fix: {
      summary: stateless
        ? `accept the backends' replies in FORWARD by address and source port (with net.ipv4.vs.conntrack=0 they are not ESTABLISHED to conntrack)`
        : `accept the replies of accepted connections in FORWARD (conntrack ESTABLISHED,RELATED) before ${placeOf(dropped[0]!.decision)}`,
      ops,
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    if (!svc.backends.some((b) => (b.method === 'dnat' || b.method === 'masq') && !b.local)) continue
    const f = check(svc, w)
    if (f) out.push(f)
  }
  return out
})
