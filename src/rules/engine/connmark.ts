// The conntrack mark of a connection, for replays of its later packets and its answers.
//
// Conntrack keeps one mark per entry (nf_conn->mark). The original direction's packets set it as they cross the
// host (iptables CONNMARK --set-mark/--set-xmark/--save-mark, nft `ct mark set`), and every later packet of the
// connection, answers included, reads it: `-m connmark --mark`, nft `ct mark`, and CONNMARK --restore-mark / nft
// `meta mark set ct mark`, which copy it to the packet's mark before the kernel routes the packet again (an OUTPUT
// mark change: ip_route_me_harder). A replay of an answer that starts with ct mark 0 misjudges every rule that reads
// it: the random nft suite's rn9-9 (realserver `iifname "lnf-r0" ct mark set 0x1` in prerouting, `meta mark set ct
// mark` in its output route chain, `ip rule fwmark 0x1` to an unreachable table: the kernel dropped its SYN/ACK on
// the route; check, replaying the SYN/ACK with ct mark 0, saw an unmarked answer and said nothing).
//
// The mark is what the connection's first packet leaves after the last hook it crosses on the host (PREROUTING
// and INPUT, or FORWARD and POSTROUTING; conntrack confirms the entry with that mark). Later original-direction
// packets can change it too (a rule without a state match); the first packet's is the one the rules replay.
import type {IpAddr} from '../../model/ip.js'
import type {IptablesRuleset} from '../../model/iptables.js'
import {received, sent, type PathResult} from './path.js'
import type {TableRun} from './firewall.js'
import {shadowOf} from './nft-view.js'
import {UNKNOWN_IF, type HostView} from './host.js'
import {flowPacket, type Endpoints} from './packets.js'

/** The ct mark a replayed packet's path leaves on its entry (0 when nothing set one, or the host has no firewall). */
export function ctMarkAfter(r: PathResult): number {
  const last = r.hooks.at(-1)
  return last ? last.ctMark : 0
}

const setters = new WeakMap<IptablesRuleset, boolean>()

/** Does a ruleset set connection marks (CONNMARK other than --restore-mark; nft `ct mark set`, translated so)? */
function setsCtMarks(rs: IptablesRuleset): boolean {
  let v = setters.get(rs)
  if (v === undefined) {
    v = false
    for (const t of rs.tables.values()) {
      for (const c of t.chains.values()) {
        for (const r of c.rules) {
          if (r.target?.kind === 'CONNMARK' && r.target.op !== 'restore') {
            v = true
            break
          }
        }
        if (v) break
      }
      if (v) break
    }
    setters.set(rs, v)
  }
  return v
}

/** per host: `${request}|${iif}|${local}` -> the mark */
const memo = new WeakMap<HostView, Map<string, number>>()

/**
 * The ct mark host `h` gives the connection whose first packet (the client's SYN, or UDP's first datagram) is
 * `request`, arriving on `iif` (default: the interface `h` routes the client's address by, as a symmetric path
 * has it). `local`: the caller knows the packet is for the host's own stack (see PathOpts.local). Its answers, and
 * the request's later packets, are replayed with it (PathOpts.ctMark).
 */
export function requestCtMark(h: HostView, request: Endpoints, o: {readonly iif?: string; readonly local?: boolean; readonly assumeLocal?: readonly IpAddr[]} = {}): number {
  const fw = h.fw
  if (!fw || !fw.rulesets.some(setsCtMarks)) return 0
  const iif = o.iif ?? h.oifFor(request.src) ?? UNKNOWN_IF
  let m = memo.get(h)
  if (!m) memo.set(h, (m = new Map()))
  const key = `${request.src.value}|${request.sport}|${request.dst.value}|${request.dport}|${request.proto}|${request.mark ?? 0}|${iif}|${o.local ?? ''}|${(o.assumeLocal ?? []).map((a) => a.value).join(',')}`
  let v = m.get(key)
  if (v === undefined) {
    const r = received(h, flowPacket(request, 'SYN'), {state: 'NEW', iif, ...(o.local !== undefined ? {local: o.local} : {}), ...(o.assumeLocal ? {assumeLocal: o.assumeLocal} : {})})
    v = ctMarkAfter(r)
    m.set(key, v)
  }
  return v
}

/**
 * The mark the host's answer (`answer`: from the server to the client) is routed with: the kernel looks it up again
 * when a table that reroutes changes its mark in OUTPUT (iptables' mangle, ipt_mangle_out; an nft chain of type
 * route, nf_route_table_hook: ip_route_me_harder), and those tables read the ct mark its request left (CONNMARK
 * --restore-mark, `meta mark set ct mark`). 0 when nothing marks it. `iif`: where the request arrived (default:
 * the interface the answer leaves by).
 */
export function answerMark(h: HostView, answer: Endpoints, o: {readonly iif?: string} = {}): number {
  if (!h.fw) return 0
  const request: Endpoints = {src: answer.dst, sport: answer.dport, dst: answer.src, dport: answer.sport, proto: answer.proto}
  const ctMark = requestCtMark(h, request, {local: true, ...(o.iif ? {iif: o.iif} : {})})
  const r = sent(h, flowPacket(answer, answer.proto === 'tcp' ? 'SYNACK' : 'RDATA'), {state: 'ESTABLISHED', dir: 'REPLY', ctMark})
  const out = r.hooks.find((x) => x.hook === 'OUTPUT')
  let mark = 0
  for (const run of out?.runs ?? []) if (reroutes(run)) mark = run.result.packet.mark
  return mark
}

/** Does a mark this OUTPUT table run leaves make the kernel route the packet again? */
function reroutes(run: TableRun): boolean {
  if (run.table !== 'mangle') return false
  const shadow = shadowOf(run.decision.ruleset)
  if (!shadow) return true
  return shadow.bases.some((b) => b.hook === 'OUTPUT' && b.cls === 'mangle' && b.chain.base?.type === 'route')
}
