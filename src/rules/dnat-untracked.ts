// dnat-untracked: a DNAT service whose packets a raw-table NOTRACK (or CT --notrack, nft `notrack`) takes out of
// connection tracking: NAT works on conntrack entries, so nat PREROUTING is never consulted for them and the DNAT
// never happens; the packets go on to the VIP itself (usually nothing listens there) or are routed as they came.
// A common slip: NOTRACK added for a busy UDP service (DNS) to spare the conntrack table, next to the DNAT that
// publishes it.
import {formatIp, ipEquals, type IpAddr} from '../model/ip.js'
import type {IptRule} from '../model/iptables.js'
import {notrackOf} from './engine/notrack.js'
import {finding, serviceRule} from './engine/helpers.js'
import {ev, locRef} from './engine/host.js'
import {binaryOf} from './engine/firewall.js'
import {ipvsKnobs, params, requestIn} from './engine/flows.js'
import {describeService, type Backend, type LbService, type World} from './engine/world.js'
import {received} from './engine/path.js'
import {flowPacket} from './engine/packets.js'
import {UNKNOWN_IF} from './engine/host.js'
import {returnRoute} from './engine/returnpath.js'
import {natSource} from './engine/nat-source.js'
import type {FixOp} from './engine/fix.js'
import {nftRuleOf, shadowOf} from './engine/nft-view.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dnat-untracked',
  title: "the service's packets are untracked, so its DNAT never happens",
  severity: 'error',
  description:
    "NAT is done on connection-tracking entries: a packet the raw table marks NOTRACK (or CT --notrack, nft notrack) has none, so nat PREROUTING is never consulted for it and its DNAT never happens. The client's packets then go to the VIP itself, where nothing serves them, or are routed unchanged. Remove the NOTRACK for the service (or exclude the service from it), or serve it without NAT.",
  sources: [
    'iptables-extensions(8): NOTRACK / CT --notrack (the packet is not tracked, so no NAT applies)',
    'net/netfilter/nf_nat_core.c nf_nat_inet_fn (works on the skb\'s conntrack entry; an untracked skb has none)',
    'test/kernel/random-udp-scenarios.ts (udp3-5: a DNAT director with a raw NOTRACK for the VIP: the query reached the director itself, which answered port unreachable)',
  ],
}

/** The command that deletes a raw rule: iptables by position; nft by its handle (a shadow rule leads back to the nft rule). */
function deleteRule(svc: LbService, notrack: IptRule): FixOp[] {
  const h = svc.host
  const rs = h.fw?.rulesets.find((s) => s.tables.get('raw')?.chains.get(notrack.chain)?.rules.includes(notrack))
  const ops: FixOp[] = []
  const chainLen = rs?.tables.get('raw')?.chains.get(notrack.chain)?.rules.length ?? 0
  const nftRule = rs ? nftRuleOf(rs, notrack) : undefined
  if (nftRule) ops.push({kind: 'cmd', text: `nft delete rule ${nftRule.family} ${nftRule.table} ${nftRule.chain} handle ${nftRule.handle}`})
  else if (rs && !shadowOf(rs)) ops.push({kind: 'ipt', bin: binaryOf(rs), table: 'raw', chain: notrack.chain, op: 'D', pos: notrack.index, chainLen})
  return ops
}

/**
 * A backend's reply to the client as it reaches the balancer (its PREROUTING, reply direction), untracked by a raw
 * NOTRACK: the first backend whose reply is, with the rule. Replies that bypass the balancer are
 * nat-reply-bypasses-director's.
 */
/** Whether any rule of the host takes packets out of connection tracking (NOTRACK, CT --notrack, nft notrack). */
const notrackOn = new WeakMap<object, boolean>()
function hasNotrack(h: LbService['host']): boolean {
  let v = notrackOn.get(h.snap)
  if (v === undefined) {
    v = false
    for (const rs of [h.snap.iptables, h.snap.iptablesLegacy]) {
      for (const c of rs?.tables.get('raw')?.chains.values() ?? []) {
        if (c.rules.some((r) => r.target?.kind === 'NOTRACK' || (r.target?.kind === 'CT' && r.target.notrack))) v = true
      }
    }
    for (const t of h.snap.nft?.tables ?? []) for (const c of t.chains.values()) if (c.rules.some((r) => r.stmts.some((x) => x.kind === 'notrack'))) v = true
    notrackOn.set(h.snap, v)
  }
  return v
}

function untrackedReply(svc: LbService, w: World): {b: Backend; rule: IptRule; snat?: IpAddr} | undefined {
  const h = svc.host
  // nothing untracks: no backend's replies need replaying (kube-proxy: 31,704 backends)
  if (!hasNotrack(h)) return undefined
  const probe = svc.probes[0]
  for (const b of svc.backends) {
    if (b.local || b.method !== 'dnat' || b.share === 0) continue
    if (b.owner && returnRoute(w, h, b.owner, b.ip).kind === 'around') continue
    const sport = b.port || probe?.dport
    if (!sport) continue
    // the replies go to the address the backend saw: the balancer's own when it SNATs (full NAT), else the client's
    const seen = natSource(svc, w, b)
    const snat = ipEquals(seen.ip, w.client.ip) ? undefined : seen.ip
    const back = flowPacket({src: b.ip, sport, dst: seen.ip, dport: w.client.port, proto: svc.proto}, svc.proto === 'tcp' ? 'SYNACK' : 'RDATA')
    const res = received(h, back, {state: 'ESTABLISHED', dir: 'REPLY', iif: h.oifFor(b.ip) ?? UNKNOWN_IF})
    const rule = notrackOf(res.hooks.find((hk) => hk.hook === 'PREROUTING'))
    if (rule) return {b, rule, ...(snat ? {snat} : {})}
  }
  return undefined
}

function replyFinding(svc: LbService, notrack: IptRule, b: Backend, snat?: IpAddr) {
  const h = svc.host
  const ops = deleteRule(svc, notrack)
  const from = `${formatIp(b.ip)}${b.port ? `:${b.port}` : ''}`
  return finding(meta, h.name, {
    title: "the backends' replies are untracked, so they are never un-DNATed",
    message:
      `${locRef(notrack.loc)} takes the replies of ${describeService(svc)} (from ${from}) out of connection tracking as they come back through ${h.name}: ` +
      `the DNAT ${locRef(svc.loc)} is undone on the connection's entry, which an untracked packet does not have, so ` +
      (snat
        ? `the replies, addressed to ${h.name}'s own ${formatIp(snat)} (its SNAT of the requests), are never translated back to the client: they end at ${h.name}, and the client never gets an answer.`
        : `the replies reach the client from ${from} instead of the VIP, and the client drops them (a TCP client answers with a reset; a UDP client's connected socket or resolver ignores them).`),
    evidence: [ev(svc.loc), ev(b.loc), ev(notrack.loc)],
    fix: {summary: `remove the NOTRACK of the replies (or exclude the backends' address and port from it)${ops.length ? '' : `: delete ${locRef(notrack.loc)}`}`, ops},
  })
}

export default serviceRule(
  meta,
  (svc: LbService, w) => {
    const h = svc.host
    if (!h.fw) return undefined
    const probe = svc.probes[0]
    if (!probe) return undefined
    const r = requestIn(svc, w, probe, 'SYN', params(ipvsKnobs(h), 'dnat', svc.proto), 'NEW')
    const pre = r.result.hooks.find((hk) => hk.hook === 'PREROUTING')
    if (pre?.nat) {
      // the requests are translated; a NOTRACK of the backends' replies leaves them as they are (un-DNAT works on the
      // entry: an untracked reply keeps the backend's source, and the client, which asked the VIP, drops it)
      const reply = untrackedReply(svc, w)
      return reply ? replyFinding(svc, reply.rule, reply.b, reply.snat) : undefined
    }
    const notrack = notrackOf(pre)
    if (!notrack) return undefined
    const ops = deleteRule(svc, notrack)
    return finding(meta, h.name, {
      message:
        `${locRef(notrack.loc)} takes the packets of ${describeService(svc)} out of connection tracking, so the DNAT ${locRef(svc.loc)} never applies to them: ` +
        `nat PREROUTING is only consulted for tracked packets. A client's packet stays addressed to ${probe.dst ? formatIp(probe.dst) : 'the VIP'} and ${r.result.to === 'local' ? `is delivered to ${h.name}'s own stack, where nothing serves the backends' port` : 'is routed as it came'}; no backend ever gets a connection.`,
      evidence: [ev(svc.loc), ev(notrack.loc)],
      fix: {summary: `remove the NOTRACK for the service (or exclude its address and port from it)${ops.length ? '' : `: delete ${locRef(notrack.loc)}`}`, ops},
    })
  },
  (svc) => svc.kind === 'dnat',
)
