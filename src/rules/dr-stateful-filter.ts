// dr-stateful-filter: on an LVS-DR/TUN director the replies bypass the director, so conntrack never sees
// the connection reach ESTABLISHED. A service accepted only for NEW (or --syn) packets, or INVALID dropped,
// lets the SYN in and drops the FINs (LVS-HOWTO 29.1, 29.16): ActiveConn inflates, clients hang in LAST_ACK.
// The same holds for a host that routes a VIP unchanged to a realserver that answers around it (a DR-shaped
// path without IPVS, engine/forward.ts): its FORWARD chain sees the client's half only.
import {formatIp, hostPrefix} from '../model/ip.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef} from './engine/host.js'
import {acceptedBy, describeReplay, forwardIn, guessesOf, ipvsKnobs, params, requestIn, requestOut, type Replay} from './engine/flows.js'
import {statelessFix, type Blocked} from './engine/stateful.js'
import {describeService, vipSelector, type LbService, type World} from './engine/world.js'
import {describeForward, type ForwardPath} from './engine/forward.js'
import type {FlowPacket} from './engine/ctmodel.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dr-stateful-filter',
  title: 'stateful filtering of a DR/TUN service on the director',
  severity: 'error',
  description:
    'An LVS-DR/TUN director sees only the client-to-server half of each connection. Its conntrack never reaches ESTABLISHED for these flows: every FIN (and, depending on net.ipv4.vs.conntrack and nf_conntrack_tcp_loose, every ACK) is INVALID. A service accepted only with --state NEW or --syn, or a ruleset that drops INVALID, lets the SYN in and drops the rest of the connection. A host that forwards a VIP unchanged (a route or a policy route) to a realserver that answers around it is in the same place: its FORWARD chain sees the client\'s packets only, and the client\'s ACK in SYN_SENT is INVALID.',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.1, 29.5, 29.16)', '000_e07122559a47da1e.txt', 'net/netfilter/nf_conntrack_proto_tcp.c tcp_conntracks, tcp_new', 'include/net/ip_vs.h ip_vs_notrack'],
}

const LATER: readonly FlowPacket[] = ['ACK', 'DATA', 'FIN']

/** What the client sees, from the first packet the director drops. */
function consequence(kinds: readonly FlowPacket[]): string {
  if (kinds.includes('SYN')) return 'No connection opens: IPVS schedules the SYN, but it is dropped on its way to the realserver (ipvsadm -Lnc: SYN_RECV).'
  if (kinds.includes('ACK') || kinds.includes('DATA')) return 'The client completes its handshake (the SYN/ACK comes from the realserver directly), then hangs: its request never reaches the realserver.'
  return 'Connections are never closed through the director: ipvsadm shows ActiveConn growing, clients retransmit their FIN (LVS-HOWTO 29.16).'
}

function onService(svc: LbService, w: World): RuleFinding | undefined {
  const h = svc.host
  const fw = h.fw
  if (!fw) return undefined
  const k = ipvsKnobs(h)
  const drs = svc.backends.filter((b) => b.method === 'route' || b.method === 'tunnel')
  for (const probe of svc.probes) {
    const p = params(k, drs[0]!.method === 'tunnel' ? 'tunnel' : 'route', svc.proto)
    const syn = requestIn(svc, w, probe, 'SYN', p)
    if (syn.result.blocked) continue // filter-blocks-vip
    const blocked: Blocked[] = []
    const later = svc.proto === 'tcp' ? LATER : (['DATA'] as const)
    for (const kind of later) {
      const r = requestIn(svc, w, probe, kind, p)
      if (r.result.blocked) blocked.push({replay: r, decision: r.result.blocked.decision, selector: vipSelector(svc)})
    }
    // after IPVS: the forwarded packets pass LOCAL_OUT (ip_vs_send_or_cont); one destination per method
    const outs: Replay[] = []
    for (const b of [drs.find((x) => x.method === 'route'), drs.find((x) => x.method === 'tunnel')]) {
      if (!b) continue
      const bp = params(k, b.method === 'tunnel' ? 'tunnel' : 'route', svc.proto)
      const synOut = requestOut(svc, probe, b, 'SYN', bp)
      for (const kind of ['SYN', ...later] as FlowPacket[]) {
        const r = kind === 'SYN' ? synOut : requestOut(svc, probe, b, kind, bp)
        if (!r.result.blocked) continue
        outs.push(r)
        const sel = b.method === 'tunnel' ? {dst: {family: b.ip.family, value: b.ip.value, len: b.ip.family === 4 ? 32 : 128}} : vipSelector(svc)
        blocked.push({replay: r, decision: r.result.blocked.decision, selector: sel})
      }
    }
    if (blocked.length === 0) continue
    const accepting = acceptedBy(syn, 'INPUT')
    const lines = blocked.map((b) => `  ${b.replay.place === 'ipvs-out' ? 'after IPVS, ' : ''}${describeReplay(b.replay)}`)
    const why = k.vsConntrack
      ? 'with net.ipv4.vs.conntrack=1 the entry stays SYN_SENT, as the SYN/ACK never passes the director, so every later client packet is INVALID'
      : `with net.ipv4.vs.conntrack=0 IPVS drops the entry of each packet, so each packet meets conntrack afresh: a FIN is INVALID${k.tcpLoose ? '' : ', and with nf_conntrack_tcp_loose=0 so is every ACK'}`
    const guesses = guessesOf(blocked.map((b) => b.replay))
    return finding(meta, h.name, {
      severity: guesses.length || blocked.some((b) => b.decision.assumed) ? 'info' : undefined,
      message:
        `${h.name} forwards ${describeService(svc)} by ${drs[0]!.method === 'route' ? 'direct routing' : 'tunnelling'} to ${drs.map((b) => formatIp(b.ip)).join(', ')} and never sees the replies, so its conntrack never reaches ESTABLISHED for these connections (${why}).\n` +
        `The SYN ${accepting ? `is accepted by ${locRef(accepting.loc)}` : 'passes INPUT'}, but:\n${lines.join('\n')}\n` +
        consequence(blocked.map((b) => b.replay.kind)),
      evidence: [ev(svc.loc), ...drs.slice(0, 1).map((b) => ev(b.loc)), ...(accepting ? [ev(accepting.loc)] : []), ...blocked.map((b) => ev(b.decision.loc)), ...k.evidence],
      unverified: [...k.defaults, ...guesses, ...blocked.filter((b) => b.decision.assumed).map((b) => `${locRef(b.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
      fix: {
        summary: 'accept the service statelessly (match VIP, protocol and port without --state/--syn), as LVS-HOWTO 29.16 does',
        ops: statelessFix(fw, accepting, blocked),
      },
    })
  }
  return undefined
}

/** A forwarded DR-shaped path whose replies provably bypass the forwarding host. */
function onForward(fp: ForwardPath): RuleFinding | undefined {
  const h = fp.host
  const fw = h.fw
  if (!fw || fp.ret.kind !== 'around') return undefined
  const syn = forwardIn(fp, 'SYN')
  if (syn.result.blocked) return undefined // the path is closed on purpose, or filter-blocks-vip territory
  const blocked: Blocked[] = []
  const sel = {dst: hostPrefix(fp.vip), proto: fp.proto, dport: fp.port}
  for (const kind of fp.proto === 'tcp' ? LATER : (['DATA'] as const)) {
    const r = forwardIn(fp, kind)
    if (r.result.blocked && r.result.blocked.hook.hook === 'FORWARD') blocked.push({replay: r, decision: r.result.blocked.decision, selector: sel})
  }
  if (blocked.length === 0) return undefined
  const accepting = acceptedBy(syn, 'FORWARD')
  const guesses = guessesOf(blocked.map((b) => b.replay))
  const assumed = blocked.filter((b) => b.decision.assumed)
  return finding(meta, h.name, {
    severity: guesses.length || assumed.length ? 'info' : undefined,
    message:
      `${describeForward(fp)}: ${h.name} forwards the client's packets without NAT, but ${fp.ret.reason}. ${h.name} sees only the client's half of each connection, so its conntrack never sees the SYN/ACK: the entry stays SYN_SENT and the client's ACK, request and FIN are INVALID (nf_conntrack_proto_tcp.c: an ORIGINAL ACK in SYN_SENT is sIV).\n` +
      `The SYN ${accepting ? `is accepted by ${locRef(accepting.loc)}` : 'passes FORWARD'}, but:\n${blocked.map((b) => `  ${describeReplay(b.replay)}`).join('\n')}\n` +
      `The client completes its handshake (the SYN/ACK comes around ${h.name}) and then hangs: nothing it sends after the SYN reaches the server.`,
    evidence: [...fp.routeEvidence, ev(fp.vipLoc, fp.realserver.name), ...fp.ret.evidence, ...(accepting ? [ev(accepting.loc)] : []), ...blocked.map((b) => ev(b.decision.loc))],
    unverified: [...guesses, ...assumed.map((b) => `${locRef(b.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
    fix: {
      summary: `accept the flow statelessly in FORWARD (match ${formatIp(fp.vip)}, protocol and port without --state/--syn), as LVS-HOWTO 29.16 does for DR directors`,
      ops: statelessFix(fw, accepting, blocked),
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    if (svc.kind !== 'ipvs' || !svc.backends.some((b) => b.method === 'route' || b.method === 'tunnel')) continue
    const f = onService(svc, w)
    if (f) out.push(f)
  }
  for (const fp of w.forwards) {
    const f = onForward(fp)
    if (f) out.push(f)
  }
  return out
})
