// local-client-blocked: a host that DNATs its own connections in nat OUTPUT (a balancer reaching its own VIP,
// an application server sent to a database VIP, a port map for local clients) meets its own filter table after
// the DNAT: OUTPUT sees the connection addressed to the backend, and INPUT sees the backend's answers (before the
// nat table at LOCAL_IN reverses the translation, their source is the backend). A filter written for the VIP, or
// an INPUT without an ESTABLISHED accept, kills these connections while outside clients are served. The DNATs of
// 127/8 are localhost-dnat's.
import {formatEndpoint, formatIp, hostPrefix, isLoopback, type IpAddr} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {routeEvidence} from '../dataplane/routing.js'
import type {FixOp} from './engine/fix.js'
import type {IptablesRuleset, IptRule} from '../model/iptables.js'
import {hostRule, finding} from './engine/helpers.js'
import {ev, locRef, UNKNOWN_IF, type HostView} from './engine/host.js'
import {received, rulesetFacts, sent} from './engine/path.js'
import {flowPacket, type L4} from './engine/packets.js'
import {where} from './engine/flows.js'
import {reachableFrom, selectorOf} from './engine/world.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'local-client-blocked',
  title: "the host's own connections to a service it DNATs in nat OUTPUT are dropped by its own filter",
  severity: 'error',
  description:
    "A connection the host makes itself is DNATed in nat OUTPUT, so its filter OUTPUT sees it addressed to the backend, not to the VIP, and its filter INPUT sees the backend's answers with the backend as source (the nat table reverses the translation only after INPUT's filter). A filter OUTPUT that allows the VIP's port but not the backend's, or an INPUT without an accept for established connections, drops the host's own connections while outside clients (nat PREROUTING) are served.",
  sources: [
    'net/netfilter/nf_nat_proto.c, iptable_nat.c (nat OUTPUT at NF_IP_PRI_NAT_DST before filter OUTPUT; the reply\'s reverse translation at LOCAL_IN NF_IP_PRI_NAT_SRC after filter INPUT)',
    '002_470e9850247cd7a0.txt 29.4 (the director\'s own connections meet OUTPUT and INPUT)',
    'test/kernel/random-local.kernel.test.ts (output-dnat scenarios: the director\'s own OUTPUT/INPUT dropped its connection, check was silent)',
  ],
}

const SPORT = 40123

/** The rule names its destination itself (`-d VIP`): kube-proxy's KUBE-SEP DNATs do not (KUBE-SERVICES does). */
function ownDst(rule: IptRule): boolean {
  const ms = rule.matches
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!
    if (m.kind === 'addr' && m.dir === 'dst' && !m.neg) return true
  }
  return false
}

function check(h: HostView, rs: IptablesRuleset, rule: IptRule, alsoOutside: boolean): RuleFinding | undefined {
  const fw = h.fw!
  const sel = selectorOf(rs, rule)
  const t = rule.target
  const to = t?.kind === 'DNAT' ? t.to[0]?.from : undefined
  // a rule naming one destination that is not loopback (localhost-dnat's), translated to another host
  if (!sel.dst || sel.dst.len !== 32 || !to || isLoopback(to) || h.isLocal(to) !== false) return undefined
  const vip: IpAddr = {family: 4, value: sel.dst.value}
  if (isLoopback(vip)) return undefined
  const proto: L4 = sel.proto === 'udp' ? 'udp' : 'tcp'
  const dport = sel.dport ?? 80
  const src = h.sourceFor(vip) ?? h.primaryAddress()
  if (!src) return undefined
  const tcp = proto === 'tcp'
  const syn = flowPacket({src, sport: SPORT, dst: vip, dport, proto}, tcp ? 'SYN' : 'DATA')
  const r = sent(h, syn, {state: 'NEW'})
  const out = r.hooks.find((x) => x.hook === 'OUTPUT')
  if (out?.nat?.kind !== 'DNAT' || out.nat.decision.rule !== rule) return undefined
  const toPort = out.nat.to?.port ?? dport
  const what = `${locRef(rule.loc)} DNATs ${h.name}'s own connections to ${formatEndpoint({ip: vip, port: dport})} to ${formatEndpoint({ip: to, port: toPort})}`
  const problems: string[] = []
  const ops: FixOp[] = []
  const evidence: Evidence[] = [ev(rule.loc)]
  const summary: string[] = []
  // connect() routes the original destination before any netfilter hook (ip_route_connect): without a route
  // for the VIP the connection fails there (ENETUNREACH), although the DNAT would send it elsewhere
  const first = h.route({dst: vip})
  if (first && (first.kind === 'none' || first.kind === 'unreachable' || first.kind === 'blackhole' || first.kind === 'prohibit')) {
    const back = h.route({dst: to})
    problems.push(
      `${h.name} has ${first.kind === 'none' ? 'no route' : `a ${first.kind} route`} for ${formatIp(vip)} itself: connect() looks the original destination up before nat OUTPUT runs, so the connection fails there (${first.kind === 'none' ? 'ENETUNREACH' : first.kind === 'prohibit' ? 'EACCES' : first.kind === 'blackhole' ? 'EINVAL' : 'EHOSTUNREACH'}) and the DNAT is never reached`,
    )
    evidence.push(...routeEvidence(first).map((l) => ev(l)))
    if (back?.kind === 'unicast' && back.dev && first.kind === 'none') {
      ops.push({kind: 'cmd', text: `ip route add ${formatIp(vip)}/32${back.gateway ? ` via ${formatIp(back.gateway)}` : ''} dev ${back.dev}`})
      summary.push(`route ${formatIp(vip)} the way ${formatIp(to)} goes (any route lets connect() through; the DNAT then routes the packet to ${formatIp(to)})`)
    } else summary.push(`give ${h.name} a usable route for ${formatIp(vip)} (the DNAT then routes the packet to ${formatIp(to)})`)
  }
  const b = r.blocked
  if (b) {
    problems.push(`its filter sees them after the DNAT, addressed to ${formatEndpoint({ip: to, port: toPort})}, and the ${tcp ? 'SYN' : 'request'} is ${b.decision.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b.hook.hook} by ${where(b.decision)}`)
    evidence.push(ev(b.decision.loc))
    ops.push(...fw.fixer.acceptBefore(b.decision, {dst: hostPrefix(to), proto, dport: toPort}))
    summary.push(`accept the DNATed connections in ${b.hook.hook} before ${locRef(b.decision.loc)}`)
  } else {
    const from = r.packet.src
    const ans = flowPacket({src: to, sport: toPort, dst: from, dport: SPORT, proto}, tcp ? 'SYNACK' : 'RDATA')
    const back = received(h, ans, {state: 'ESTABLISHED', dir: 'REPLY', iif: h.oifFor(to) ?? UNKNOWN_IF, local: true})
    const b2 = back.blocked
    if (b2) {
      problems.push(
        `the answers come back from ${formatEndpoint({ip: to, port: toPort})} and are ${b2.decision.verdict === 'REJECT' ? 'rejected' : 'dropped'} at ${b2.hook.hook} by ${where(b2.decision)} (filter INPUT sees their source before the translation is reversed)`,
      )
      evidence.push(ev(b2.decision.loc))
      ops.push(...fw.fixer.acceptEstablishedBefore(b2.decision))
      summary.push(`accept the answers of established connections in ${b2.hook.hook} before ${locRef(b2.decision.loc)}`)
    }
  }
  if (problems.length === 0) return undefined
  return finding(meta, h.name, {
    message: `${what}; ${problems.join('; and ')}. Applications and checks on ${h.name} cannot reach the service${alsoOutside ? ', while outside clients can' : ''}.`,
    evidence,
    fix: {summary: summary.join('; '), ops},
  })
}

export default hostRule(
  meta,
  (h) => {
    const out: RuleFinding[] = []
    for (const rs of h.fw?.rulesets ?? []) {
      if (rs.family !== 4 || !rs.tables.get('nat')) continue
      let chain: string | undefined
      let fromOutput = false
      let fromPre = false
      for (const r of rulesetFacts(rs).natDnat) {
        if (!ownDst(r)) continue
        if (r.chain !== chain) {
          chain = r.chain
          fromOutput = reachableFrom(rs, 'nat', chain, ['OUTPUT'])
          fromPre = fromOutput && reachableFrom(rs, 'nat', chain, ['PREROUTING'])
        }
        if (!fromOutput) continue
        const f = check(h, rs, r, fromPre)
        if (f) out.push(f)
      }
    }
    return out
  },
  {allHosts: true},
)
