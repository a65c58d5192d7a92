// reject-on-one-way-flow: a catch-all REJECT/DROP rule behind an ESTABLISHED,RELATED accept, on a path where
// conntrack cannot follow the connection (LVS-HOWTO 29.14): a mid-flow packet it cannot place (INVALID) falls
// past the ESTABLISHED accept to the catch-all, and the REJECT's icmp-host-prohibited kills long sessions.
import type {IptRule} from '../model/iptables.js'
import type {Evidence} from '../model/finding.js'
import {hostPrefix} from '../model/ip.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {forwardIn, guessesOf, ipvsKnobs, params, requestIn, where, type Replay} from './engine/flows.js'
import {describeForward, type ForwardPath} from './engine/forward.js'
import {received} from './engine/path.js'
import {flowPacket} from './engine/packets.js'
import {acceptsEstablished, isStateful, statelessFix} from './engine/stateful.js'
import {describeBackend, describeService, isNatMethod, vipSelector, type Backend, type LbService, type World} from './engine/world.js'
import type {Decision, PacketSelector} from './engine/firewall.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'reject-on-one-way-flow',
  title: 'catch-all REJECT/DROP behind an ESTABLISHED accept on a one-way path',
  severity: 'error',
  description:
    'When a service\'s packets are let through only by "-m state --state RELATED,ESTABLISHED -j ACCEPT" (plus a NEW-only accept) and a catch-all REJECT/DROP rule ends the chain, any packet conntrack cannot place is rejected mid-session. A DR/TUN director sees one direction only, so conntrack cannot track the flow; realservers reject too when their entry is lost. LVS-HOWTO 29.14: long DR sessions killed by icmp-host-prohibited, on the director and on the realservers.',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.14, 29.6, 29.16)', 'net/netfilter/nf_conntrack_proto_tcp.c tcp_in_window'],
}

/** The deciding rule is a catch-all (no ctstate/flag condition) REJECT or DROP, with an ESTABLISHED accept before it. */
function catchAllBehindEstablished(d: Decision, r: Replay): IptRule | undefined {
  const rule = d.rule
  if (!rule || (rule.target?.kind !== 'REJECT' && rule.target?.kind !== 'DROP') || isStateful(rule)) return undefined
  const chains = new Set<string>([d.chain])
  for (const hk of r.result.hooks) for (const run of hk.runs) for (const t of run.result.trail) chains.add(t.chain)
  const table = d.ruleset.tables.get(d.table)
  for (const name of chains) {
    const c = table?.chains.get(name)
    const est = c?.rules.find((x) => acceptsEstablished(x) && (name !== d.chain || x.index < rule.index))
    if (est) return est
  }
  return undefined
}

interface Where {
  /** the sentence that says why conntrack cannot place a packet, up to the packet it then meets ("...: a packet it cannot place") */
  readonly path: string
  /** the service (and realserver) lines */
  readonly evidence: readonly Evidence[]
  readonly realserver: boolean
}

function check(host: HostView, r: Replay, rEst: Replay, sel: PacketSelector, at: Where): RuleFinding | undefined {
  const blocked = r.result.blocked
  if (!blocked || rEst.result.blocked || !host.fw) return undefined
  const est = catchAllBehindEstablished(blocked.decision, r)
  if (!est) return undefined
  // the rule that lets new connections in (the stateful accept 29.14 replaced by a stateless one)
  const newAccept = host.fw.rulesets
    .flatMap((rs) => [...(rs.tables.get(blocked.decision.table)?.chains.get(blocked.decision.chain)?.rules ?? [])].map((rule) => ({rule, ruleset: rs})))
    .find((x) => x.ruleset === blocked.decision.ruleset && x.rule.index < blocked.decision.rule!.index && x.rule.target?.kind === 'ACCEPT' && x.rule.matches.some((m) => m.kind === 'ctstate' && !m.neg && m.states.includes('NEW')) && !acceptsEstablished(x.rule))
  const accepting = newAccept ? ({...blocked.decision, rule: newAccept.rule, policy: false, verdict: 'ACCEPT', loc: newAccept.rule.loc} as Decision) : undefined
  const target = blocked.decision.rule!.target
  const reject = target?.kind === 'REJECT'
  const rejectWith = target?.kind === 'REJECT' ? target.with : undefined
  const guesses = guessesOf([r])
  return finding(meta, host.name, {
    severity: guesses.length ? 'info' : at.realserver ? 'warning' : undefined,
    unverified: guesses,
    message:
      `${at.path} is INVALID, misses the ESTABLISHED accept (${locRef(est.loc)}) and falls to ${where(blocked.decision)}` +
      `${!reject ? ', which drops it silently: the session stalls' : rejectWith === 'tcp-reset' ? ', which answers with a TCP reset that aborts the client\'s session' : ', which answers with an ICMP error that aborts the client\'s session'} (LVS-HOWTO 29.14).`,
    evidence: [...at.evidence, ev(est.loc), ...(accepting ? [ev(accepting.loc)] : []), ev(blocked.decision.loc)],
    fix: {
      summary: 'accept the service\'s packets statelessly before the catch-all rule (LVS-HOWTO 29.14 replaced the --state NEW accept by a plain --dport accept)',
      ops: statelessFix(host.fw, accepting, [{replay: r, decision: blocked.decision, selector: sel}]),
    },
  })
}

function onDirector(svc: LbService, w: World): RuleFinding | undefined {
  const k = ipvsKnobs(svc.host)
  const p = params(k, 'route', svc.proto)
  for (const probe of svc.probes) {
    if (requestIn(svc, w, probe, 'SYN', p).result.blocked) continue
    const lost = requestIn(svc, w, probe, 'MIDLOST', p, 'INVALID')
    const est = requestIn(svc, w, probe, 'MIDLOST', p, 'ESTABLISHED')
    const f = check(svc.host, lost, est, vipSelector(svc), {
      path: `${svc.host.name} forwards ${describeService(svc)} by ${svc.backends.some((x) => x.method === 'tunnel') ? 'tunnelling' : 'direct routing'} and never sees the replies, so its conntrack cannot follow these connections: a mid-flow packet it cannot place`,
      evidence: [ev(svc.loc)],
      realserver: false,
    })
    if (f) return f
  }
  return undefined
}

function onRealserver(svc: LbService, b: Backend, w: World): RuleFinding | undefined {
  const rs = b.owner!
  if (!rs.fw) return undefined
  for (const probe of svc.probes) {
    // what the realserver receives: the VIP packet unchanged (DR/TUN) or rewritten to the RIP (NAT/DNAT)
    const nat = isNatMethod(b.method)
    const dst = nat ? b.ip : probe.dst
    const dport = nat ? (b.port ?? probe.dport!) : probe.dport!
    const e = {src: w.client.ip, sport: w.client.port, dst, dport, proto: svc.proto}
    const iif = rs.addressOf(b.ip)?.iface.name ?? UNKNOWN_IF
    const run = (state: 'INVALID' | 'ESTABLISHED' | 'NEW'): Replay => {
      const pkt = flowPacket(e, state === 'NEW' ? 'SYN' : 'MIDLOST')
      return {kind: state === 'NEW' ? 'SYN' : 'MIDLOST', state, place: 'both-ways', packet: pkt, result: received(rs, pkt, {state, local: true, iif})}
    }
    if (run('NEW').result.blocked) continue
    const sel = {dst: {family: dst.family, value: dst.value, len: dst.family === 4 ? 32 : 128}, proto: svc.proto, dport}
    const f = check(rs, run('INVALID'), run('ESTABLISHED'), sel, {
      path: `${rs.name} is a realserver of ${describeService(svc)} (${describeBackend(b)}): when its conntrack loses a connection's entry (expired, evicted, out of window), the connection's next packet`,
      evidence: [ev(svc.loc, svc.host.name)],
      realserver: true,
    })
    if (f) return f
  }
  return undefined
}

/** A forwarded DR-shaped path whose replies provably bypass the forwarding host (engine/forward.ts). */
function onForward(fp: ForwardPath): RuleFinding | undefined {
  if (!fp.host.fw || fp.ret.kind !== 'around') return undefined
  if (forwardIn(fp, 'SYN').result.blocked) return undefined
  const lost = forwardIn(fp, 'MIDLOST', 'INVALID')
  const est = forwardIn(fp, 'MIDLOST', 'ESTABLISHED')
  return check(fp.host, lost, est, {dst: hostPrefix(fp.vip), proto: fp.proto, dport: fp.port}, {
    path: `${describeForward(fp)}: ${fp.host.name} forwards it without NAT, and ${fp.ret.reason}, so its conntrack sees one direction only and cannot follow these connections (the client's ACK in SYN_SENT is already INVALID): a packet it cannot place`,
    evidence: [...fp.routeEvidence, ev(fp.vipLoc, fp.realserver.name), ...fp.ret.evidence],
    realserver: false,
  })
}

/** The realserver of a forwarded path, when its own conntrack loses an entry (as onRealserver). */
function onForwardRealserver(fp: ForwardPath, w: World): RuleFinding | undefined {
  const rs = fp.realserver
  if (!rs.fw) return undefined
  const e = {src: w.client.ip, sport: w.client.port, dst: fp.vip, dport: fp.port, proto: fp.proto}
  const iif = fp.rsIif ?? UNKNOWN_IF
  const run = (state: 'INVALID' | 'ESTABLISHED' | 'NEW'): Replay => {
    const pkt = flowPacket(e, state === 'NEW' ? 'SYN' : 'MIDLOST')
    return {kind: state === 'NEW' ? 'SYN' : 'MIDLOST', state, place: 'both-ways', packet: pkt, result: received(rs, pkt, {state, local: true, iif})}
  }
  if (run('NEW').result.blocked) return undefined
  return check(rs, run('INVALID'), run('ESTABLISHED'), {dst: hostPrefix(fp.vip), proto: fp.proto, dport: fp.port}, {
    path: `${rs.name} serves ${describeForward(fp)}: when its conntrack loses a connection's entry (expired, evicted, out of window), the connection's next packet`,
    evidence: [...fp.routeEvidence.map((e) => ({...e, host: fp.host.name})), ev(fp.vipLoc)],
    realserver: true,
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    if (svc.kind === 'ipvs' && svc.backends.some((b) => b.method === 'route' || b.method === 'tunnel') && svc.host.fw) {
      const f = onDirector(svc, w)
      const missing = svc.backends.filter((b) => !b.owner && !b.local).map((b) => `the realserver ${describeBackend(b)}: no snapshot of the host owning it (its own chains may reject the same way)`)
      if (f) out.push(missing.length ? {...f, unverified: [...(f.unverified ?? []), ...missing]} : f)
    }
    for (const b of svc.backends) {
      if (!b.owner || b.local) continue
      if (out.some((f) => f.host === b.owner!.name)) continue
      const f = onRealserver(svc, b, w)
      if (f) out.push(f)
    }
  }
  for (const fp of w.forwards) {
    if (!out.some((f) => f.host === fp.host.name)) {
      const f = onForward(fp)
      if (f) out.push(f)
    }
    if (!out.some((f) => f.host === fp.realserver.name)) {
      const f = onForwardRealserver(fp, w)
      if (f) out.push(f)
    }
  }
  return out
})

