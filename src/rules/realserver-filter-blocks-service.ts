// realserver-filter-blocks-service: the balancer delivers a client's connection to a realserver (a DNAT or
// LVS-NAT backend, an LVS-DR realserver, the realserver of a DR-shaped route), and the realserver's own
// firewall drops it: filter INPUT (with raw/mangle/nat PREROUTING) meets the request packets as they arrive
// (the backend's address, or the VIP for DR; the client's address, or the balancer's when it masquerades),
// filter OUTPUT (with POSTROUTING) meets the server's replies. The director's chains are the other rules'.
import {formatEndpoint, formatIp, formatPrefix, hostPrefix, ipEquals, prefixContains, type IpAddr} from '../model/ip.js'
import type {IptRule} from '../model/iptables.js'
import type {Evidence} from '../model/finding.js'
import type {Packet} from '../dataplane/packet.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {describeReplay, guessesOf, type Replay} from './engine/flows.js'
import {received, sent} from './engine/path.js'
import {ctMarkAfter} from './engine/connmark.js'
import {flowPacket, type Endpoints, type L4} from './engine/packets.js'
import {describeForward, type ForwardPath} from './engine/forward.js'
import {returnRoute} from './engine/returnpath.js'
import {arrivalOf} from './engine/arrival.js'
import {CLIENT_PACKETS, SERVER_PACKETS, PACKET_ORDER, type FlowPacket} from './engine/ctmodel.js'
import type {Decision, PacketSelector} from './engine/firewall.js'
import {acceptBeforeFirst} from './engine/stateful.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {natSource} from './engine/nat-source.js'
import {clientIifOf, describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'realserver-filter-blocks-service',
  title: "the realserver's firewall drops the balanced connections",
  severity: 'error',
  description:
    "A realserver is an ordinary endpoint for the connections the balancer hands it: the request packets meet its filter INPUT (after raw/mangle/nat PREROUTING) addressed to the backend's address (the VIP for LVS-DR and DR-shaped routes) and coming from the client's address (or the balancer's, when it masquerades); its answers meet filter OUTPUT. An INPUT chain that does not accept the service's port or the clients' addresses, or accepts only NEW packets under a DROP policy, or an OUTPUT chain with a DROP policy and no accept for the replies, ends every connection on the realserver however well the director is set up.",
  sources: [
    '002_470e9850247cd7a0.txt (LVS-HOWTO 29.14: the realservers\' own firewall rules)',
    '001_99dd2e38bf121ee9.txt (DNAT mode: the backends see the clients\' addresses; NAT mode: the balancer\'s)',
    'net/ipv4/netfilter/iptable_filter.c (filter at LOCAL_IN and LOCAL_OUT)',
    'iptables(8) (a chain policy applies to packets no rule decided)',
  ],
}

const REQUEST = CLIENT_PACKETS
const REPLY = SERVER_PACKETS
const ORDER = PACKET_ORDER

/** One way a balanced connection reaches a realserver: the request as the realserver receives it. */
interface Leg {
  readonly rs: HostView
  readonly e: Endpoints
  /** where the request arrives on the realserver */
  readonly iif: string
  /** "10.1.0.10:8080 is a realserver of TCP 198.51.100.100:80 (DNAT) on lb" */
  readonly what: string
  /** the balancer masquerades the connection: the realserver sees its address as the source */
  readonly snat?: {readonly host: string; readonly decision: Decision}
  /** the source is the balancer's address once nat-reply-bypasses-director's masquerade applies */
  readonly masquerade?: string
  /** the balancer's own stack serves it (a DNAT to a local address, a REDIRECT): its INPUT for the SYN is filter-blocks-vip's */
  readonly local?: boolean
  /** a flow asked about that the host serves on its own stack (no balancer between): the finding says so in its title */
  readonly own?: boolean
  readonly evidence: readonly Evidence[]
}

interface Blocked {
  readonly replay: Replay
  readonly decision: Decision
  readonly side: 'in' | 'out'
}

/** The source of a routed VIP's packets as they leave the forwarding host: its SNAT/MASQUERADE's, else the client's. */
function forwardSource(fp: ForwardPath, w: World): {ip: IpAddr; decision?: Decision} {
  const client = {ip: w.client.ip}
  const h = fp.host
  if (!h.fw) return client
  const r = received(h, fp.probe, {state: 'NEW', iif: fp.iif, local: false})
  const nat = r.blocked ? undefined : r.hooks.find((x) => x.hook === 'POSTROUTING')?.nat
  if (!nat || (nat.kind !== 'SNAT' && nat.kind !== 'MASQUERADE')) return client
  const ip = (nat.kind === 'SNAT' ? nat.to?.ip : undefined) ?? h.sourceFor(fp.gateway)
  return ip ? {ip, decision: nat.decision} : client
}

function legs(w: World): Leg[] {
  const out: Leg[] = []
  const seen = new Set<string>()
  const add = (l: Leg) => {
    const k = `${l.rs.name}|${l.e.src.value}|${l.e.dst.value}|${l.e.dport}|${l.e.proto}`
    if (seen.has(k)) return
    seen.add(k)
    out.push(l)
  }
  for (const svc of w.services) {
    const probe = svc.probes[0]
    if (!probe || probe.dport === undefined) continue
    for (const b of svc.backends) {
      if (b.local && svc.kind === 'dnat' && b.share !== 0 && svc.host.fw) {
        // the host's own service behind its DNAT/REDIRECT: the requests meet its INPUT after the DNAT, its answers
        // meet its OUTPUT before the un-DNAT (nat POSTROUTING), from the translated address
        const dport = b.port || probe.dport
        add({
          rs: svc.host,
          e: {src: w.client.ip, sport: w.client.port, dst: b.ip, dport, proto: svc.proto},
          iif: svc.iif ?? clientIifOf(svc.host, w, probe.dst),
          what: `${formatEndpoint({ip: b.ip, port: dport})} on ${svc.host.name} is the local service of ${describeService(svc)} (${locRef(b.loc)})`,
          local: true,
          evidence: [ev(svc.loc, svc.host.name), ev(b.loc, svc.host.name)],
        })
        continue
      }
      const rs = b.owner
      // tunnels (IPIP) and backends no connection reaches (a 0% share of a DNAT cascade) are left out
      if (!rs || b.local || b.share === 0 || !rs.fw || !(b.method === 'masq' || b.method === 'dnat' || b.method === 'route')) continue
      const nat = b.method !== 'route'
      // DR: the realserver receives the VIP packet unchanged; it holds the VIP, or its own PREROUTING redirects the
      // packet to itself (the LVS-HOWTO's transparent-proxy realserver); otherwise dr-realserver-no-vip's
      if (!nat && !rs.isLocal(probe.dst)) {
        const r = received(rs, flowPacket({src: w.client.ip, sport: w.client.port, dst: probe.dst, dport: probe.dport, proto: svc.proto}, 'SYN'), {state: 'NEW', iif: rs.addressOf(b.ip)?.iface.name ?? UNKNOWN_IF})
        if (r.to !== 'local') continue
      }
      const src = nat ? natSource(svc, w, b) : {ip: w.client.ip}
      const dst = nat ? b.ip : probe.dst
      const dport = nat ? (b.port || probe.dport) : probe.dport
      const leg = {
        rs,
        e: {src: src.ip, sport: w.client.port, dst, dport, proto: svc.proto},
        iif: rs.addressOf(b.ip)?.iface.name ?? UNKNOWN_IF,
        what: `${describeBackend(b)} (${rs.name}) is a ${b.method === 'route' ? 'DR' : 'NAT'} realserver of ${describeService(svc)} on ${svc.host.name}`,
        snat: src.decision ? {host: svc.host.name, decision: src.decision} : undefined,
        evidence: [ev(svc.loc, svc.host.name), ev(b.loc, svc.host.name), ...(src.decision ? [ev(src.decision.loc, svc.host.name)] : [])],
      }
      add(leg)
      // replies that bypass the balancer: nat-reply-bypasses-director's fix masquerades the connection, and the
      // realserver then sees the balancer's address; its firewall must pass that too for the fixes to work together
      if (nat && !src.decision && returnRoute(w, svc.host, rs, b.ip).kind === 'around') {
        const masq = svc.host.sourceFor(b.ip)
        if (masq) add({...leg, e: {...leg.e, src: masq}, masquerade: svc.host.name})
      }
    }
  }
  for (const l of ownServiceLegs(w)) add(l)
  for (const fp of w.forwards) {
    // a client that is the realserver itself (check --vip --client one of its addresses) does not come through the
    // router, and a client host that routes the VIP to the realserver is no router: the flow is the realserver's own
    if (!fp.realserver.fw || w.client.fromSnapshot === fp.realserver || w.client.fromSnapshot === fp.host) continue
    // a port read off the router's rules (not asked about) that nothing listens on is no service of the realserver
    const ls = fp.realserver.snap.listeners
    if (!fp.hinted && ls && (fp.proto === 'tcp' || fp.proto === 'udp') && !listenerFor(ls, fp.proto, fp.vip, fp.port)) continue
    // the forwarding host may SNAT/masquerade what it routes (`oifname ... masquerade`): the realserver then sees
    // its address as the source (the kernel: random nft rn10-16, r's `ip saddr CLIENT tcp dport 80 accept` missed)
    const src = forwardSource(fp, w)
    add({
      rs: fp.realserver,
      e: {src: src.ip, sport: w.client.port, dst: fp.vip, dport: fp.port, proto: fp.proto},
      iif: fp.rsIif ?? UNKNOWN_IF,
      what: `${fp.realserver.name} serves ${describeForward(fp)}`,
      snat: src.decision ? {host: fp.host.name, decision: src.decision} : undefined,
      evidence: [...fp.routeEvidence.map((e) => ({...e, host: fp.host.name})), ev(fp.vipLoc), ...(src.decision ? [ev(src.decision.loc, fp.host.name)] : [])],
    })
  }
  return out
}

/**
 * The flows asked about (check --vip) that a host serves on its own stack: the client's packets arrive at the host
 * holding the VIP (arrival.ts), and neither a DNAT/REDIRECT of its own nor an IPVS service takes them (those are the
 * services' legs and filter-blocks-vip's). Its filter INPUT meets the requests, its OUTPUT the answers.
 */
function ownServiceLegs(w: World): Leg[] {
  const out: Leg[] = []
  for (const f of w.flows) {
    const a = arrivalOf(w, f)
    if (!a || !a.host.fw || a.host.isLocal(f.vip.ip) !== true) continue
    const h = a.host
    // a balancer's service of that address and port (also when the packet is dropped before its DNAT): the services' legs
    if (w.services.some((svc) => svc.host === h && svc.proto === f.proto && (svc.vip ? ipEquals(svc.vip, f.vip.ip) : svc.vipAssumed) && (svc.port === undefined || svc.port === f.vip.port))) continue
    const e: Endpoints = {src: a.client, sport: f.clientPort ?? w.client.port, dst: f.vip.ip, dport: f.vip.port, proto: f.proto}
    const first = received(h, flowPacket(e, 'SYN'), {state: 'NEW', iif: a.iif, local: true})
    const pre = first.hooks.find((x) => x.hook === 'PREROUTING')
    if (pre?.nat?.kind === 'DNAT' || pre?.nat?.kind === 'REDIRECT') continue
    const mark = pre?.packet.mark ?? 0
    const ipvs = (h.snap.ipvs?.services ?? []).some((s) => (s.fwmark !== undefined ? s.fwmark === mark && mark !== 0 : s.proto === f.proto && s.vip !== undefined && ipEquals(s.vip, f.vip.ip) && (s.port === f.vip.port || s.port === 0)))
    if (ipvs) continue
    const addr = h.addressOf(f.vip.ip)
    out.push({
      rs: h,
      e,
      iif: a.iif,
      own: true,
      what: `${formatEndpoint(f.vip)} is served by ${h.name}'s own stack (the flow asked about, from ${formatIp(a.client)}: ${a.how}, and ${h.name} holds ${formatIp(f.vip.ip)}${addr ? ` on ${addr.iface.name}` : ''})`,
      evidence: [...a.evidence, ...(addr ? [ev(addr.addr.loc, h.name)] : [])],
    })
  }
  return out
}

/** The connection's packets on the realserver: the requests through PREROUTING and INPUT, the replies through OUTPUT and POSTROUTING. */
function replay(l: Leg): {blocked: Blocked[]; synAccepted?: Decision; local: Packet} {
  const {rs, e} = l
  const blocked: Blocked[] = []
  const tcp = e.proto === 'tcp'
  const syn = flowPacket(e, 'SYN')
  const first = received(rs, syn, {state: 'NEW', iif: l.iif, local: true})
  // the realserver's own DNAT/REDIRECT (a port map in front of the daemon) applies to every packet of the connection
  const local = first.hooks.find((h) => h.hook === 'PREROUTING')?.packet ?? syn
  const inE: Endpoints = {...e, dst: local.dst, dport: local.dport ?? e.dport}
  const outE: Endpoints = {src: inE.dst, sport: inE.dport, dst: e.src, dport: e.sport, proto: e.proto}
  // the connection's mark, as its first packet left it: every later packet and the answers read it (engine/connmark.ts)
  const ctMark = ctMarkAfter(first)
  const kinds: FlowPacket[] = tcp ? [...REQUEST, ...REPLY] : ['SYN', 'RDATA']
  let synAccepted: Decision | undefined
  for (const kind of kinds) {
    const out = REPLY.includes(kind)
    const state = kind === 'SYN' ? 'NEW' : 'ESTABLISHED'
    let r: Replay
    if (kind === 'SYN') r = {kind, state, place: 'both-ways', result: first, packet: syn}
    else if (out) {
      const pkt = flowPacket(outE, kind)
      r = {kind, state, place: 'both-ways', result: sent(rs, pkt, {state, dir: 'REPLY', ctMark}), packet: pkt}
    } else {
      const pkt = flowPacket(inE, kind)
      r = {kind, state, place: 'both-ways', result: received(rs, pkt, {state, iif: l.iif, local: true, ctMark}), packet: pkt}
    }
    const b = r.result.blocked
    if (b) blocked.push({replay: r, decision: b.decision, side: out ? 'out' : 'in'})
    else if (kind === 'SYN') synAccepted = r.result.hooks.find((h) => h.hook === 'INPUT')?.runs.find((x) => x.table === 'filter')?.decision
  }
  return {blocked, synAccepted, local}
}

/**
 * An ACCEPT rule of the realserver's filter table for the service's port that admits other sources only: the usual
 * slip (a backend that trusts the balancer's network, while DNAT keeps the client's address).
 */
function acceptsOtherSources(rs: HostView, src: IpAddr, port: number): {rule: IptRule; from: string} | undefined {
  for (const set of rs.fw?.rulesets ?? []) {
    for (const c of set.tables.get('filter')?.chains.values() ?? []) {
      for (const r of c.rules) {
        if (r.target?.kind !== 'ACCEPT') continue
        const ports = r.matches.find((m) => m.kind === 'port' && !m.neg && (m.dir === 'dst' || m.dir === 'any'))
        if (ports?.kind !== 'port' || !ports.ranges.some(([lo, hi]) => port >= lo && port <= hi)) continue
        const from = r.matches.find((m) => m.kind === 'addr' && m.dir === 'src' && !m.neg)
        if (from?.kind === 'addr' && from.prefix.len > 0 && from.prefix.family === src.family && !prefixContains(from.prefix, src)) return {rule: r, from: formatPrefix(from.prefix)}
      }
    }
  }
  return undefined
}

/** What the client sees, from the first packet the realserver drops. */
function consequence(first: FlowPacket, rs: string): string {
  switch (first) {
    case 'SYN':
      return `No connection opens: the SYN dies on ${rs}.`
    case 'SYNACK':
      return `No connection opens: ${rs} accepts the SYN, but its SYN/ACK never leaves it.`
    case 'ACK':
    case 'DATA':
      return `The client completes the handshake and then hangs: its request never reaches the server on ${rs}.`
    case 'RDATA':
      return `The request reaches the server on ${rs}, but its response never leaves: the client times out.`
    default:
      return `Connections are never closed cleanly: ${rs} drops their FINs, and both ends retransmit until they time out.`
  }
}

function check(l: Leg, w: World): RuleFinding | undefined {
  const r = replay(l)
  const {synAccepted, local} = r
  // a local service whose SYN its INPUT drops: filter-blocks-vip names it, and its stateless accept covers the
  // other requests too; the answers dropped in OUTPUT are still this rule's
  const blocked = l.local && r.blocked.some((b) => b.replay.kind === 'SYN') ? r.blocked.filter((b) => b.side === 'out') : r.blocked
  if (blocked.length === 0) return undefined
  const rs = l.rs
  blocked.sort((a, b) => ORDER.indexOf(a.replay.kind) - ORDER.indexOf(b.replay.kind))
  const host = local.dst
  const port = local.dport ?? l.e.dport
  const sel = {
    in: {dst: hostPrefix(host), proto: l.e.proto, dport: port},
    out: {src: hostPrefix(host), proto: l.e.proto, sport: port},
  }
  const guesses = guessesOf(blocked.map((b) => b.replay))
  const assumed = blocked.filter((b) => b.decision.assumed)
  const src = formatEndpoint({ip: l.e.src, port: l.e.sport})
  const from = l.masquerade
    ? `${l.masquerade}'s address ${src} once the connection is masqueraded (nat-reply-bypasses-director: the replies bypass ${l.masquerade}, and its fix masquerades them)`
    : ipEquals(l.e.src, w.client.ip)
      ? `the client's address (e.g. ${src})`
      : `${l.snat!.host}'s address ${src} (${locRef(l.snat!.decision.loc)} masquerades them)`
  const sides = new Set(blocked.map((b) => b.side))
  const chains = [...new Set(blocked.map((b) => b.replay.result.blocked!.hook.hook))].join(' and ')
  const slip = sides.has('in') ? acceptsOtherSources(rs, l.e.src, port) : undefined
  return finding(meta, rs.name, {
    ...(l.own ? {title: "the host's firewall drops the connections to its own service"} : {}),
    severity: guesses.length || assumed.length ? 'info' : undefined,
    message:
      `${l.what}: the connection's packets reach ${rs.name} addressed to ${formatEndpoint({ip: host, port})} from ${from}, and ${rs.name}'s own firewall drops them (${chains}):\n` +
      blocked.map((b) => `  ${describeReplay(b.replay)}`).join('\n') +
      (synAccepted && !synAccepted.policy && blocked.every((b) => b.replay.kind !== 'SYN') ? `\nThe SYN is accepted (${locRef(synAccepted.loc)}), the rest of the connection is not.` : '') +
      (slip ? `\n${locRef(slip.rule.loc)} accepts port ${port} from ${slip.from} only; these packets come from ${formatIp(l.e.src)}.` : '') +
      `\n${consequence(blocked[0]!.replay.kind, rs.name)}`,
    evidence: [...l.evidence, ...(synAccepted && !synAccepted.policy ? [ev(synAccepted.loc)] : []), ...(slip ? [ev(slip.rule.loc)] : []), ...blocked.map((b) => ev(b.decision.loc))],
    unverified: [...guesses, ...assumed.map((b) => `${locRef(b.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
    fix: {
      summary:
        `on ${rs.name}, accept the service's packets statelessly before the rules that drop them: ` +
        [sides.has('in') ? `the requests to ${formatEndpoint({ip: host, port})}` : '', sides.has('out') ? `the replies from ${formatEndpoint({ip: host, port})}` : ''].filter(Boolean).join(' and ') +
        ' (every packet of the connection, whatever its conntrack state)',
      ops: acceptBeforeFirst(rs.fw!, blocked, sel),
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  // the fix matches the service's address and port, not the source: one finding per realserver and service
  // address (the client's leg before the one a masquerade fix would make)
  const reported = new Set<string>()
  for (const l of legs(w)) {
    const k = `${l.rs.name}|${l.e.dst.value}|${l.e.dport}|${l.e.proto}`
    if (reported.has(k)) continue
    const f = check(l, w)
    if (!f) continue
    reported.add(k)
    out.push(f)
  }
  return out
})
