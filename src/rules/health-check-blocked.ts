// health-check-blocked: keepalived checks each real_server from the director (TCP_CHECK, HTTP_GET, SSL_GET,
// SMTP_CHECK connect; DNS_CHECK and UDP_CHECK send UDP): ordinary connections of the director's own stack, from its
// address (or bindto) to the real server's address (or connect_ip/connect_port). They meet the director's filter
// OUTPUT, the realserver's INPUT, the realserver's socket table and OUTPUT, and the director's INPUT for the answer,
// none of which the balanced traffic crosses the same way. A check that cannot succeed makes keepalived take a
// healthy real server out of the service (or set its weight to 0 with inhibit_on_failure); when every check fails the
// VIP refuses every client. A DR realserver whose daemon listens on the VIP only is the classic case: the check goes to
// the real server's own address, where nothing listens.
import {formatEndpoint, formatIp, hostPrefix, ipEquals, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import type {HealthCheck, IpvsDest} from '../model/ipvs.js'
import {listenerFor} from '../snapshot/parsers/sockets.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {flowPacket, type L4} from './engine/packets.js'
import {received, sent, type PathResult} from './engine/path.js'
import {where} from './engine/flows.js'
import {describeService, type World} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'health-check-blocked',
  title: "keepalived's health checks of a real server cannot succeed, so it takes a healthy server out",
  severity: 'error',
  description:
    "keepalived checks each real_server with connections of the director's own stack (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK; DNS_CHECK and UDP_CHECK over UDP), from the director's address to the real server's address and port (or connect_ip/connect_port). They cross the director's filter OUTPUT and, for the answers, its INPUT; the realserver's INPUT and OUTPUT; and need a socket listening on that address. Where one of them refuses the check, keepalived declares a healthy real server down and removes it (or sets its weight to 0); when all checks fail the service refuses every client. An LVS-DR realserver whose daemon listens on the VIP only fails a check sent to its own address.",
  sources: [
    'keepalived.conf(5) (real_server checkers: connect_ip, connect_port, bindto; inhibit_on_failure)',
    'keepalived check_tcp.c, check_http.c (a connect() from the director to the real server)',
    '002_470e9850247cd7a0.txt 29.4 (filtering on the director: its own connections meet OUTPUT and INPUT)',
  ],
}

const TCP_CHECKS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'SMTP_CHECK'])
const UDP_CHECKS = new Set(['DNS_CHECK', 'UDP_CHECK'])
const SPORT = 40123

interface Problem {
  readonly host: HostView
  readonly text: string
  readonly evidence: readonly Evidence[]
  readonly ops: readonly FixOp[]
  readonly manual?: string
}

function blockedAt(r: PathResult): string | undefined {
  const b = r.blocked
  return b ? `${b.decision.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(b.decision)}` : undefined
}

function checkProblems(w: World, d: HostView, dest: IpvsDest, c: HealthCheck, proto: L4): Problem[] {
  const port = c.port
  if (port === undefined || d.isLocal(c.ip) !== false) return []
  const src: IpAddr | undefined = c.bindto ?? d.sourceFor(c.ip)
  if (!src) return []
  const out: Problem[] = []
  const tcp = proto === 'tcp'
  // the director's request: OUTPUT (and POSTROUTING)
  const req = flowPacket({src, sport: SPORT, dst: c.ip, dport: port, proto}, tcp ? 'SYN' : 'DATA')
  const r1 = sent(d, req, {state: 'NEW'})
  const b1 = blockedAt(r1)
  if (b1 && d.fw) {
    out.push({host: d, text: `${d.name}'s ${tcp ? 'SYN' : 'request'} to ${formatEndpoint({ip: c.ip, port})} is ${b1}`, evidence: [ev(r1.blocked!.decision.loc, d.name)], ops: d.fw.fixer.acceptBefore(r1.blocked!.decision, {dst: hostPrefix(c.ip), proto, dport: port})})
    return out
  }
  const from = r1.packet.src
  const rs = w.ownerOf(c.ip, d)
  // the realserver: its INPUT, a socket on that address, its OUTPUT for the answer
  if (rs) {
    // the interface the check arrives on: the one the realserver's route back to the director leaves by
    const iif = rs.oifFor(from) ?? rs.addressOf(c.ip)?.iface.name ?? UNKNOWN_IF
    const r2 = received(rs, {...req, src: from}, {state: 'NEW', iif})
    const b2 = blockedAt(r2)
    // UDP_CHECK without require_reply counts a silent timeout as success: only an ICMP error (REJECT, no listener) fails it
    const silentOk = c.kind === 'UDP_CHECK' && !c.requireReply
    if (b2 && rs.fw && !(silentOk && r2.blocked!.decision.verdict !== 'REJECT')) {
      out.push({host: rs, text: `${rs.name} gets it from ${formatIp(from)}, and its ${tcp ? 'SYN' : 'request'} is ${b2}`, evidence: [ev(r2.blocked!.decision.loc, rs.name)], ops: rs.fw.fixer.acceptBefore(r2.blocked!.decision, {src: hostPrefix(from), dst: hostPrefix(c.ip), proto, dport: port})})
      return out
    }
    // published by a DNAT to a container or pod (Docker without userland proxy, a NodePort): the check is forwarded,
    // not served by a socket of the realserver; that way is not followed here
    const delivered = r2.noFirewall ? rs.isLocal(c.ip) === true : r2.to === 'local'
    if (b2 || !delivered) return out
    const local = r2.hooks.find((x) => x.hook === 'PREROUTING')?.packet ?? req
    const ls = rs.snap.listeners
    if (ls && !listenerFor(ls, proto, local.dst, local.dport ?? port)) {
      const vipOnly = ls.some((l) => l.proto === proto && l.port === (local.dport ?? port) && l.addr && !ipEquals(l.addr, local.dst))
      out.push({
        host: rs,
        text:
          `nothing listens on ${formatEndpoint({ip: local.dst, port: local.dport ?? port})} on ${rs.name} (ss-ltnu.txt)${vipOnly ? `: the daemon listens on another address of ${rs.name} only (an LVS-DR realserver's VIP?)` : ''}, so ${tcp ? 'the connection is refused' : 'the request gets port unreachable'}`,
        evidence: ls.filter((l) => l.proto === proto && l.port === (local.dport ?? port)).map((l) => ev(l.loc, rs.name)),
        ops: [],
        manual: vipOnly
          ? `let the daemon on ${rs.name} listen on ${formatIp(local.dst)} too (or on 0.0.0.0), or point the checker at a port that does (connect_port)`
          : `start the service on ${rs.name}, or point the checker at the address and port it serves (connect_ip, connect_port)`,
      })
      return out
    }
    const ans = flowPacket({src: local.dst, sport: local.dport ?? port, dst: from, dport: SPORT, proto}, tcp ? 'SYNACK' : 'RDATA')
    const r3 = sent(rs, ans, {state: 'ESTABLISHED', dir: 'REPLY'})
    const b3 = blockedAt(r3)
    if (b3 && rs.fw && !(silentOk && r3.blocked!.decision.verdict !== 'REJECT')) {
      out.push({host: rs, text: `${rs.name}'s answer is ${b3}`, evidence: [ev(r3.blocked!.decision.loc, rs.name)], ops: rs.fw.fixer.acceptEstablishedBefore(r3.blocked!.decision)})
      return out
    }
  }
  // the answer back on the director: PREROUTING (un-NAT) and INPUT
  const back = flowPacket({src: c.ip, sport: port, dst: from, dport: SPORT, proto}, tcp ? 'SYNACK' : 'RDATA')
  const r4 = received(d, back, {state: 'ESTABLISHED', dir: 'REPLY', iif: d.oifFor(c.ip) ?? UNKNOWN_IF, local: true})
  const b4 = blockedAt(r4)
  if (b4 && d.fw && !(c.kind === 'UDP_CHECK' && !c.requireReply)) out.push({host: d, text: `the answer from ${formatEndpoint({ip: c.ip, port})} is ${b4} on ${d.name}`, evidence: [ev(r4.blocked!.decision.loc, d.name)], ops: d.fw.fixer.acceptEstablishedBefore(r4.blocked!.decision)})
  return out
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const svc of w.services) {
    const s = svc.ipvs
    if (svc.kind !== 'ipvs' || !s || svc.host.snap.ipvs?.source !== 'keepalived.conf') continue
    for (const dest of s.dests) {
      for (const c of dest.checks ?? []) {
        const proto: L4 | undefined = TCP_CHECKS.has(c.kind) ? 'tcp' : UDP_CHECKS.has(c.kind) ? 'udp' : undefined
        if (!proto || c.port === undefined) continue
        const key = `${svc.host.name}|${c.ip.value}|${c.port}|${proto}|${c.bindto?.value ?? ''}`
        if (seen.has(key)) continue
        seen.add(key)
        const problems = checkProblems(w, svc.host, dest, c, proto)
        if (problems.length === 0) continue
        const p = problems[0]!
        out.push(finding(meta, p.host.name, {
          message:
            `keepalived on ${svc.host.name} checks the real server ${formatEndpoint({ip: dest.ip, port: dest.port})} of ${describeService(svc)} with ${c.kind} (${locRef(c.loc)}): ${proto.toUpperCase()} to ${formatEndpoint({ip: c.ip, port: c.port})}${c.bindto ? ` from ${formatIp(c.bindto)}` : ''}; ` +
            `${p.text}: the check fails every time, and keepalived takes the real server out of the service (weight 0 with inhibit_on_failure) although it may serve clients well. ` +
            'Balanced connections do not take this way, so they do not show it.',
          evidence: [ev(s.loc, svc.host.name), ev(dest.loc, svc.host.name), ev(c.loc, svc.host.name), ...p.evidence],
          fix: {summary: p.manual ?? `let the health check through on ${p.host.name}`, ops: p.ops},
        }))
      }
    }
  }
  return out
})
