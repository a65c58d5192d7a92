// forward-blocks-routed-vip: a host routes a VIP unchanged (no IPVS, no DNAT) to a realserver that holds it
// on lo (a DR-shaped path, engine/forward.ts), and its own filter FORWARD chain drops the connection: the
// client's SYN (a DROP policy, a catch-all REJECT, accepts that name the realserver's address instead of the
// VIP), or, when the realserver answers back through it, the replies. The stateful half of a one-way path
// (the SYN passes, the INVALID ACK/FIN do not) is dr-stateful-filter's.
import {formatEndpoint, formatIp, hostPrefix, prefixContains} from '../model/ip.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF} from './engine/host.js'
import {acceptedBy, describeReplay, forwardIn, guessesOf, ipvsKnobs, type Replay} from './engine/flows.js'
import {received} from './engine/path.js'
import {flowPacket} from './engine/packets.js'
import {ctView} from './engine/ctmodel.js'
import {describeForward, type ForwardPath} from './engine/forward.js'
import {CLIENT_PACKETS, SERVER_PACKETS, PACKET_ORDER, type FlowPacket} from './engine/ctmodel.js'
import type {Decision, PacketSelector} from './engine/firewall.js'
import {acceptBeforeFirst} from './engine/stateful.js'
import {shadowOf} from './engine/nft-view.js'
import type {CtState, IptRule} from '../model/iptables.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'forward-blocks-routed-vip',
  title: 'FORWARD drops the connections a host routes to the realserver holding the VIP',
  severity: 'error',
  description:
    "A host that routes a VIP unchanged to a realserver holding it on lo (a route or a fwmark policy route: LVS-DR without IPVS) passes every client packet through its filter FORWARD chain, still addressed to the VIP, and, when the realserver's route back to the client leads through it, every reply too, from the VIP. A FORWARD chain with a DROP policy or a catch-all REJECT and no accept for the VIP (accepts for the realserver's own address do not match: the packets carry the VIP) drops the connection before it reaches the realserver, or drops its replies.",
  sources: [
    '002_470e9850247cd7a0.txt (LVS-HOWTO 29.3: routing to the realserver by fwmark; 29.16: accept the service statelessly)',
    'net/ipv4/ip_forward.c (forwarded packets traverse NF_INET_FORWARD)',
    'iptables(8) (a chain policy applies to packets no rule decided)',
  ],
}

const CLIENT = CLIENT_PACKETS
const REPLIES = SERVER_PACKETS
const ORDER = PACKET_ORDER

interface Blocked {
  readonly replay: Replay
  readonly decision: Decision
  readonly side: 'in' | 'out'
}

/** An ACCEPT rule of filter FORWARD written for the realserver's own address (not the VIP): the usual slip. */
function acceptsRealserver(fp: ForwardPath): IptRule | undefined {
  for (const rs of fp.host.fw?.rulesets ?? []) {
    for (const c of rs.tables.get('filter')?.chains.values() ?? []) {
      for (const r of c.rules) {
        if (r.target?.kind !== 'ACCEPT') continue
        const dst = r.matches.find((m) => m.kind === 'addr' && m.dir === 'dst' && !m.neg)
        if (dst?.kind === 'addr' && dst.prefix.len > 0 && prefixContains(dst.prefix, fp.gateway) && !prefixContains(dst.prefix, fp.vip)) return r
      }
    }
  }
  return undefined
}

/**
 * Does a rule of the forwarding host name the VIP, or the realserver's address it routes the VIP to, as a
 * destination (the path is meant to carry traffic, not closed on purpose)?
 */
function namedByRules(fp: ForwardPath): boolean {
  for (const rs of fp.host.fw?.rulesets ?? []) {
    for (const t of rs.tables.values()) {
      for (const c of t.chains.values()) {
        for (const r of c.rules) if (r.matches.some((m) => m.kind === 'addr' && m.dir === 'dst' && !m.neg && m.prefix.len > 0 && (prefixContains(m.prefix, fp.vip) || prefixContains(m.prefix, fp.gateway)))) return true
      }
    }
  }
  return false
}

/** The realserver's replies crossing the forwarding host (conntrack saw the request: ESTABLISHED, reply direction). */
function replyIn(fp: ForwardPath, kind: FlowPacket, untracked: boolean, snat: boolean): Replay {
  const pkt = flowPacket({src: fp.vip, sport: fp.port, dst: fp.probe.src, dport: fp.probe.sport ?? 0, proto: fp.proto}, kind)
  // the client's packets untracked here (notrack): conntrack meets the connection first in the server's packets,
  // which cannot start one (a SYN/ACK or FIN is INVALID: tcp_conntracks sNO -> sIV) or are picked up as NEW in
  // their own direction (an ACK or data, nf_conntrack_tcp_loose=1)
  const state: CtState = !untracked ? 'ESTABLISHED' : fp.proto !== 'tcp' ? 'NEW' : kind === 'RDATA' && ipvsKnobs(fp.host).tcpLoose ? 'NEW' : 'INVALID'
  const result = received(fp.host, pkt, {state, dir: untracked ? 'ORIGINAL' : 'REPLY', iif: fp.route.dev ?? UNKNOWN_IF, local: false, ...(snat && !untracked ? {snat: true} : {})})
  return {kind, state, place: 'both-ways', result, packet: pkt}
}

function consequence(first: FlowPacket, fp: ForwardPath): string {
  const h = fp.host.name
  if (first === 'SYN') return `No connection opens: the SYN never reaches ${fp.realserver.name}.`
  if (first === 'SYNACK') return `No connection opens: ${fp.realserver.name} answers, but ${h} drops its SYN/ACK.`
  if (first === 'ACK' || first === 'DATA') return `The client completes the handshake and then hangs: its request never reaches ${fp.realserver.name}.`
  if (first === 'RDATA') return `The request reaches ${fp.realserver.name}, but its response never gets past ${h}: the client times out.`
  return `Connections are never closed cleanly: ${h} drops their FINs.`
}

/**
 * A drop of this rule's: at FORWARD, or before routing (PREROUTING: a filter chain of nft at any priority, the raw
 * or mangle table; a rule there that tests the conntrack state before conntrack sees every packet as invalid:
 * nft_ct_get_eval, and the fixer moves it after conntrack).
 */
function blocks(r: Replay): boolean {
  const h = r.result.blocked?.hook.hook
  return h === 'FORWARD' || h === 'PREROUTING'
}

/** A PREROUTING decision of an nft rule that tests the conntrack state before conntrack (the nft fixer moves it). */
function beforeConntrack(d: Decision): boolean {
  return d.table === 'raw' && !!shadowOf(d.ruleset) && !!d.rule?.matches.some((m) => m.kind === 'ctstate')
}

function check(fp: ForwardPath): RuleFinding | undefined {
  const h = fp.host
  const fw = h.fw
  if (!fw) return undefined
  const tcp = fp.proto === 'tcp'
  const syn = forwardIn(fp, 'SYN')
  const synBlocked = blocks(syn)
  // the realserver answers around this host: only a blocked SYN is this rule's (the INVALID rest is dr-stateful-filter's)
  // the client's packets leave SNATed (a masquerade toward the realserver): its replies come back to this host's
  // address, whatever its route to the client, and are un-SNATed here
  const snatted = (n: {readonly kind: string} | undefined) => n?.kind === 'SNAT' || n?.kind === 'MASQUERADE'
  let snat = syn.result.hooks.find((hk) => hk.hook === 'POSTROUTING' && snatted(hk.nat))?.nat
  if (!snat && synBlocked) {
    // the SYN never got there: what POSTROUTING would do to it once the drop is fixed
    const post = fw.runHook('POSTROUTING', syn.packet, h.env({oif: fp.route.dev ?? UNKNOWN_IF, ct: ctView('NEW')}), true)
    if (post.verdict === 'ACCEPT' && snatted(post.nat)) snat = post.nat
  }
  const through = fp.ret.kind === 'through' || !!snat
  if (!through && !synBlocked) return undefined
  const blocked: Blocked[] = []
  for (const kind of tcp ? CLIENT : (['SYN'] as const)) {
    const r = kind === 'SYN' ? syn : forwardIn(fp, kind)
    const b = r.result.blocked
    if (b && blocks(r)) blocked.push({replay: r, decision: b.decision, side: 'in'})
  }
  if (through) {
    const untracked = syn.result.hooks.some((hk) => hk.hook === 'PREROUTING' && hk.notrack)
    for (const kind of tcp ? REPLIES : (['RDATA'] as const)) {
      const r = replyIn(fp, kind, untracked, !!snat)
      const b = r.result.blocked
      if (b && blocks(r)) blocked.push({replay: r, decision: b.decision, side: 'out'})
    }
  }
  if (blocked.length === 0) return undefined
  blocked.sort((a, b) => ORDER.indexOf(a.replay.kind) - ORDER.indexOf(b.replay.kind))
  const vip = formatEndpoint({ip: fp.vip, port: fp.port})
  const sel: Record<'in' | 'out', PacketSelector> = {
    in: {dst: hostPrefix(fp.vip), proto: fp.proto, dport: fp.port},
    out: {src: hostPrefix(fp.vip), proto: fp.proto, sport: fp.port},
  }
  const ops = acceptBeforeFirst(fw, blocked, sel)
  const guesses = guessesOf(blocked.map((b) => b.replay))
  const assumed = blocked.filter((b) => b.decision.assumed)
  const meant = fp.hinted || namedByRules(fp)
  const accepting = synBlocked ? undefined : acceptedBy(syn, 'FORWARD')
  const sides = new Set(blocked.map((b) => b.side))
  const slip = sides.has('in') ? acceptsRealserver(fp) : undefined
  const early = blocked.find((b) => b.replay.result.blocked?.hook.hook === 'PREROUTING')
  // the drops an accept fixes (not a conntrack-state rule before conntrack: that one is moved)
  const plain = blocked.filter((b) => !(b.replay.result.blocked?.hook.hook === 'PREROUTING' && beforeConntrack(b.decision)))
  return finding(meta, h.name, {
    severity: guesses.length || assumed.length ? 'info' : meant ? undefined : 'warning',
    message:
      `${describeForward(fp)}: ${h.name} forwards the client's packets to ${fp.realserver.name} unchanged (still addressed to ${vip})` +
      (through ? ` and ${fp.realserver.name}'s replies come back through it (from ${vip}${snat && fp.ret.kind !== 'through' ? `: ${locRef(snat.decision.loc)} rewrites the client's address to ${h.name}'s own` : ''})` : `; ${fp.ret.kind === 'around' ? fp.ret.reason : 'the way back is not known'}`) +
      `. ${h.name}'s ${early ? 'firewall' : 'FORWARD chain'} drops ${through ? 'them' : "the client's packets"}:\n` +
      blocked.map((b) => `  ${b.side === 'out' ? 'reply: ' : ''}${describeReplay(b.replay)}`).join('\n') +
      (early && beforeConntrack(early.decision) ? `\n${locRef(early.decision.loc)} tests the conntrack state in a chain that runs before conntrack (priority -200 and below): no packet has an entry there yet, so every packet is invalid to it.` : '') +
      (accepting ? `\nThe SYN is accepted (${locRef(accepting.loc)}), the rest of the connection is not.` : '') +
      (slip ? `\n${locRef(slip.loc)} accepts ${formatIp(fp.gateway)}, ${fp.realserver.name}'s own address, but the routed packets still carry the VIP: it does not match them.` : '') +
      `\n${consequence(blocked[0]!.replay.kind, fp)}` +
      (meant ? '' : `\n(No rule of ${h.name} names ${formatIp(fp.vip)} or ${formatIp(fp.gateway)}: port ${fp.port} is assumed; check --vip IP:PORT checks the flow you mean.)`),
    evidence: [...fp.routeEvidence, ev(fp.vipLoc, fp.realserver.name), ...(fp.ret.kind === 'through' ? fp.ret.evidence : snat ? [ev(snat.decision.loc)] : []), ...(accepting ? [ev(accepting.loc)] : []), ...(slip ? [ev(slip.loc)] : []), ...blocked.map((b) => ev(b.decision.loc))],
    unverified: [...guesses, ...assumed.map((b) => `${locRef(b.decision.loc)} has a match the snapshot cannot decide; assumed to match`)],
    fix: {
      summary: [
        early && beforeConntrack(early.decision) ? `move ${locRef(early.decision.loc)} after conntrack (a chain of its table at priority -150, where packets have their real state), behind a stateless accept of the routed VIP's packets` : '',
        plain.length
          ? `accept the routed VIP's packets statelessly in ${h.name}'s ${plain.some((b) => b.replay.result.blocked?.hook.hook === 'FORWARD') ? 'FORWARD chain' : 'firewall'} before the rules that drop them: ` +
            [plain.some((b) => b.side === 'in') ? `the client's packets to ${vip}` : '', plain.some((b) => b.side === 'out') ? `the replies from ${vip}` : ''].filter(Boolean).join(' and ')
          : '',
      ]
        .filter(Boolean)
        .join('; '),
      ops,
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const fp of w.forwards) {
    const k = `${fp.host.name}|${fp.vip.value}|${fp.proto}|${fp.port}`
    if (seen.has(k)) continue
    seen.add(k)
    const f = check(fp)
    if (f) out.push(f)
  }
  return out
})
