// `trace` without argv: replays one whole connection through the embedded dataplane and judges it the way
// the client would (did it get a SYN/ACK of its own connection, the response, a clean close).
import {formatEndpoint, formatIp, ipEquals, parseIp, type Endpoint, type IpAddr} from '../model/ip.js'
import type {HostSnapshot} from '../model/snapshot.js'
import {hostModel, type HostModel} from '../dataplane/host.js'
import {effectiveMethod, ipvsMethodWord} from '../dataplane/ipvs.js'
import {PROTO, formatPacket, tcpFlags, type Packet} from '../dataplane/packet.js'
import {World, type Arrival, type Hop, type Journey, type TraceStep} from '../dataplane/simulate.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {routeLookup, selectSource} from '../dataplane/routing.js'

/** The default client when --client is not given (TEST-NET-3, documentation range), and its port. */
export const DEFAULT_CLIENT = '203.0.113.10'
export const DEFAULT_CLIENT_PORT = 40000

export interface TraceOptions {
  readonly vip: Endpoint
  readonly proto: 'tcp' | 'udp'
  readonly client?: IpAddr
  readonly clientPort?: number
  /** seconds; the replay's clock starts here (packets 10 ms apart) */
  readonly start?: number
}

export interface PacketTrace {
  readonly n: number
  readonly label: string
  readonly from: 'client' | 'server'
  readonly delivered: boolean
  readonly steps: readonly TraceStep[]
  readonly hops: readonly Hop[]
  /** why this packet did not reach its peer, in plain words */
  readonly problem?: string
  /** the host (or 'client') where it stopped */
  readonly stoppedAt?: string
}

export interface FirstFailure {
  readonly packet: number
  readonly host: string
  readonly hook: string
  readonly chain: string
  readonly rule: {readonly file: string; readonly line: number; readonly text?: string} | null
  readonly reason: string
}

export interface TraceResult {
  readonly flow: {readonly client: string; readonly service: string; readonly proto: 'tcp' | 'udp'}
  readonly connection: {readonly connected: boolean; readonly reply: boolean; readonly closed: boolean}
  readonly packets: readonly PacketTrace[]
  readonly firstFailure: FirstFailure | null
  readonly assumptions: readonly string[]
  /** host names, for the diagram: client, then the hosts in the order packets met them */
  readonly hosts: readonly string[]
  /** the host the client's packets originate on, when the client address belongs to one */
  readonly clientHost?: string
  /** the IPVS connection entries of the replayed flow at the end, per director (ipvsadm -Lnc's view) */
  readonly ipvs: readonly IpvsConnectionView[]
}

export interface IpvsConnectionView {
  readonly host: string
  readonly client: string
  readonly virtual: string
  readonly dest: string
  readonly method: string
  /** IPVS's own state (ip_vs_proto_tcp.c), e.g. ESTABLISHED, FIN_WAIT, TIME_WAIT */
  readonly state: string
  /** seconds left */
  readonly expiresIn: number
}

interface Spec {
  readonly label: string
  readonly from: 'client' | 'server'
  readonly flags?: string
  readonly payload?: number
}

const TCP_EXCHANGE: readonly Spec[] = [
  {label: 'SYN', from: 'client', flags: 'S'},
  {label: 'SYN/ACK', from: 'server', flags: 'SA'},
  {label: 'ACK', from: 'client', flags: 'A'},
  {label: 'request', from: 'client', flags: 'PA', payload: 100},
  {label: 'response', from: 'server', flags: 'PA', payload: 200},
  {label: 'FIN', from: 'client', flags: 'FA'},
  {label: 'FIN/ACK', from: 'server', flags: 'FA'},
  {label: 'last ACK', from: 'client', flags: 'A'},
]

const UDP_EXCHANGE: readonly Spec[] = [
  {label: 'request', from: 'client', payload: 100},
  {label: 'response', from: 'server', payload: 200},
]

type Server =
  /** replyFrom: a UDP server bound to a wildcard answers from the source its route chooses, not `local` */
  | {kind: 'host'; host: HostModel; local: Endpoint; remote: Endpoint; replyFrom?: IpAddr; unboundSource?: boolean}
  /** direct: an outside LVS-DR realserver (asked at the VIP itself) that answers the client without the snapshots */
  | {kind: 'external'; via: HostModel; dev?: string; local: Endpoint; remote: Endpoint; direct?: boolean}

/** Replays the connection over the hosts (each trace builds fresh conntrack and IPVS state). */
export function traceConnection(snaps: readonly HostSnapshot[], o: TraceOptions): TraceResult {
  const hosts = snaps.map(hostModel)
  const client: Endpoint = {ip: o.client ?? parseIp(DEFAULT_CLIENT)!, port: o.clientPort ?? DEFAULT_CLIENT_PORT}
  const world = new World(hosts, {client: client.ip, service: o.vip.ip})
  const proto = o.proto === 'tcp' ? PROTO.tcp : PROTO.udp
  const specs = o.proto === 'tcp' ? TCP_EXCHANGE : UDP_EXCHANGE
  const assumptions: string[] = []
  for (const h of hosts) assumptions.push(...h.assumptions)
  if (!o.client) assumptions.push(`client ${formatIp(client.ip)}:${client.port} (the default, an outside host; give --client to change it)`)
  const packets: PacketTrace[] = []
  const ok = new Map<string, boolean>()
  let server: Server | undefined
  let firstFailure: FirstFailure | null = null
  let ackReset = false
  let t = o.start ?? 1000
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!
    t += 0.01
    const base = {family: client.ip.family, proto, flags: s.flags ? tcpFlags(s.flags) : undefined, payload: s.payload, mark: 0}
    let journey: Journey
    let problem: string | undefined
    let problemAt: string | undefined
    if (s.from === 'client') {
      const p: Packet = {...base, src: client.ip, sport: client.port, dst: o.vip.ip, dport: o.vip.port}
      journey = world.sendFromClient(p, t)
      if (!journey.failure) {
        const a = journey.arrival!
        if (!server) {
          const r = serverFrom(a, journey.steps, o.vip)
          if ('problem' in r) {
            problem = r.problem
            problemAt = a.kind === 'host' ? a.host.name : a.kind === 'external' ? a.via.name : (world.clientHost?.name ?? 'client')
          } else {
            server = r.server
            if (r.assumption) assumptions.push(r.assumption)
          }
        } else {
          problem = checkAtServer(a, server)
          problemAt = a.kind === 'host' ? a.host.name : a.kind === 'external' ? a.via.name : (world.clientHost?.name ?? 'client')
        }
      }
    } else {
      if (!server) break
      const p: Packet = {...base, src: (server.kind === 'host' ? server.replyFrom : undefined) ?? server.local.ip, sport: server.local.port, dst: server.remote.ip, dport: server.remote.port}
      journey =
        server.kind === 'external' && server.direct && !world.clientHost
          ? {steps: [], hops: [{from: formatIp(server.local.ip), to: 'client', packet: formatPacket(p)}], arrival: {kind: 'client', packet: p}, assumptions: []}
          : world.sendFromServer(p, server.kind === 'host' ? {kind: 'host', host: server.host, unboundSource: server.unboundSource} : {kind: 'external', via: server.via, dev: server.dev}, t)
      if (!journey.failure) {
        const a = journey.arrival!
        problem = checkAtClient(a, world, client, o.vip)
        problemAt = a.kind === 'host' ? a.host.name : a.kind === 'client' ? (world.clientHost?.name ?? 'client') : a.via.name
      }
    }
    for (const a of journey.assumptions) if (!assumptions.includes(a)) assumptions.push(a)
    const delivered = !journey.failure && !problem
    const stoppedAt = delivered ? undefined : (journey.failure?.host ?? problemAt)
    // the handshake ACK answered with a TCP reset (REJECT --reject-with tcp-reset): the client's connection, open
    // since the SYN/ACK, is reset at once. A connect() not yet woken by the SYN/ACK returns ECONNRESET (what the
    // kernel suite's namespaces show), a later one gets it on the first read or write: not a connection either way
    if (o.proto === 'tcp' && s.label === 'ACK' && journey.failure?.reset) {
      ackReset = true
      assumptions.push(`the TCP reset ${journey.failure.host} answers the handshake ACK with is assumed to reach the client (trace does not replay it)`)
    }
    const why = journey.failure ? journey.failure.reason + (ackReset ? "; the TCP reset it sends back resets the client's connection as soon as it opens" : '') : problem
    packets.push({n: i + 1, label: s.label, from: s.from, delivered, steps: journey.steps, hops: journey.hops, problem: why, stoppedAt})
    ok.set(s.label, delivered)
    if (!delivered) {
      const f = journey.failure
      firstFailure = f
        ? {packet: i + 1, host: f.host, hook: f.hook, chain: f.chain, rule: f.rule ? {file: f.rule.file, line: f.rule.line, text: f.rule.text} : null, reason: why!}
        : {packet: i + 1, host: stoppedAt ?? 'client', hook: 'SOCKET', chain: '', rule: null, reason: problem!}
      break
    }
  }
  const connected = o.proto === 'tcp' ? ok.get('SYN/ACK') === true && !ackReset : ok.get('response') === true
  const reply = ok.get('response') === true
  const closed = o.proto === 'tcp' ? ['FIN', 'FIN/ACK', 'last ACK'].every((l) => ok.get(l) === true) : reply
  const ipvs: IpvsConnectionView[] = []
  for (const h of hosts) {
    for (const c of h.ipvs?.connections(t) ?? []) {
      if (!ipEquals(c.caddr, client.ip) || c.cport !== client.port) continue
      ipvs.push({
        host: h.name,
        client: formatEndpoint({ip: c.caddr, port: c.cport}),
        virtual: formatEndpoint({ip: c.vaddr, port: c.vport}),
        dest: formatEndpoint({ip: c.daddr, port: c.dport}),
        method: ipvsMethodWord(effectiveMethod(c.service, c.dest)),
        state: c.state,
        expiresIn: Math.round(c.expires - t),
      })
    }
  }
  const order: string[] = ['client']
  if (world.clientHost) order.push(world.clientHost.name)
  for (const p of packets) for (const h of p.hops) for (const n of [h.from, h.to]) if (!order.includes(n)) order.push(n)
  return {
    flow: {client: formatEndpoint(client), service: formatEndpoint(o.vip), proto: o.proto},
    connection: {connected, reply, closed},
    packets,
    firstFailure,
    assumptions,
    hosts: order,
    clientHost: world.clientHost?.name,
    ipvs,
  }
}

function serverFrom(a: Arrival, steps: readonly TraceStep[], vip: Endpoint): {server: Server; assumption?: string} | {problem: string} {
  const local = {ip: a.packet.dst, port: a.packet.dport ?? 0}
  const remote = {ip: a.packet.src, port: a.packet.sport ?? 0}
  if (a.kind === 'client') return {problem: 'the first packet came back to the client instead of reaching a server'}
  const gate = a.kind === 'external' && !a.packet.inner && ipEquals(a.packet.dst, vip.ip) ? steps.find((x) => x.host === a.via.name && /^GATE\b/.test(x.verdict)) : undefined
  if (a.kind === 'external' && gate) {
    const rs = /^GATE -> (\S+)/.exec(gate.verdict)?.[1] ?? formatIp(a.addr)
    // IPVS direct routing to a realserver outside the snapshots: it holds the VIP and answers the client itself;
    // its answers never come back through the director
    return {
      server: {kind: 'external', via: a.via, dev: a.dev, local, remote, direct: true},
      assumption: `the realserver ${rs} (not among the snapshots) receives the packets still addressed to ${formatEndpoint(local)} (LVS-DR): assumed to hold ${formatIp(local.ip)}, to listen, and to answer the client directly, not through ${a.via.name} (give its snapshot to check its side)`,
    }
  }
  if (a.kind === 'external') {
    return {
      server: {kind: 'external', via: a.via, dev: a.dev, local, remote},
      assumption: `${formatEndpoint(local)} is not among the snapshots: assumed to listen and to send its replies back through ${a.via.name}${a.dev ? ` (${a.dev})` : ''}`,
    }
  }
  const h = a.host
  const ipvsMissed = h.ipvs?.findService(a.packet) ? 'IPVS did not take it, and ' : ''
  // the listening sockets, when the snapshot has them (ss-ltnu.txt): what the kernel's socket lookup finds
  const listeners = h.snap.listeners
  const proto = PROTO_NAMES[a.packet.proto]
  if (listeners && proto) {
    const l = listenerFor(listeners, proto, local.ip, local.port, a.iif)
    if (l) {
      // UDP has no accepted socket: a server bound to a wildcard answers from the source address the kernel picks
      // for its route back (inet_select_addr), which is not the VIP a DR realserver was asked at
      const from = proto === 'udp' && !l.addr ? udpSourceFor(h, remote.ip) : undefined
      // its answers are routed with no source address (saddr 0): `ip rule from ...` does not apply to them
      const unbound = proto === 'udp' && !l.addr ? {unboundSource: true} : {}
      if (from && !ipEquals(from, local.ip)) {
        return {
          server: {kind: 'host', host: h, local, remote, replyFrom: from, ...unbound},
          assumption: `${h.name}'s UDP socket ${l.loc.file}:${l.loc.line} (${l.loc.text.trim().replace(/\s+/g, ' ')}) is bound to a wildcard: it answers from ${formatIp(from)}, the source its route to ${formatIp(remote.ip)} chooses, not from ${formatIp(local.ip)} the request was sent to (a server that reads the request's destination, IP_PKTINFO, as BIND and dnsmasq do, answers from ${formatIp(local.ip)}; binding it to ${formatIp(local.ip)} makes sure)`,
        }
      }
      return {server: {kind: 'host', host: h, local, remote, ...unbound}}
    }
    const bound = listeners.filter((x) => x.proto === proto && x.port === local.port)
    const near = bound.length ? ` (${bound.map((x) => `${x.loc.file}:${x.loc.line} ${x.loc.text.trim().replace(/\s+/g, ' ')}`).join('; ')}${a.iif ? `: not for ${formatIp(local.ip)} arriving on ${a.iif}` : ''})` : ''
    const answer = proto === 'tcp' ? 'the kernel answers the SYN with a TCP reset' : proto === 'udp' ? 'the kernel answers with ICMP port unreachable' : 'the kernel refuses it'
    return {problem: `the packet was delivered to ${h.name}'s own stack at ${formatEndpoint(local)}: ${ipvsMissed}nothing listens there on ${proto.toUpperCase()} port ${local.port}${near}; ${answer}`}
  }
  if (ipvsMissed) {
    return {problem: `the packet was delivered to ${h.name}'s own stack at ${formatEndpoint(local)}: IPVS did not take it, and nothing is known to listen there`}
  }
  // the host's own NAT sent the connection to its own stack (REDIRECT, DNAT to a local address): meant to be served here
  const natHere = steps.some((s) => s.host === h.name && /^(DNAT|REDIRECT|dnat|redirect)\b/.test(s.verdict))
  // IPVS scheduled the connection to one of the host's own addresses (a local destination)
  const ipvsHere = steps.some((s) => s.host === h.name && s.table === 'ipvs' && / -> /.test(s.verdict))
  if (ipvsHere) {
    return {server: {kind: 'host', host: h, local, remote}, assumption: `${h.name} is assumed to listen on ${formatEndpoint(local)}, where IPVS sent the connection (a destination that is its own address; listening sockets are not in the snapshot: ss -Hltnu > ss-ltnu.txt)`}
  }
  if (natHere) {
    return {server: {kind: 'host', host: h, local, remote}, assumption: `${h.name} is assumed to listen on ${formatEndpoint(local)}, where its own DNAT/REDIRECT sent the connection (listening sockets are not in the snapshot: ss -Hltnu > ss-ltnu.txt)`}
  }
  if (h.role === 'director' || h.role === 'router') {
    return {problem: `the packet was delivered to ${h.name}'s own stack at ${formatEndpoint(local)} (a ${h.role}): no DNAT or IPVS sent it on, and nothing is known to listen there (listening sockets are not in the snapshot: ss -Hltnu > ss-ltnu.txt)`}
  }
  const from = a.packet.proto === 17 ? udpSourceFor(h, remote.ip) : undefined
  const udpNote = from && !ipEquals(from, local.ip) ? `, and to answer from ${formatIp(local.ip)} (a UDP server bound to 0.0.0.0 would answer from ${formatIp(from)}, its route's source, unless it reads the request's destination: bind it to ${formatIp(local.ip)})` : ''
  return {server: {kind: 'host', host: h, local, remote}, assumption: `${h.name} is assumed to listen on ${formatEndpoint(local)}${udpNote} (listening sockets are not in the snapshot: ss -Hltnu > ss-ltnu.txt)`}
}

/** The source address of a locally sent packet to `dst` (no bound address): what a wildcard UDP socket answers from. */
function udpSourceFor(h: HostModel, dst: IpAddr): IpAddr | undefined {
  return selectSource(h.routing, routeLookup(h.routing, {dst}), dst)
}

const PROTO_NAMES: Readonly<Record<number, 'tcp' | 'udp' | 'sctp'>> = {6: 'tcp', 17: 'udp', 132: 'sctp'}

function sameEp(ip: IpAddr, port: number | undefined, e: Endpoint): boolean {
  return ipEquals(ip, e.ip) && (port ?? 0) === e.port
}

function checkAtServer(a: Arrival, s: Server): string | undefined {
  const p = a.packet
  const where = a.kind === 'host' ? a.host.name : a.kind === 'external' ? formatIp(a.addr) : 'the client'
  const here = s.kind === 'host' ? a.kind === 'host' && a.host === s.host : a.kind === 'external' && ipEquals(a.addr, s.local.ip)
  if (here && sameEp(p.dst, p.dport, s.local) && sameEp(p.src, p.sport, s.remote)) return undefined
  return `it arrived at ${where} as ${formatEndpoint({ip: p.src, port: p.sport ?? 0})} > ${formatEndpoint({ip: p.dst, port: p.dport ?? 0})}, which is not the server's connection (${formatEndpoint(s.remote)} > ${formatEndpoint(s.local)})`
}

function checkAtClient(a: Arrival, world: World, client: Endpoint, vip: Endpoint): string | undefined {
  const p = a.packet
  const atClient = a.kind === 'client' || (a.kind === 'host' && a.host === world.clientHost)
  if (!atClient) {
    const where = a.kind === 'host' ? `${a.host.name}'s own stack` : a.kind === 'external' ? `${formatIp(a.addr)}, outside the snapshots` : '?'
    return `the reply went to ${where} instead of the client ${formatIp(client.ip)}`
  }
  if (sameEp(p.src, p.sport, vip) && sameEp(p.dst, p.dport, client)) return undefined
  const from = formatEndpoint({ip: p.src, port: p.sport ?? 0})
  if (p.proto === 17) {
    return `the reply reached the client from ${from}, but the client asked ${formatEndpoint(vip)}: a connected UDP socket (and a resolver checking the answer's source) drops it, and the client times out (the reply was not un-NATed, or the server answered from another address)`
  }
  return `the reply reached the client from ${from}, but the client's connection is to ${formatEndpoint(vip)}: it matches no socket and the client answers with a RST (the reply was not un-NATed: it did not return through the host that translated it)`
}

/** The JSON of the contract (ARCHITECTURE.md, `trace --json`). */
export function traceToJson(r: TraceResult): Record<string, unknown> {
  return {
    flow: r.flow,
    connection: r.connection,
    packets: r.packets.map((p) => ({
      n: p.n,
      label: p.label,
      from: p.from,
      delivered: p.delivered,
      steps: p.steps.map((s) => ({
        host: s.host,
        hook: s.hook,
        table: s.table,
        chain: s.chain,
        rule: s.rule ? {file: s.rule.file, line: s.rule.line} : null,
        verdict: s.verdict,
        ct: s.ct,
        packet: s.packet,
      })),
    })),
    firstFailure: r.firstFailure ? {...r.firstFailure, rule: r.firstFailure.rule ? {file: r.firstFailure.rule.file, line: r.firstFailure.rule.line} : null} : null,
    assumptions: r.assumptions,
  }
}

export function connectionOk(r: TraceResult): boolean {
  return r.connection.connected && r.connection.reply && r.connection.closed
}
