// one-way-reply-snat: an LVS-DR/TUN realserver (or a realserver a router sends the VIP to) answers the client
// itself, from the VIP, by a way the requests did not come. A host on that way (a router, a NAT gateway, a
// firewall) that SNATs or MASQUERADEs what it forwards to the clients' side never saw the requests: its conntrack
// takes the answers for a new connection (UDP: every answer; TCP: the first packet after the SYN/ACK, picked up
// mid-stream with nf_conntrack_tcp_loose=1) and the nat table gives that connection a new source. The client then
// gets answers from the router's address instead of the VIP and drops them (a connected UDP socket, a resolver
// checking the source; TCP answers with a reset). NAT applies only to a connection's first packet, which is why it
// breaks only where the requests take another way (nf_nat_inet_fn: a new entry is looked up in the nat table).
import {formatEndpoint, formatIp, hostPrefix, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import type {FixOp} from './engine/fix.js'
import {where} from './engine/flows.js'
import {routeEvidence} from '../dataplane/routing.js'
import {customRule, finding} from './engine/helpers.js'
import {answerSource, ev, type HostView} from './engine/host.js'
import {flowPacket, type L4} from './engine/packets.js'
import {received} from './engine/path.js'
import {isDefaultRule} from './engine/returnpath.js'
import {describeService} from './engine/world.js'
import {describeForward} from './engine/forward.js'
import type {World} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'one-way-reply-snat',
  title: 'a router that never sees the requests of a DR/routed service SNATs or drops their direct answers',
  severity: 'error',
  description:
    "In LVS-DR, LVS-TUN and routed-VIP setups the realserver answers the client itself, from the VIP, and the answers may take another way than the requests. A router on the answers' way that SNATs or MASQUERADEs traffic toward the clients never saw the requests: its conntrack takes the answers for a new connection (every UDP answer; for TCP the first packet after the SYN/ACK, picked up mid-stream) and rewrites their source to its own address. The client drops answers that do not come from the VIP. Likewise a stateful router drops them: the SYN/ACK is INVALID there, and the later answers are NEW without being SYNs (or INVALID). Exempt the VIP's answers from that NAT rule and accept them before the state rules, or let the requests pass the same router.",
  sources: [
    'net/netfilter/nf_nat_core.c nf_nat_inet_fn (the nat table is consulted for the first packet of a new conntrack entry only)',
    'net/netfilter/nf_conntrack_proto_tcp.c (nf_conntrack_tcp_loose: a mid-stream packet starts a new entry)',
    'test/kernel/random-udp.kernel.test.ts (LVS-DR-shaped UDP with MASQUERADE on the router: the kernel delivered the answer from the router\'s address; check was silent)',
  ],
}

interface Direct {
  readonly director: HostView
  readonly rs: HostView
  readonly vip: IpAddr
  readonly port: number
  readonly proto: L4
  readonly what: string
  readonly evidence: readonly Evidence[]
}

/** The services whose realservers answer the client themselves, from the VIP. */
function directServices(w: World): Direct[] {
  const out: Direct[] = []
  for (const svc of w.services) {
    const probe = svc.probes[0]
    if (svc.kind !== 'ipvs' || !probe || probe.dport === undefined) continue
    for (const b of svc.backends) {
      if (!b.owner || b.local || (b.method !== 'route' && b.method !== 'tunnel') || b.weight === 0 || b.owner.isLocal(probe.dst) !== true) continue
      out.push({director: svc.host, rs: b.owner, vip: probe.dst, port: probe.dport, proto: svc.proto, what: `${describeService(svc)} on ${svc.host.name}`, evidence: [ev(svc.loc, svc.host.name), ev(b.loc, svc.host.name)]})
    }
  }
  for (const f of w.forwards) {
    out.push({director: f.host, rs: f.realserver, vip: f.vip, port: f.port, proto: f.proto, what: describeForward(f), evidence: [...f.routeEvidence.map((e) => ({...e, host: f.host.name})), ev(f.vipLoc, f.realserver.name)]})
  }
  return out
}

/** The snapshot hosts the answers cross on their way from `rs` to the client: [host, interface they arrive on]. */
function hopsToClient(w: World, rs: HostView, vip: IpAddr | undefined, answering?: {proto: string; port: number}): {host: HostView; iif?: string; evidence: Evidence[]}[] {
  const out: {host: HostView; iif?: string; evidence: Evidence[]}[] = []
  let cur = rs
  // a UDP server on 0.0.0.0 answers without a source at route lookup: `ip rule from VIP` does not apply (answerSource)
  let src: IpAddr | undefined = vip && answering ? answerSource(rs, answering.proto, vip, answering.port) : vip
  for (let hop = 0; hop < 8; hop++) {
    if (cur.isLocal(w.client.ip)) break
    const r = cur.route({dst: w.client.ip, src})
    if (!r || r.kind !== 'unicast' || !r.gateway) break
    const next = w.ownerOf(r.gateway, cur)
    if (!next || next === rs || out.some((x) => x.host === next)) break
    out.push({host: next, iif: next.addressOf(r.gateway)?.iface.name, evidence: routeEvidence(r).filter((loc) => !isDefaultRule(loc.text)).map((loc) => ev(loc, cur.name))})
    cur = next
    src = undefined
  }
  return out
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const d of directServices(w)) {
    // the hosts on the director's own way to the clients carry the requests too (routing taken as symmetric):
    // they hold the connection's entry and neither NAT the answers nor see them as INVALID
    const requestSide = new Set(hopsToClient(w, d.director, undefined).map((x) => x.host))
    for (const hop of hopsToClient(w, d.rs, d.vip, {proto: d.proto, port: d.port})) {
      const h = hop.host
      // the director on the way is dr-reply-via-director's (it drops its own VIP as a martian)
      if (h === d.director || !h.fw || requestSide.has(h)) continue
      const key = `${h.name}|${d.vip.value}|${d.port}|${d.proto}`
      if (seen.has(key)) continue
      const tcp = d.proto === 'tcp'
      const loose = h.sysctl.num('net.netfilter.nf_conntrack_tcp_loose') !== 0
      const e = {src: d.vip, sport: d.port, dst: w.client.ip, dport: w.client.port, proto: d.proto}
      const problems: string[] = []
      const evidence: Evidence[] = [...d.evidence, ...hop.evidence]
      const ops: FixOp[] = []
      // TCP: the SYN/ACK has no entry and is INVALID (and so is every answer with nf_conntrack_tcp_loose=0): a
      // stateful FORWARD that drops INVALID packets (firewalld, most hardening guides) kills the handshake
      if (tcp) {
        const inv = received(h, flowPacket(e, 'SYNACK'), {state: 'INVALID', iif: hop.iif})
        const b = inv.blocked
        if (b) {
          problems.push(
            `${h.name}'s conntrack has no entry for the SYN/ACK (it never saw the SYN), so the packet is INVALID, and it is ${b.decision.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(b.decision)}: the handshake never completes`,
          )
          evidence.push(ev(b.decision.loc, h.name))
          ops.push(...h.fw.fixer.acceptBefore(b.decision, {src: hostPrefix(d.vip), proto: d.proto, sport: d.port}))
        }
      }
      // the answers after the SYN/ACK (UDP: the first answer): picked up mid-stream as NEW though they are no SYN
      // (nf_conntrack_tcp_loose=1), or INVALID (loose=0); a FORWARD that accepts only SYNs as NEW (`! --syn -m
      // conntrack --ctstate NEW -j DROP`), or only ESTABLISHED, drops them. (When the SYN/ACK is dropped already,
      // its accept comes first; check's next round judges what is left.)
      if (problems.length === 0) {
        const later = received(h, flowPacket(e, 'RDATA'), {state: tcp && !loose ? 'INVALID' : 'NEW', iif: hop.iif})
        const b = later.blocked
        if (b) {
          const how = tcp ? (loose ? 'picked up mid-stream as a NEW connection although they are no SYN (nf_conntrack_tcp_loose=1)' : 'INVALID (nf_conntrack_tcp_loose=0: no entry, no mid-stream pickup)') : 'each NEW (the entry never sees a packet in the other direction, so it never becomes ESTABLISHED)'
          problems.push(
            `${h.name}'s conntrack never saw the requests, so the ${tcp ? 'answers after the SYN/ACK are' : 'answers are'} ${how}, and ${b.decision.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(b.decision)}: ${tcp ? 'the connection opens, then stalls' : 'the client gets no answer'}`,
          )
          evidence.push(ev(b.decision.loc, h.name))
          ops.push(...h.fw.fixer.acceptBefore(b.decision, {src: hostPrefix(d.vip), proto: d.proto, sport: d.port}))
        }
      }
      // NAT: UDP, every answer starts an entry; TCP, the first answer after the SYN/ACK is picked up mid-stream
      // (unless nf_conntrack_tcp_loose=0, when it is INVALID and never NATed)
      let natWord: string | undefined
      if (!tcp || loose) {
        const r = received(h, flowPacket(e, 'RDATA'), {state: 'NEW', iif: hop.iif})
        const post = r.blocked || r.to !== 'forward' ? undefined : r.hooks.find((x) => x.hook === 'POSTROUTING')
        const nat = post?.nat
        if (nat && (nat.kind === 'SNAT' || nat.kind === 'MASQUERADE')) {
          // MASQUERADE: the address the output device's route picks (nf_nat_masquerade_ipv4: inet_select_addr)
          const toIp = nat.to?.ip ?? (nat.kind === 'MASQUERADE' ? h.sourceFor(w.client.ip) : undefined) ?? (post!.packet.src.value !== d.vip.value ? post!.packet.src : undefined)
          const to = toIp ? formatIp(toIp) : `an address of ${h.name}`
          natWord = nat.kind
          problems.push(
            `${h.name}'s conntrack takes the answers for a new connection (${tcp ? 'the first packet after the SYN/ACK, picked up mid-stream' : 'the first UDP answer; the later ones belong to that entry'}) and ${nat.kind} rewrites their source to ${to}: ` +
              `the client ${formatIp(w.client.ip)} gets answers from ${to} instead of ${formatIp(d.vip)} and drops them${tcp ? ' (its TCP stack answers with a reset)' : ''}`,
          )
          evidence.push(ev(nat.decision.loc, h.name))
          ops.push(...h.fw.fixer.acceptBefore(nat.decision, {src: hostPrefix(d.vip), proto: d.proto, sport: d.port}))
        }
      }
      if (problems.length === 0) continue
      seen.add(key)
      out.push(
        finding(meta, h.name, {
          message:
            `${d.rs.name} answers the clients of ${d.what} itself, from ${formatIp(d.vip)}, and the answers cross ${h.name}, which does not carry the requests (they go by ${d.director.name}).\n` +
            problems.map((x) => `  ${x}.`).join('\n'),
          evidence,
          fix: {
            summary:
              `on ${h.name}, ${[problems.length > 1 || !natWord ? "accept the VIP's answers before the rule that drops them" : '', natWord ? `exempt them from its ${natWord} (an accept in its nat POSTROUTING before the rule)` : ''].filter(Boolean).join(' and ')}; ` +
              `or route the requests through ${h.name} too, so that it sees both directions (the exemption helps only where the VIP is routable on the clients' side)`,
            ops,
          },
        }),
      )
    }
  }
  return out
})
