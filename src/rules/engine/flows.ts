// The packets of a client's connection to a load-balanced service, replayed at the places they meet the
// director's filter: before IPVS (PREROUTING/INPUT), after IPVS (OUTPUT/POSTROUTING), and the LVS-NAT
// replies (FORWARD); for DNAT balancers, PREROUTING/FORWARD/POSTROUTING.
import type {Evidence} from '../../model/finding.js'
import {formatIp, hostPrefix, type IpAddr} from '../../model/ip.js'
import type {IpvsView, Packet} from '../../dataplane/packet.js'
import {ctStateOf, type CtParams, type FlowPacket, type FlowPlace} from './ctmodel.js'
import type {Decision} from './firewall.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './host.js'
import {flowPacket, l4Name, PACKET_WORDS, type Endpoints, type L4} from './packets.js'
import {hookByDstClass, received, receivedAfterPre, receivedBySrcClass, receivedSharingTail, sent, type HookOpts, type PathResult} from './path.js'
import type {HookResult} from './firewall.js'
import {clientIifOf, type Backend, type DnatOutcome, type LbService, type World} from './world.js'
import type {CtState, IptRule} from '../../model/iptables.js'
import type {ForwardPath} from './forward.js'

export interface IpvsKnobs {
  readonly vsConntrack: boolean
  readonly tcpLoose: boolean
  readonly evidence: readonly Evidence[]
  /** what came from kernel defaults because the sysctl was not in the snapshot */
  readonly defaults: readonly string[]
}

/** per host, its knobs (read-only: every service of a director asks, in several rules) */
const knobs = new WeakMap<HostView, IpvsKnobs>()

export function ipvsKnobs(h: HostView): IpvsKnobs {
  let k = knobs.get(h)
  if (!k) {
    k = ipvsKnobsOf(h)
    knobs.set(h, k)
  }
  return k
}

function ipvsKnobsOf(h: HostView): IpvsKnobs {
  const evidence: Evidence[] = []
  const defaults: string[] = []
  const vs = h.sysctl.get('net.ipv4.vs.conntrack')
  const loose = h.sysctl.get('net.netfilter.nf_conntrack_tcp_loose')
  if (vs) evidence.push(ev(vs.loc))
  else defaults.push('net.ipv4.vs.conntrack is not in the snapshot: taken as the kernel default 0')
  if (loose) evidence.push(ev(loose.loc))
  return {
    vsConntrack: vs ? vs.value.trim() !== '0' : false,
    tcpLoose: loose ? loose.value.trim() !== '0' : true,
    evidence,
    defaults,
  }
}

export function params(k: {vsConntrack: boolean; tcpLoose: boolean}, method: CtParams['method'], proto: L4): CtParams {
  return {vsConntrack: k.vsConntrack, tcpLoose: k.tcpLoose, method, proto}
}

/** The interface client packets arrive on: the one the rules name, else where the director routes the client. */
export function clientIif(h: HostView, w: World, vip?: IpAddr, svc?: LbService): string {
  return svc?.iif ?? clientIifOf(h, w, vip)
}

export interface Replay {
  readonly kind: FlowPacket
  readonly state: CtState
  readonly place: FlowPlace
  readonly result: PathResult
  readonly packet: Packet
}

function endpointsOf(probe: Packet): Endpoints {
  return {src: probe.src, sport: probe.sport ?? 40000, dst: probe.dst, dport: probe.dport ?? 0, proto: l4Name(probe.proto) ?? 'tcp', mark: probe.mark}
}

/** What requestIn and requestInBlocked found so far for a probe of a service, by kind and state: the exact replay, and whether it is blocked. */
interface RequestMemo {
  exact?: Replay
  blocked?: boolean
  /** the packet and PREROUTING result of requestInBlocked's replay, until the exact replay takes them (no second PREROUTING run) */
  pkt?: Packet
  pre?: HookResult
}

/**
 * per probe packet (a service's own object): its service and world, the new connection's SYN (what most
 * rules ask), and the other kinds by `kind|state` (a map only when asked: a check keeps thousands of these)
 */
const requests = new WeakMap<Packet, {readonly svc: LbService; readonly w: World; readonly syn: RequestMemo; byKey?: Map<string, RequestMemo>}>()

function requestMemo(svc: LbService, w: World, probe: Packet, kind: FlowPacket, st: CtState): RequestMemo {
  let memo = requests.get(probe)
  if (!memo || memo.svc !== svc || memo.w !== w) {
    memo = {svc, w, syn: {}}
    requests.set(probe, memo)
  }
  if (kind === 'SYN' && st === 'NEW') return memo.syn
  const byKey = (memo.byKey ??= new Map())
  const key = `${kind}|${st}`
  let m = byKey.get(key)
  if (!m) {
    m = {}
    byKey.set(key, m)
  }
  return m
}

/** Client -> VIP on the director, up to the point where IPVS takes it (INPUT accepted); replayed once per service, probe, kind and state (several rules ask). */
export function requestIn(svc: LbService, w: World, probe: Packet, kind: FlowPacket, p: CtParams, state?: CtState): Replay {
  const st = state ?? ctStateOf('ipvs-in', kind, p)
  const m = requestMemo(svc, w, probe, kind, st)
  return (m.exact ??= requestInUncached(svc, w, probe, kind, st, false, m))
}

/**
 * Is requestIn's packet blocked on its way in? Answered with a DNAT balancer's forwarded packets meeting
 * FORWARD and POSTROUTING once per class of packets (path.ts receivedSharingTail), and only the answer is
 * kept: a check asks it for thousands of services, and keeping their paths costs the garbage collector more
 * than it saves. A caller that needs the path (the rule that blocked it) asks requestIn.
 */
export function requestInBlocked(svc: LbService, w: World, probe: Packet, kind: FlowPacket, p: CtParams, state?: CtState): boolean {
  const st = state ?? ctStateOf('ipvs-in', kind, p)
  const m = requestMemo(svc, w, probe, kind, st)
  if (m.blocked === undefined) m.blocked = !!(m.exact ?? requestInUncached(svc, w, probe, kind, st, true, m)).result.blocked
  return m.blocked
}

function requestInUncached(svc: LbService, w: World, probe: Packet, kind: FlowPacket, st: CtState, share: boolean, m: RequestMemo): Replay {
  const h = svc.host
  const o = {state: st, local: svc.kind === 'ipvs', iif: clientIif(h, w, svc.vip, svc), assumeLocal: svc.vip ? [svc.vip] : []}
  if (share) {
    const pkt = flowPacket(endpointsOf(probe), kind)
    const result = receivedSharingTail(h, pkt, o, (pre) => {
      m.pkt = pkt
      m.pre = pre
    })
    return {kind, state: st, place: 'ipvs-in', result, packet: pkt}
  }
  // the exact replay: PREROUTING as requestInBlocked's replay of the same packet met it, when it ran
  const pkt = m.pkt ?? flowPacket(endpointsOf(probe), kind)
  const result = m.pre ? receivedAfterPre(h, pkt, o, m.pre) : received(h, pkt, o)
  m.pkt = undefined
  m.pre = undefined
  return {kind, state: st, place: 'ipvs-in', result, packet: pkt}
}

/** The packet IPVS transmits toward a destination, through the director's LOCAL_OUT and POSTROUTING. */
export function requestOut(svc: LbService, probe: Packet, b: Backend, kind: FlowPacket, p: CtParams, state?: CtState): Replay {
  const h = svc.host
  const st = state ?? ctStateOf('ipvs-out', kind, p)
  const e = endpointsOf(probe)
  let pkt: Packet
  if (b.method === 'masq') pkt = flowPacket({...e, dst: b.ip, dport: b.port ?? e.dport}, kind)
  else if (b.method === 'tunnel') {
    const src = h.sourceFor(b.ip) ?? h.primaryAddress() ?? e.dst
    pkt = {family: 4, src, dst: b.ip, proto: 4, mark: 0}
  } else pkt = flowPacket(e, kind)
  const oif = h.oifFor(b.ip) ?? UNKNOWN_IF
  const result = sent(h, pkt, {state: st, oif, ipvs: ipvsViewOf(svc, probe, b)})
  return {kind, state: st, place: 'ipvs-out', result, packet: pkt}
}

/** IPVS's mark on the packets its transmitter sends toward `b` (skb->ipvs_property: `-m ipvs --ipvs` matches them). */
export function ipvsViewOf(svc: LbService, probe: Packet, b: Backend): IpvsView {
  return {vaddr: probe.dst, vport: probe.dport ?? 0, vproto: probe.proto, method: b.method === 'route' ? 'GATE' : b.method === 'tunnel' ? 'IPIP' : 'MASQ', dir: 'ORIGINAL'}
}

/** A realserver's reply of LVS-NAT arriving at the director (FORWARD, before ip_vs_reply4). */
export function replyIn(svc: LbService, probe: Packet, b: Backend, kind: FlowPacket, p: CtParams, state?: CtState): Replay {
  const h = svc.host
  const st = state ?? ctStateOf('ipvs-reply', kind, p)
  const pkt = flowPacket(replyEndpoints(probe, b), kind)
  const iif = h.oifFor(b.ip) ?? UNKNOWN_IF
  const dir = p.vsConntrack ? 'REPLY' : 'ORIGINAL'
  const result = received(h, pkt, {state: st, dir, iif, local: false})
  return {kind, state: st, place: 'ipvs-reply', result, packet: pkt}
}

function replyEndpoints(probe: Packet, b: Backend): Endpoints {
  const e = endpointsOf(probe)
  return {src: b.ip, sport: b.port ?? e.dport, dst: e.src, dport: e.sport, proto: e.proto}
}

/**
 * replyIn evaluated once per class of backend addresses that no rule on the way can tell apart
 * (path.ts receivedBySrcClass): `iif` is the backend's (where the director routes it). The replay's packet
 * is this backend's; its result may be another backend's of the class, and shows that backend's packets:
 * read its verdicts, decisions and guesses only.
 */
export function replyInByClass(svc: LbService, probe: Packet, b: Backend, iif: string, kind: FlowPacket, p: CtParams): Replay {
  const st = ctStateOf('ipvs-reply', kind, p)
  const {packet, result} = receivedBySrcClass(svc.host, replyEndpoints(probe, b), kind, {state: st, dir: p.vsConntrack ? 'REPLY' : 'ORIGINAL', iif, local: false})
  return {kind, state: st, place: 'ipvs-reply', result, packet}
}

/**
 * A client packet of a forwarded DR-shaped path (forward.ts) on the forwarding host: PREROUTING, the route
 * (with the mark PREROUTING gave it), FORWARD, POSTROUTING. The state defaults to the one-way model: the
 * host never sees the replies when the realserver answers around it.
 */
export function forwardIn(fp: ForwardPath, kind: FlowPacket, state?: CtState): Replay {
  const st = state ?? ctStateOf(fp.ret.kind === 'around' ? 'one-way' : 'both-ways', kind, {vsConntrack: false, tcpLoose: true, method: 'route', proto: fp.proto})
  const pkt = flowPacket(endpointsOf(fp.probe), kind)
  const result = received(fp.host, pkt, {state: st, local: false, iif: fp.iif})
  return {kind, state: st, place: fp.ret.kind === 'around' ? 'one-way' : 'both-ways', result, packet: pkt}
}

/** What the replays had to guess; a finding that rests on a guess is downgraded and says so. */
export function guessesOf(rs: readonly Replay[]): string[] {
  return [...new Set(rs.flatMap((r) => r.result.guesses))]
}

/** What a deciding rule does: its verdict, or for NAT the target (MASQUERADE, DNAT to ...). */
function actionOf(d: Decision): string {
  const t = d.target
  if (t?.kind === 'REJECT') return `REJECT with ${t.with}`
  if (d.verdict === 'NAT' && t) {
    if ((t.kind === 'DNAT' || t.kind === 'SNAT') && t.to[0]?.from) return `${t.kind} to ${formatIp(t.to[0].from)}${t.to[0].portFrom !== undefined ? `:${t.to[0].portFrom}` : ''}`
    return t.kind
  }
  return d.verdict
}

/**
 * The rule or policy that decided, for a message: `rule 5 of filter RH-Firewall-1-INPUT, REJECT with
 * icmp-host-prohibited (iptables-save.txt:13)`, `the DROP policy of filter INPUT (iptables-save.txt:3)`,
 * `nft rule inet filter input handle 7 (DROP)`, `the DROP policy of nft chain inet filter input`.
 */
export function where(d: Decision): string {
  const ref = locRef(d.loc)
  const nft = ref.startsWith('nft ')
  if (d.policy) return nft ? `the ${d.verdict} policy of ${ref}` : `the ${d.verdict} policy of ${d.table} ${d.chain} (${ref})`
  return nft ? `${ref} (${actionOf(d)})` : `rule ${d.rule!.index} of ${d.table} ${d.chain}, ${actionOf(d)} (${ref})`
}

/** The place a fix goes before, for a summary: `INPUT rule 3`, `the INPUT policy`, `nft rule inet filter input handle 7`. */
export function placeOf(d: Decision): string {
  const ref = locRef(d.loc)
  if (ref.startsWith('nft ')) return d.policy ? `the policy of ${ref}` : ref
  return d.policy ? `the ${d.chain} policy` : `${d.chain} rule ${d.rule!.index}`
}

const FATE: Readonly<Record<Decision['verdict'], string>> = {DROP: 'dropped', REJECT: 'rejected', QUEUE: 'queued to user space', ACCEPT: 'accepted', NAT: 'translated'}

export function describeReplay(r: Replay): string {
  const b = r.result.blocked
  const fate = b ? `${FATE[b.decision.verdict]} at ${b.hook.hook} by ${where(b.decision)}` : 'accepted'
  return `${PACKET_WORDS[r.kind]} (ctstate ${r.state}) ${fate}`
}

/** The hook-level decisions a replay met, with the blocking one last: evidence for a finding. */
export function replayEvidence(r: Replay, host?: string): Evidence[] {
  const out: Evidence[] = []
  for (const hk of r.result.hooks) for (const run of hk.runs) if (!run.decision.policy || run === hk.runs.at(-1)) if (run.decision.verdict !== 'ACCEPT' || run.decision.rule) out.push(ev(run.decision.loc, host))
  if (r.result.blocked) out.push(ev(r.result.blocked.decision.loc, host))
  return out
}

export function blockingEvidence(r: Replay, host?: string): Evidence[] {
  return r.result.blocked ? [ev(r.result.blocked.decision.loc, host)] : []
}

/** The filter rule (not a policy) that accepted the packet at a hook. */
export function acceptedBy(r: Replay, hook: 'INPUT' | 'OUTPUT' | 'FORWARD'): Decision | undefined {
  const hk = r.result.hooks.find((x) => x.hook === hook)
  const d = hk?.runs.find((run) => run.table === 'filter')?.decision
  return d && !d.policy && d.verdict === 'ACCEPT' ? d : undefined
}

export function assumedNote(d: Decision): string | undefined {
  return d.assumed ? `${locRef(d.loc)} decides only if its undecidable match matches (ipset, limit, recent...): assumed so` : undefined
}

export function ipSel(ip: IpAddr, proto?: L4, dport?: number) {
  return {dst: hostPrefix(ip), proto, dport}
}

export function fmt(ip: IpAddr): string {
  return formatIp(ip)
}

/** per DNAT service, the first cascade outcome of each DNAT rule */
const outcomesByRule = new WeakMap<LbService, Map<IptRule | undefined, DnatOutcome>>()

/** The first outcome of the service's DNAT cascade that ends at the backend's rule (what its packets carry: marks). */
export function backendOutcome(svc: LbService, b: Backend): DnatOutcome | undefined {
  const c = svc.cascade
  if (!c) return undefined
  // asked once per backend: a scan for a few dozen outcomes (a map per service, kept for the whole check,
  // costs the garbage collector more), a map beyond
  if (c.outcomes.length <= 64) {
    const outs = c.outcomes
    for (let i = 0; i < outs.length; i++) if (outs[i]!.value.rule === b.rule) return outs[i]!.value
    return undefined
  }
  let m = outcomesByRule.get(svc)
  if (!m) {
    m = new Map()
    for (const o of c.outcomes) if (!m.has(o.value.rule)) m.set(o.value.rule, o.value)
    outcomesByRule.set(svc, m)
  }
  return m.get(b.rule)
}

/**
 * The SYN of a DNAT service's connections to each of its backends, at the balancer's FORWARD hook after the DNAT
 * (state NEW, DNAT status set), once per class of backends FORWARD cannot tell apart: the backends whose SYN the
 * hook drops or rejects, with its result. Local backends (INPUT) and backends no connection reaches are left out.
 */
export function backendSynDrops(svc: LbService, w: World): {readonly b: Backend; readonly hr: HookResult}[] {
  const h = svc.host
  const probe = svc.probes[0]
  if (svc.kind !== 'dnat' || !h.fw || !probe) return []
  const iif = clientIif(h, w, svc.vip, svc)
  const out: {b: Backend; hr: HookResult}[] = []
  const orig = {dst: probe.dst, dport: probe.dport}
  // one endpoints and one options object for every backend, changed for each (hookByDstClass keeps neither)
  const e: {-readonly [K in keyof Endpoints]: Endpoints[K]} = {src: w.client.ip, sport: w.client.port, dst: probe.dst, dport: 0, proto: svc.proto, mark: 0}
  const o: {-readonly [K in keyof HookOpts]: HookOpts[K]} = {state: 'NEW', ctMark: 0, iif, oif: UNKNOWN_IF, dnat: true, orig}
  const outcomes = svc.cascade?.outcomes ?? []
  // the first outcome of each backend's rule: the backends were made in the order of the outcomes (world.ts
  // dnatService), so a cursor finds them in turn; a full scan when it does not
  let at = 0
  const backends = svc.backends
  for (let bi = 0; bi < backends.length; bi++) {
    const b = backends[bi]!
    if (b.local || b.method !== 'dnat' || b.share === 0) continue
    let oc: DnatOutcome | undefined
    let k = at
    while (k < outcomes.length && outcomes[k]!.value.rule !== b.rule) k++
    if (k < outcomes.length) {
      oc = outcomes[k]!.value
      at = k + 1
    } else {
      for (k = 0; k < outcomes.length; k++) {
        if (outcomes[k]!.value.rule === b.rule) {
          oc = outcomes[k]!.value
          break
        }
      }
    }
    e.dst = b.ip
    e.dport = b.port ?? probe.dport ?? 0
    e.mark = oc?.mark ?? probe.mark
    o.ctMark = oc?.ctMark ?? 0
    o.oif = h.oifFor(b.ip) ?? UNKNOWN_IF
    const hr = hookByDstClass(h, 'FORWARD', e, 'SYN', o, false)
    if (hr && hr.verdict !== 'ACCEPT' && hr.decision) out.push({b, hr})
  }
  return out
}
