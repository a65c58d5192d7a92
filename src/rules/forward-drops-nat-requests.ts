// forward-drops-nat-requests: the client's packets after the SYN (its handshake ACK, request and FIN) of a
// DNAT-balanced connection cross the balancer's filter FORWARD chain like the SYN, after the DNAT, as
// ESTABLISHED packets. A FORWARD chain that accepts only the first packet (--syn, --state NEW) under a DROP
// policy, or drops some of them before its accept (a FIN filter), lets the connection open and then kills it.
// The SYN itself is filter-blocks-vip's, the replies forward-drops-nat-replies'.
import type {Evidence} from '../model/finding.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import type {IptRule, IptTable} from '../model/iptables.js'
import {backendOutcome, backendSynDrops, clientIif, describeReplay, ipvsKnobs, params, placeOf, requestIn, requestInBlocked, type Replay} from './engine/flows.js'
import {hookByDstClass, rulesetFacts} from './engine/path.js'
import {flowPacket, type Endpoints} from './engine/packets.js'
import type {FlowPacket} from './engine/ctmodel.js'
import type {Decision, HookResult} from './engine/firewall.js'
import {addrClass, type Scope} from './engine/classes.js'
import type {FixOp} from './engine/fix.js'
import {listSome} from './engine/list.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'forward-drops-nat-requests',
  title: "FORWARD drops the client's packets after the SYN of DNAT-balanced connections",
  severity: 'error',
  description:
    "Every packet of a DNAT-balanced connection from the client crosses the balancer's filter FORWARD chain after the DNAT, not only the SYN: the handshake ACK, the request and the FIN come as ESTABLISHED packets. A FORWARD chain that accepts the service only with --syn or --state NEW under a DROP policy (and has no ESTABLISHED accept), or drops some of them before its accept (a FIN or flag filter), lets the SYN open the connection and drops the rest: the client hangs after the handshake, or its connections never close.",
  sources: [
    'net/netfilter/nf_nat_core.c (the DNAT binding is applied to every packet of the connection at PRE_ROUTING)',
    'net/netfilter/nf_conntrack_proto_tcp.c (packets after the SYN/ACK are ESTABLISHED)',
    '001_99dd2e38bf121ee9.txt (DNAT mode)',
    'iptables-extensions(8) conntrack --ctstate, tcp --syn',
  ],
}

const LATER: readonly FlowPacket[] = ['ACK', 'DATA', 'FIN']

interface Dropped {
  readonly b: Backend
  readonly replay: Replay
  readonly decision: Decision
}

/** filter FORWARD without the nat table: the scope of the destination classes (a constant: analyses are kept per scope) */
const FORWARD_DST: Scope = {hooks: ['FORWARD'], nat: false}

const pos = (d: Decision) => (d.rule ? d.rule.index : Number.MAX_SAFE_INTEGER)

/** A stateless accept filter-blocks-vip inserts before `syn` also passes a packet dropped at `d` (same chain, not before it). */
function coveredBy(syn: Decision | undefined, d: Decision): boolean {
  return !!syn && syn.ruleset === d.ruleset && syn.table === d.table && syn.chain === d.chain && pos(d) >= pos(syn)
}

const FORWARD_TABLES = ['mangle', 'filter', 'security'] as const

/** A rule that cannot match an ESTABLISHED packet (a ctstate/state match without ESTABLISHED). */
function notEstablished(rule: IptRule): boolean {
  return rule.matches.some((m) => m.kind === 'ctstate' && !m.neg && !m.states.includes('ESTABLISHED'))
}

const mayDrop = new WeakMap<HostView, boolean>()

/**
 * Can the FORWARD hook drop an ESTABLISHED packet at all: a DROP policy, or a DROP/REJECT rule in a chain reached
 * from FORWARD through jumps an ESTABLISHED packet can take? A cheap over-approximation per host, so that the
 * thousands of services of a kube-proxy node (FORWARD ACCEPT, drops for NEW/INVALID only) are not replayed.
 */
function mayDropEstablished(h: HostView): boolean {
  let v = mayDrop.get(h)
  if (v === undefined) {
    v = h.fw?.kind !== 'iptables' || h.fw.rulesets.some((rs) => FORWARD_TABLES.some((t) => tableMayDrop(rs.tables.get(t))))
    mayDrop.set(h, v)
  }
  return v
}

function tableMayDrop(table: IptTable | undefined): boolean {
  const fwd = table?.chains.get('FORWARD')
  if (!table || !fwd) return false
  if (fwd.policy === 'DROP') return true
  const seen = new Set<string>(['FORWARD'])
  const queue = [fwd]
  while (queue.length) {
    const c = queue.pop()!
    for (const r of c.rules) {
      if (notEstablished(r)) continue
      const t = r.target
      if (t?.kind === 'DROP' || t?.kind === 'REJECT' || t?.kind === 'QUEUE' || t?.kind === 'unknown') return true
      if ((t?.kind === 'jump' || t?.kind === 'goto') && !seen.has(t.chain)) {
        seen.add(t.chain)
        const next = table.chains.get(t.chain)
        if (next) queue.push(next)
      }
    }
  }
  return false
}

function check(svc: LbService, w: World): RuleFinding | undefined {
  const h = svc.host
  const fw = h.fw
  const probe = svc.probes[0]
  if (!fw || !probe || svc.proto !== 'tcp' || !mayDropEstablished(h)) return undefined
  const p = params(ipvsKnobs(h), 'dnat', svc.proto)
  // the SYN's own drop is filter-blocks-vip's; its stateless accept also passes what that decision would drop later
  const synDecision = requestInBlocked(svc, w, probe, 'SYN', p, 'NEW') ? requestIn(svc, w, probe, 'SYN', p, 'NEW').result.blocked?.decision : undefined
  const iif = clientIif(h, w, svc.vip, svc)
  // a backend whose own SYN FORWARD drops (the probe above takes the cascade's first one) is filter-blocks-vip's
  // too: its stateless accept for that backend passes what a later decision would drop
  const synDrops = new Map<Backend, Decision>()
  for (const x of backendSynDrops(svc, w)) synDrops.set(x.b, x.hr.decision!)
  const dropped: Dropped[] = []
  // per backend once: its packet's endpoints and marks and where it leaves (kube-proxy services have thousands)
  const legs: {b: Backend; e: Endpoints; ctMark: number; oif: string}[] = []
  for (const b of svc.backends) {
    if (b.local || b.method !== 'dnat' || b.share === 0) continue
    const o = backendOutcome(svc, b)
    legs.push({b, e: {src: w.client.ip, sport: w.client.port, dst: b.ip, dport: b.port ?? probe.dport ?? 0, proto: svc.proto, mark: o?.mark ?? probe.mark}, ctMark: o?.ctMark ?? 0, oif: h.oifFor(b.ip) ?? UNKNOWN_IF})
  }
  // backends FORWARD cannot tell apart (destination class, port, marks, output interface) meet the same fate: one
  // evaluation per class (kube-proxy: 31,704 backends, a few hundred classes)
  const fates = new Map<string, {kind: FlowPacket; hr: HookResult}[]>()
  for (const {b, e, ctMark, oif} of legs) {
    const legSyn = synDrops.get(b)
    const key = `${addrClass(h, FORWARD_DST, 'dst', b.ip)}|${e.dport}|${e.mark}|${ctMark}|${oif}|${legSyn ? `${legSyn.loc.file}:${legSyn.loc.line}` : ''}`
    let fate = fates.get(key)
    if (!fate) {
      fate = []
      for (const kind of LATER) {
        // after the DNAT (the binding rewrites every packet at PREROUTING); FORWARD alone decides (raw/mangle drops are rare)
        const hr = hookByDstClass(h, 'FORWARD', e, kind, {state: 'ESTABLISHED', ctMark, iif, oif, dnat: true, orig: {dst: probe.dst, dport: probe.dport}}, false)
        if (hr && hr.verdict !== 'ACCEPT' && hr.decision && !coveredBy(synDecision, hr.decision) && !coveredBy(legSyn, hr.decision)) fate.push({kind, hr})
      }
      fates.set(key, fate)
    }
    for (const {kind, hr} of fate) {
      const packet = flowPacket(e, kind)
      dropped.push({b, decision: hr.decision!, replay: {kind, state: 'ESTABLISHED', place: 'both-ways', packet, result: {hooks: [hr], blocked: {hook: hr, decision: hr.decision!}, packet, noFirewall: false, guesses: []}}})
    }
  }
  dropped.sort((x, y) => LATER.indexOf(x.replay.kind) - LATER.indexOf(y.replay.kind))
  if (dropped.length === 0) return undefined
  // one ESTABLISHED accept per chain, before the earliest decision that drops a packet there
  const first = new Map<string, Dropped>()
  for (const d of dropped) {
    const k = `${d.decision.ruleset.file}|${d.decision.table}|${d.decision.chain}`
    const cur = first.get(k)
    if (!cur || pos(d.decision) < pos(cur.decision)) first.set(k, d)
  }
  const ops: FixOp[] = [...first.values()].flatMap((d) => fw.fixer.acceptEstablishedBefore(d.decision))
  const synAccept = synDecision ? undefined : requestIn(svc, w, probe, 'SYN', p, 'NEW').result.hooks.find((x) => x.hook === 'FORWARD')?.runs.find((r) => r.table === 'filter')?.decision
  const assumed = dropped.filter((d) => d.decision.assumed)
  // an interface the snapshot cannot name (no routes): -i/-o matches were taken as not matching
  const ifaceRules = fw.rulesets.some((rs) => FORWARD_TABLES.some((t) => rulesetFacts(rs).in.has(t) || rulesetFacts(rs).out.has(t)))
  const guessed = ifaceRules && (iif === UNKNOWN_IF || legs.some((l) => l.oif === UNKNOWN_IF && dropped.some((d) => d.b === l.b)))
  const guesses = guessed ? ['the interfaces the packets cross are not all known (no ip-addr.json/ip-route.json): -i/-o matches were taken as not matching'] : []
  const backends = [...new Set(dropped.map((d) => describeBackend(d.b)))]
  const kinds = new Set(dropped.map((d) => d.replay.kind))
  const evidence: Evidence[] = [ev(svc.loc), ...[...new Set(dropped.map((d) => d.b))].map((b) => ev(b.loc)), ...(synAccept && !synAccept.policy ? [ev(synAccept.loc)] : []), ...dropped.map((d) => ev(d.decision.loc))]
  return finding(meta, h.name, {
    severity: assumed.length || guesses.length ? 'info' : undefined,
    message:
      `${describeService(svc)}: the client's packets after the SYN cross ${h.name}'s FORWARD chain after the DNAT (to ${listSome(backends)}), as ESTABLISHED packets, and the chain drops them:\n` +
      [...new Set(dropped.map((d) => `  ${describeReplay(d.replay)}`))].join('\n') +
      (synDecision ? `\nThe SYN is dropped too (see filter-blocks-vip); its fix does not reach these drops.` : `\nThe SYN passes${synAccept && !synAccept.policy ? ` (${locRef(synAccept.loc)})` : ''}, so the connection opens, but ` + (kinds.has('ACK') || kinds.has('DATA') ? 'the request never reaches the backend: the client hangs after the handshake.' : 'its FINs never pass: connections are never closed cleanly.')),
    evidence,
    unverified: [...guesses, ...assumed.map((d) => `${locRef(d.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
    fix: {
      summary: `accept the packets of accepted connections in FORWARD (conntrack ESTABLISHED,RELATED) before ${placeOf(first.values().next().value!.decision)}`,
      ops,
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    if (svc.kind !== 'dnat') continue
    const f = check(svc, w)
    if (f) out.push(f)
  }
  return out
})
