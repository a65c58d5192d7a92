// filter-blocks-vip: the first packet of a client's connection to a VIP:port is dropped before IPVS sees it
// (filter INPUT runs before ip_vs_remote_request4 at LOCAL_IN), or, for a DNAT balancer, before it is
// forwarded to a backend (filter FORWARD).
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {rpfilterWhy} from './engine/rpfilter-why.js'
import {assumedNote, backendSynDrops, clientIif, describeReplay, guessesOf, requestIn, requestInBlocked, requestOut, params, ipvsKnobs, where, ipSel, placeOf, type Replay} from './engine/flows.js'
import type {FlowPacket} from './engine/ctmodel.js'
import type {Packet} from '../dataplane/packet.js'
import {formatEndpoint} from '../model/ip.js'
import {listSome} from './engine/list.js'
import type {FixOp} from './engine/fix.js'
import type {World} from './engine/world.js'
import {describeBackend} from './engine/world.js'
import {describeService, vipSelector, type LbService} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'filter-blocks-vip',
  title: 'the firewall drops new connections to the VIP before the balancer sees them',
  severity: 'error',
  description:
    'A new connection to a virtual service meets filter INPUT before IPVS (LOCAL_IN, IPVS registers after the filter table); for a DNAT balancer it meets filter FORWARD after the DNAT. A DROP or REJECT there (a rule or the chain policy) means no client ever reaches a realserver.',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.3, 29.6, 29.11.2)', '001_99dd2e38bf121ee9.txt', 'net/netfilter/ipvs/ip_vs_core.c ip_vs_ops4'],
}

/** One stateless accept per dropped backend, before the decision that drops it. */
function perBackendOps(svc: LbService, drops: ReturnType<typeof backendSynDrops>): FixOp[] {
  const fw = svc.host.fw!
  const ops: FixOp[] = []
  const seen = new Set<string>()
  for (const x of drops) {
    const key = `${x.b.ip.value}|${x.b.port}`
    if (seen.has(key)) continue
    seen.add(key)
    ops.push(...fw.fixer.acceptBefore(x.hr.decision!, ipSel(x.b.ip, svc.proto, x.b.port ?? svc.probes[0]!.dport)))
  }
  return ops
}

/**
 * A DNAT service whose FORWARD chain drops the SYN to some of its backends only (a backend added to the cascade
 * and forgotten in the firewall): the connections the cascade sends there fail, the others work. undefined when
 * no backend's SYN is dropped, or every one's (then the service's own probe tells, with the whole path).
 */
function partialDrop(svc: LbService, w: World) {
  const drops = backendSynDrops(svc, w)
  const reached = svc.backends.filter((b) => !b.local && b.method === 'dnat' && b.share !== 0)
  if (drops.length === 0 || drops.length >= reached.length) return undefined
  const h = svc.host
  const fw = h.fw!
  const share = drops.every((d) => d.b.share !== undefined) ? drops.reduce((a, d) => a + d.b.share!, 0) : undefined
  const pct = share === undefined ? '' : ` (${share >= 0.995 ? 'all' : share < 0.005 ? 'under 1%' : `${Math.round(share * 100)}%`} of new connections)`
  const byDecision = new Map<string, {d: NonNullable<(typeof drops)[number]['hr']['decision']>; bs: typeof drops}>()
  for (const x of drops) {
    const d = x.hr.decision!
    const k = `${d.loc.file}|${d.loc.line}|${d.chain}`
    const cur = byDecision.get(k)
    if (cur) cur.bs.push(x)
    else byDecision.set(k, {d, bs: [x]})
  }
  const ops = perBackendOps(svc, drops)
  const first = drops[0]!.hr.decision!
  const assumed = drops.map((x) => assumedNote(x.hr.decision!)).filter((x): x is string => !!x)
  return finding(meta, h.name, {
    severity: assumed.length ? 'info' : undefined,
    message:
      `New connections to ${describeService(svc)} that the DNAT sends to ${listSome(drops.map((x) => describeBackend(x.b)))}${pct} are ${first.verdict === 'REJECT' ? 'rejected' : 'dropped'} at FORWARD by ` +
      `${[...byDecision.values()].map((x) => where(x.d)).join(', ')}: FORWARD sees them after the DNAT, addressed to the backend. ` +
      `Those connections ${first.verdict === 'REJECT' ? 'are refused' : 'time out'}; the ones sent to ${listSome(reached.filter((b) => !drops.some((x) => x.b === b)).map(describeBackend))} pass.`,
    evidence: [ev(svc.loc), ...drops.map((x) => ev(x.b.loc)), ...[...byDecision.values()].map((x) => ev(x.d.loc))],
    unverified: assumed,
    fix: {summary: `accept the SYN to ${drops.length === 1 ? 'that backend' : 'those backends'} in FORWARD as the others are, before ${placeOf(first)}`, ops},
  })
}

const LATER: readonly FlowPacket[] = ['ACK', 'DATA', 'FIN']

/**
 * An IPVS service whose SYN passes INPUT, with what the firewall drops after it regardless of the conntrack state
 * (a drop that depends on it is nat-stateful-output's or dr-stateful-filter's): what IPVS sends toward a realserver,
 * which goes out through LOCAL_OUT (ip_vs_*_xmit: filter OUTPUT, then POSTROUTING), and for LVS-NAT with
 * vs.conntrack=1 the client's later packets at INPUT, ESTABLISHED there.
 */
function afterSyn(svc: LbService, w: World, probe: Packet) {
  const h = svc.host
  const fw = h.fw!
  const k = ipvsKnobs(h)
  const blocked: {replay: Replay; ops: FixOp[]}[] = []
  const kinds: FlowPacket[] = svc.proto === 'tcp' ? ['SYN', ...LATER] : ['SYN']
  for (const b of svc.backends) {
    if (b.local || b.weight === 0 || (b.method !== 'masq' && b.method !== 'route' && b.method !== 'tunnel')) continue
    const p = params(k, b.method === 'masq' ? 'masq' : b.method === 'tunnel' ? 'tunnel' : 'route', svc.proto)
    for (const kind of kinds) {
      const r = requestOut(svc, probe, b, kind, p)
      const d = r.result.blocked?.decision
      if (!d) continue
      // whatever its state: the tracked state (NEW for the SYN, ESTABLISHED after it) is dropped too
      if (!requestOut(svc, probe, b, kind, p, kind === 'SYN' ? 'NEW' : 'ESTABLISHED').result.blocked) break
      const sel = b.method === 'tunnel' ? {dst: ipSel(b.ip).dst, proto: undefined} : ipSel(b.ip, svc.proto, b.method === 'masq' ? (b.port ?? probe.dport) : probe.dport)
      blocked.push({replay: r, ops: fw.fixer.acceptBefore(d, sel)})
      break
    }
    if (blocked.length) break
  }
  const masq = svc.backends.some((b) => b.method === 'masq' && !b.local)
  if (masq && k.vsConntrack && svc.proto === 'tcp') {
    const p = params(k, 'masq', svc.proto)
    for (const kind of LATER) {
      const r = requestIn(svc, w, probe, kind, p)
      const d = r.result.blocked?.decision
      if (!d) continue
      blocked.push({replay: r, ops: r.state === 'ESTABLISHED' ? fw.fixer.acceptEstablishedBefore(d) : fw.fixer.acceptBefore(d, vipSelector(svc))})
      break
    }
  }
  if (blocked.length === 0) return undefined
  const lines = blocked.map((x) => `  ${x.replay.place === 'ipvs-out' ? `after IPVS, toward ${formatEndpoint({ip: x.replay.packet.dst, port: x.replay.packet.dport ?? 0})} (IPVS sends it through LOCAL_OUT): ` : 'before IPVS: '}${describeReplay(x.replay)}`)
  const guesses = guessesOf(blocked.map((x) => x.replay))
  return finding(meta, h.name, {
    severity: guesses.length ? 'info' : undefined,
    message:
      `New connections to ${describeService(svc)} pass filter INPUT, but ${h.name}'s firewall drops them further on:\n${lines.join('\n')}\n` +
      (blocked.some((x) => x.replay.place === 'ipvs-out' && x.replay.kind === 'SYN') ? 'No connection reaches a realserver.' : 'Connections open and then stall.'),
    evidence: [ev(svc.loc), ...blocked.map((x) => ev(x.replay.result.blocked!.decision.loc))],
    unverified: guesses,
    fix: {summary: 'accept the balanced traffic where it is dropped: toward the realservers in OUTPUT, and the packets of established connections in INPUT', ops: blocked.flatMap((x) => x.ops)},
  })
}

export default serviceRule(meta, (svc: LbService, w) => {
  const h = svc.host
  if (!h.fw) return undefined
  const k = ipvsKnobs(h)
  for (const probe of svc.probes) {
    const p = params(k, svc.kind === 'dnat' ? 'dnat' : 'masq', svc.proto)
    // the verdict first (its forwarded part shared with other services' packets); the packet itself when it is blocked
    if (!requestInBlocked(svc, w, probe, 'SYN', p, 'NEW')) {
      // the probe takes the cascade's first backend: the others may meet FORWARD otherwise
      if (svc.kind === 'dnat' && probe === svc.probes[0]) {
        const f = partialDrop(svc, w)
        if (f) return f
      }
      if (svc.kind === 'ipvs' && probe === svc.probes[0]) {
        const f = afterSyn(svc, w, probe)
        if (f) return f
      }
      continue
    }
    const r = requestIn(svc, w, probe, 'SYN', p, 'NEW')
    const b = r.result.blocked
    if (!b) continue
    const perBackend = svc.kind === 'dnat' && b.hook.hook === 'FORWARD' && probe === svc.probes[0] ? backendSynDrops(svc, w) : []
    if (perBackend.length) {
      const f = partialDrop(svc, w)
      if (f) return f
    }
    // a DNAT service whose own rule did not take this packet (it selects other sources, e.g. OpenWrt's reflection
    // rules for LAN clients only): the drop is not about the service's connections
    if (svc.kind === 'dnat' && b.hook.hook !== 'PREROUTING' && !r.result.hooks.some((hk) => hk.hook === 'PREROUTING' && (hk.nat?.kind === 'DNAT' || hk.nat?.kind === 'REDIRECT'))) continue
    const d = b.decision
    // the packet as the dropping chain sees it: after the DNAT (FORWARD, or INPUT for a DNAT/REDIRECT to the host itself)
    const seen = r.result.packet
    const afterDnat = b.hook.hook === 'FORWARD' || b.hook.hook === 'POSTROUTING' || seen.dst.value !== probe.dst.value || seen.dport !== probe.dport
    const sel = afterDnat ? ipSel(seen.dst, svc.proto, seen.dport) : vipSelector(svc)
    const note = assumedNote(d)
    const guesses = guessesOf([r])
    const target = svc.kind === 'ipvs' ? 'IPVS' : 'the DNAT backends'
    // the packet as the dropping rule saw it (its mark set by the rules before)
    const rpf = b.hook.hook === 'PREROUTING' ? rpfilterWhy(h, d, seen, clientIif(h, w, svc.vip, svc)) : undefined
    return finding(meta, h.name, {
      severity: note || guesses.length ? 'info' : undefined,
      message:
        `New connections to ${describeService(svc)} are ${d.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(d)}, ` +
        `before ${target} ${svc.kind === 'ipvs' ? 'sees them (filter INPUT runs before IPVS at LOCAL_IN)' : 'receive them'}.${rpf ? ` ${rpf.why}` : ''}`,
      evidence: [ev(svc.loc), ...r.result.hooks.flatMap((hk) => hk.runs.filter((x) => x.decision.rule && x.decision.verdict !== 'ACCEPT').map((x) => ev(x.decision.loc))), ev(d.loc)],
      unverified: [note, ...guesses, svc.vipAssumed ? `the DNAT rule has no destination address: ${h.name}'s own address stands for the VIP` : undefined].filter((x): x is string => !!x),
      fix: rpf?.fix ? {summary: rpf.fix.summary, ops: [rpf.fix.op]} : {
        summary: `accept the service's packets before ${placeOf(d)} (stateless, so that every packet of the connection passes)`,
        // after the DNAT each backend's packets are their own: one accept per backend FORWARD drops
        ops: (svc.kind === 'dnat' && b.hook.hook === 'FORWARD' && perBackend.length > 1 ? perBackendOps(svc, perBackend) : undefined) ?? h.fw.fixer.acceptBefore(d, sel),
      },
    })
  }
  return undefined
})
