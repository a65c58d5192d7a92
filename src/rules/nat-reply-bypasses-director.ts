// nat-reply-bypasses-director: NAT (LVS-NAT, DNAT) rewrites the destination on the way in; the reply must come
// back through the balancer to be rewritten back (lvs-users "lvs. Nat" thread). A realserver whose route to
// the client does not lead through the director, with no SNAT on the director, answers the client from its
// own address: the client drops those packets.
import {formatIp, formatPrefix, hostPrefix, type IpAddr, type Prefix} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import {notrackOf} from './engine/notrack.js'
import {serviceRule, finding, unverifiedFinding} from './engine/helpers.js'
import {answerSource, ev, locRef, locRefs, UNKNOWN_IF, type HostView} from './engine/host.js'
import {conntrackOnBreaks} from './engine/vs-conntrack.js'
import {backendOutcome, ipvsKnobs, ipvsViewOf, params, requestIn} from './engine/flows.js'
import {hookByDstClass, received} from './engine/path.js'
import {flowPacket} from './engine/packets.js'
import {addrClass, type Scope} from './engine/classes.js'
import {binaryOf, selectorSpec, type HookResult, type PacketSelector} from './engine/firewall.js'
import type {IptRule} from '../model/iptables.js'
import {nftRuleOf, shadowOf} from './engine/nft-view.js'
import {routeEvidence} from '../dataplane/routing.js'
import {describeBackend, describeService, type Backend, type LbService, type World} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'nat-reply-bypasses-director',
  title: "NAT'ed connections whose replies bypass the director",
  severity: 'error',
  description:
    "LVS-NAT and DNAT change the destination of the client's packets; only the balancer can undo it on the replies. If a realserver routes its replies to the client through another gateway, and no SNAT/MASQUERADE on the balancer makes them come back, the client receives answers from an address it never contacted and drops them.",
  sources: ['000_e07122559a47da1e.txt', '001_99dd2e38bf121ee9.txt (DNAT mode: the balancer must be the backends\' gateway; NAT mode: SNAT)', '004_71e2450df16223ab.txt (case one)', '003_5a314816bf922da2.txt (full NAT)'],
}

/** What a backend's nat POSTROUTING verdict depends on, besides the service: the packet's destination class, port, marks and output interface. */
interface PostKey {
  readonly cls: string
  readonly dport: number
  readonly mark: number
  readonly ctMark: number
  readonly oif: string
}

const POST_SCOPE: Scope = {hooks: ['POSTROUTING'], nat: true}

/**
 * The nat POSTROUTING verdict for the packet the director sends to the backend, evaluated once per class of
 * backend addresses the rules cannot tell apart (path.ts hookByDstClass): read its NAT binding and decisions
 * only. `prev` is the previous backend's of the same service: its verdict is this one's when the keys agree.
 */
function postrouting(svc: LbService, w: World, b: Backend, prev: {key: PostKey; post: HookResult | undefined} | undefined): {key: PostKey; post: HookResult | undefined} | undefined {
  const h = svc.host
  if (!h.fw) return undefined
  const probe = svc.probes[0]
  if (!probe) return undefined
  const outcome = backendOutcome(svc, b)
  const mark = outcome?.mark ?? probe.mark
  const ctMark = outcome?.ctMark ?? 0
  const dport = b.port ?? probe.dport ?? 0
  const oif = h.oifFor(b.ip) ?? UNKNOWN_IF
  const cls = addrClass(h, POST_SCOPE, 'dst', b.ip)
  const k = prev?.key
  if (k && k.cls === cls && k.dport === dport && k.mark === mark && k.ctMark === ctMark && k.oif === oif) return prev
  // with the connection mark PREROUTING set (nftlb: `ct mark set` per farm, `ct mark ... masquerade`)
  // IPVS's transmitter marks what it sends (skb->ipvs_property): `-m ipvs --ipvs -j SNAT` (Docker swarm's ingress) applies
  const ipvs = svc.kind === 'ipvs' ? ipvsViewOf(svc, probe, b) : undefined
  const post = hookByDstClass(h, 'POSTROUTING', {src: w.client.ip, sport: w.client.port, dst: b.ip, dport, proto: svc.proto, mark}, 'SYN', {state: 'NEW', dir: 'ORIGINAL', ctMark, oif, ...(ipvs ? {ipvs} : {})}, true)
  return {key: {cls, dport, mark, ctMark, oif}, post}
}

/** A raw rule that takes the service's packets out of connection tracking, and the packets to spare from it. */
interface Untracked {
  readonly rule: IptRule
  readonly side: 'request' | 'reply'
  readonly sel: PacketSelector
}

/**
 * The raw rules that leave a masqueraded connection untracked on the director: nat POSTROUTING is consulted only for
 * tracked packets, and only a tracked reply is un-masqueraded. The requests (IPVS balances untracked packets with its
 * own connection table; a DNAT service under a NOTRACK is dnat-untracked's, its DNAT does not happen at all), for each
 * port the service's probes use; and the backends' replies to the masquerade address.
 */
function untracked(svc: LbService, w: World, backends: readonly Backend[]): Untracked[] {
  const h = svc.host
  if (!h.fw) return []
  const out: Untracked[] = []
  const seen = new Set<string>()
  const add = (rule: IptRule | undefined, side: Untracked['side'], sel: PacketSelector) => {
    if (!rule) return
    const k = `${side}|${rule.loc.line}|${sel.dst?.value ?? ''}|${sel.src?.value ?? ''}|${sel.dport ?? ''}|${sel.sport ?? ''}`
    if (seen.has(k)) return
    seen.add(k)
    out.push({rule, side, sel})
  }
  if (svc.kind === 'ipvs') {
    for (const probe of svc.probes) {
      const r = requestIn(svc, w, probe, 'SYN', params(ipvsKnobs(h), 'masq', svc.proto), 'NEW')
      const rule = notrackOf(r.result.hooks.find((hk) => hk.hook === 'PREROUTING'))
      if (probe.dst) add(rule, 'request', {dst: hostPrefix(probe.dst), proto: svc.proto, ...(probe.dport ? {dport: probe.dport} : {})})
    }
  }
  for (const b of backends) {
    const to = h.sourceFor(b.ip)
    const sport = b.port || svc.probes[0]?.dport
    if (!to || !sport) continue
    const iif = h.oifFor(b.ip) ?? UNKNOWN_IF
    const r = received(h, flowPacket({src: b.ip, sport, dst: to, dport: 40000, proto: svc.proto}, 'SYNACK'), {state: 'ESTABLISHED', dir: 'REPLY', iif})
    add(notrackOf(r.hooks.find((hk) => hk.hook === 'PREROUTING')), 'reply', {src: hostPrefix(b.ip), proto: svc.proto, ...(b.port ? {sport: b.port} : {})})
  }
  return out
}

/** An exemption before the NOTRACK (an accept ends the raw chain, so the packets are tracked): iptables or nft syntax. */
function exemptFromNotrack(svc: LbService, u: Untracked): FixOp[] {
  const h = svc.host
  const rs = h.fw?.rulesets.find((x) => x.tables.get('raw')?.chains.get(u.rule.chain)?.rules.includes(u.rule))
  if (!rs) return []
  const nft = nftRuleOf(rs, u.rule)
  if (nft) {
    const parts: string[] = []
    if (u.sel.src) parts.push(`ip saddr ${formatPrefixShort(u.sel.src)}`)
    if (u.sel.dst) parts.push(`ip daddr ${formatPrefixShort(u.sel.dst)}`)
    if (u.sel.proto && u.sel.dport !== undefined) parts.push(`${u.sel.proto} dport ${u.sel.dport}`)
    else if (u.sel.proto && u.sel.sport !== undefined) parts.push(`${u.sel.proto} sport ${u.sel.sport}`)
    else if (u.sel.proto) parts.push(`meta l4proto ${u.sel.proto}`)
    return [{kind: 'cmd', text: `nft insert rule ${nft.family} ${nft.table} ${nft.chain} position ${nft.handle} '${[...parts, 'accept'].join(' ')}'`}]
  }
  if (shadowOf(rs)) return []
  const chainLen = rs.tables.get('raw')?.chains.get(u.rule.chain)?.rules.length ?? 0
  return [{kind: 'ipt', bin: binaryOf(rs), table: 'raw', chain: u.rule.chain, op: 'I', pos: u.rule.index, chainLen, spec: [...selectorSpec(u.sel), '-j', 'ACCEPT'].join(' ')}]
}

/** 10.0.0.11 for a /32, else the prefix */
function formatPrefixShort(p: Prefix): string {
  return p.len === 32 ? formatPrefix(p).replace(/\/32$/, '') : formatPrefix(p)
}

/** The kernel's default policy rules say nothing an engineer has to look at. */
function isDefaultRule(text: string): boolean {
  return /^(0|32766|32767):\s+from all lookup (local|main|default)$/.test(text.trim())
}

type Verdict = {readonly kind: 'ok'} | {readonly kind: 'bypass'; readonly reason: string; readonly evidence: Evidence[]} | {readonly kind: 'unknown'; readonly what: string}

/**
 * Follows the realserver's route to `to` (the client, or the address the director masquerades the connections
 * to), hop by hop across the snapshots, looking for the director.
 */
function returnPath(w: World, director: HostView, rs: HostView, from: IpAddr | undefined, to: IpAddr = w.client.ip): Verdict {
  const evidence: Evidence[] = []
  /** the hops so far, for the reason: "rs1 sends them to 10.1.0.254 (router)" */
  const hops: string[] = []
  const bypass = (last: string): Verdict => ({kind: 'bypass', reason: [...hops, last].join('; '), evidence})
  let cur = rs
  let src: IpAddr | undefined = from
  for (let hop = 0; hop < 8; hop++) {
    const r = cur.route({dst: to, src})
    if (!r) return {kind: 'unknown', what: `the routes of ${cur.name} (ip -j route show table all, ip -j addr show)`}
    for (const loc of routeEvidence(r)) if (!isDefaultRule(loc.text)) evidence.push(ev(loc, cur.name))
    const whom = to === w.client.ip ? `the client ${formatIp(to)}` : formatIp(to)
    if (r.kind === 'local' && hop > 0) return bypass(`${cur.name} is ${whom} itself: the replies reach it without passing ${director.name}`)
    if (r.kind !== 'unicast') return bypass(`${cur.name} has no usable route back to ${whom} (${r.kind})`)
    if (!r.gateway) {
      // on the link: the director's own address is the director
      if (to !== w.client.ip && director.isLocal(to)) return {kind: 'ok'}
      return bypass(`${cur.name} reaches ${formatIp(to)} directly on ${r.dev ?? '?'}: the replies go straight to ${to === w.client.ip ? 'the client' : 'it'}`)
    }
    const mine = director.isLocal(r.gateway)
    if (mine) return {kind: 'ok'}
    const next = w.ownerOf(r.gateway, cur)
    if (next === director) return {kind: 'ok'}
    if (mine === undefined && !next) return {kind: 'unknown', what: `whether ${formatIp(r.gateway)} (${cur.name}'s gateway toward the client) is ${director.name}: ${director.name} has no ip-addr.json`}
    if (!next || !next.rt) {
      // toward the client, a router that is not the director forwards the replies around it; toward the director's
      // own address, a router without a snapshot may well send them on to it (trace assumes it does)
      if (to !== w.client.ip) return {kind: 'unknown', what: `where ${formatIp(r.gateway)} (${cur.name}'s gateway toward ${formatIp(to)}) sends them: no snapshot of it`}
      return bypass(`${cur.name} sends the replies to ${formatIp(r.gateway)}${r.dev ? ` via ${r.dev}` : ''}, which is not ${director.name}`)
    }
    hops.push(`${cur.name} sends the replies to ${formatIp(r.gateway)} (${next.name})`)
    cur = next
    src = undefined
  }
  return bypass('the return route loops through more than 8 hops')
}

export default serviceRule(
  meta,
  (svc, w) => {
    const h = svc.host
    const k = ipvsKnobs(h)
    const nat = svc.backends.filter((b) => (b.method === 'masq' || b.method === 'dnat') && !b.local)
    const bypass: {b: Backend; reason: string; evidence: Evidence[]; post?: HookResult; masqNoHelp?: {to: IpAddr; reason: string}}[] = []
    /** backends whose connections are masqueraded, but whose replies to the masquerade address go elsewhere too */
    const snatBypass: {b: Backend; to: IpAddr; reason: string; evidence: Evidence[]; post: HookResult}[] = []
    const unknown: string[] = []
    // each backend described once (a kube-proxy service lists its backends twice: in the message and one by one)
    const descs: (string | undefined)[] = new Array(nat.length)
    const desc = (i: number) => (descs[i] ??= describeBackend(nat[i]!))
    let prev: ReturnType<typeof postrouting>
    const notracks = untracked(svc, w, nat)
    const notrack = notracks[0]?.rule
    for (let i = 0; i < nat.length; i++) {
      const b = nat[i]!
      prev = postrouting(svc, w, b, prev)
      const post = prev?.post
      const snat = post?.nat && (post.nat.kind === 'SNAT' || post.nat.kind === 'MASQUERADE')
      if (snat && (svc.kind === 'dnat' || k.vsConntrack) && !notrack) {
        // the replies go to the address the director masquerades to: a realserver whose policy routing sends
        // those elsewhere too (a rule `from` its own subnet to another gateway) still answers around the director
        const to = post!.nat!.kind === 'SNAT' ? post!.nat!.to?.ip : h.sourceFor(b.ip)
        if (!to || !b.owner) continue
        const v = returnPath(w, h, b.owner, answerSource(b.owner, svc.proto, b.ip, b.port || svc.probes[0]?.dport), to)
        if (v.kind === 'bypass') snatBypass.push({b, to, reason: v.reason, evidence: v.evidence, post: post!})
        continue
      }
      if (!b.owner) {
        unknown.push(`${desc(i)}: no snapshot of the host owning ${formatIp(b.ip)} (give it to check to verify its route back to the client)`)
        continue
      }
      // a UDP server on 0.0.0.0 answers without a bound source: `ip rule from ...` does not route its answers
      const v = returnPath(w, h, b.owner, answerSource(b.owner, svc.proto, b.ip, b.port || svc.probes[0]?.dport))
      if (v.kind === 'ok') continue
      if (v.kind === 'unknown') {
        unknown.push(`${desc(i)}: ${v.what}`)
        continue
      }
      // the fix would masquerade to the director's address toward the backend: no use if that goes astray too
      const masq = post?.nat ? undefined : h.sourceFor(b.ip)
      const m = masq ? returnPath(w, h, b.owner, answerSource(b.owner, svc.proto, b.ip, b.port || svc.probes[0]?.dport), masq) : undefined
      if (m?.kind === 'bypass') bypass.push({b, reason: v.reason, evidence: [...v.evidence, ...m.evidence], post, masqNoHelp: {to: masq!, reason: m.reason}})
      else bypass.push({b, reason: v.reason, evidence: v.evidence, post})
    }
    if (bypass.length === 0 && snatBypass.length > 0) return snatAstray(svc, h, snatBypass, unknown)
    if (bypass.length === 0) {
      if (unknown.length === 0) return undefined
      return unverifiedFinding(meta, h.name, `${h.name} NATs ${describeService(svc)} to ${nat.map((_, i) => desc(i)).join(', ')} without SNAT: the replies must route back through ${h.name}, which could not be checked for every backend.`, unknown, [ev(svc.loc)])
    }
    const fw = h.fw
    // IPVS traffic meets the nat table only with vs.conntrack=1 (ip_vs_notrack): a SNAT that exists does nothing
    // without it, and one to be added needs it too; but the switch is the whole director's (engine/vs-conntrack.ts)
    const needsCt = svc.kind === 'ipvs' && !k.vsConntrack
    const breaks = needsCt ? conntrackOnBreaks(h, w) : []
    const snatting = bypass.filter((x) => x.post?.nat).map((x) => x.post!.nat!.decision)
    const ops: FixOp[] = []
    if (breaks.length === 0) {
      for (const x of bypass) {
        if (x.post?.nat) continue // its SNAT/MASQUERADE is there: vs.conntrack=1 is what it lacks
        if (x.masqNoHelp) continue // the masquerade address is routed around the director too: a routing fix
        // a port-0 destination (persistent and fwmark services) keeps the client's port: no --dport then
        const port = x.b.port || svc.port
        const sel = {dst: hostPrefix(x.b.ip), proto: svc.proto, ...(port ? {dport: port} : {})}
        const d = x.post?.runs.find((r) => r.table === 'nat')?.decision
        if (fw && d) ops.push(...fw.fixer.masqueradeBefore(d, sel))
        else if (fw?.rulesets[0]) ops.push(...fw.fixer.insertAt(fw.rulesets[0], 'nat', 'POSTROUTING', Infinity, [...selectorSpec(sel), '-j', 'MASQUERADE'].join(' ')))
        else ops.push({kind: 'cmd', text: `iptables -t nat -A POSTROUTING ${[...selectorSpec(sel), '-j', 'MASQUERADE'].join(' ')}`})
      }
      if (needsCt) ops.push({kind: 'sysctl', key: 'net.ipv4.vs.conntrack', value: '1'})
      // the masquerading applies only to tracked packets: the service's packets out of the NOTRACK first
      if (notracks.length && bypass.some((x) => !x.masqNoHelp)) for (const u of notracks) ops.push(...exemptFromNotrack(svc, u))
    }
    const gw = h.sourceFor(bypass[0]!.b.ip)
    const route = `make ${h.name} the realservers' gateway for client traffic (on each realserver: ip route replace default via ${gw ? formatIp(gw) : `<${h.name}'s address>`})`
    const existing = locRefs(snatting.map((d) => d.loc))
    const summary =
      breaks.length > 0
        ? `${route}: masquerading IPVS traffic needs net.ipv4.vs.conntrack=1, which would break ${breaks.length === 1 ? 'the LVS-DR/TUN service' : 'the LVS-DR/TUN services'} of ${h.name} (see above), so there is no command to run on ${h.name}`
        : snatting.length === bypass.length && needsCt
          ? `either ${route}, or let the masquerading that is there (${existing}) apply with net.ipv4.vs.conntrack=1, without which IPVS packets never meet the nat table (persist it in /etc/sysctl.d)`
          : `either ${route}, or masquerade the balanced connections on ${h.name} so the replies return to it (the realservers then see ${h.name}'s address instead of the client's; the commands below${needsCt ? ', with net.ipv4.vs.conntrack=1 so that IPVS packets meet the nat table' : ''})`
    const astray = bypass.filter((x) => x.masqNoHelp)
    return finding(meta, h.name, {
      message:
        `${h.name} rewrites the destination of ${describeService(svc)} to its backends, but their replies to the client do not come back through ${h.name}, so they are never rewritten back (the client gets answers from the realserver's address and drops them):\n` +
        bypass.map((x) => `  ${describeBackend(x.b)} on ${x.b.owner!.name}: ${x.reason}` + (x.masqNoHelp ? `\n    masquerading on ${h.name} would not bring them back: their replies to ${h.name}'s address ${formatIp(x.masqNoHelp.to)} go astray too (${x.masqNoHelp.reason})` : '')).join('\n') +
        (snatBypass.length ? '\n' + snatBypass.map((x) => snatLine(h, x)).join('\n') : '') +
        (snatting.length && needsCt ? `\nThe masquerading is there (${existing}), but with net.ipv4.vs.conntrack=0 IPVS packets never meet the nat table.` : '') +
        notracks
          .map((u) =>
            u.side === 'request'
              ? `\n${locRef(u.rule.loc)} takes the client's packets out of connection tracking: IPVS balances them all the same, but nat POSTROUTING is consulted only for tracked packets, so no masquerading${snatting.length ? ` (${existing} is there)` : ''} applies to these connections until that rule spares them.`
              : `\n${locRef(u.rule.loc)} takes the backends' replies out of connection tracking: an untracked reply is never un-masqueraded, so it goes to ${h.name}'s own stack instead of the client until that rule spares it.`,
          )
          .join('') +
        (breaks.length ? `\nnet.ipv4.vs.conntrack=1 is not the way out here: it applies to the whole director and would break\n${breaks.map((x) => `  ${x}`).join('\n')}` : ''),
      evidence: [ev(svc.loc), ...bypass.flatMap((x) => [ev(x.b.loc), ...x.evidence]), ...snatting.map((d) => ev(d.loc)), ...notracks.map((u) => ev(u.rule.loc)), ...snatBypass.flatMap((x) => [ev(x.b.loc), ev(x.post.nat!.decision.loc), ...x.evidence]), ...(svc.kind === 'ipvs' ? k.evidence.filter((e) => e.text.startsWith('net.ipv4.vs.')) : [])],
      unverified: unknown,
      fix: {
        summary:
          astray.length === bypass.length
            ? // no command: masquerading would not help, and the realservers' policy routing decides before their main table
              `${routingFix(h, [...astray.map((x) => ({b: x.b, to: x.masqNoHelp!.to, evidence: x.evidence})), ...snatBypass])}, then masquerade the balanced connections on ${h.name}; or route the realservers' replies to the clients through ${h.name}, policy routing included (a rule that picks another table decides before the main table's default route)`
            : (astray.length || snatBypass.length ? `${summary}; and ${routingFix(h, [...astray.map((x) => ({b: x.b, to: x.masqNoHelp!.to, evidence: x.evidence})), ...snatBypass])}` : summary) +
              (notracks.length ? `; masquerading needs tracked packets: spare the service from ${locRefs(notracks.map((u) => u.rule.loc))} (an accept before it in the raw table ends the chain there)` : ''),
        ops,
      },
    })
  },
  (svc) => svc.backends.some((b) => (b.method === 'masq' || b.method === 'dnat') && !b.local),
)

/** A masqueraded backend whose replies to the masquerade address are routed around the director. */
function snatLine(h: HostView, x: {b: Backend; to: IpAddr; reason: string; post: HookResult}): string {
  const how = x.post.nat!.kind === 'SNAT' ? `SNATs it to ${formatIp(x.to)}` : `masquerades it to its address ${formatIp(x.to)}`
  return `  ${describeBackend(x.b)} on ${x.b.owner!.name}: ${h.name} ${how} (${locRefs([x.post.nat!.decision.loc])}), but the replies to ${formatIp(x.to)} do not come back either: ${x.reason}`
}

/** The routing change for replies to the director's own address (no command: it depends on why they go astray). */
function routingFix(h: HostView, xs: readonly {b: Backend; to: IpAddr; evidence?: readonly Evidence[]}[]): string {
  const per = [...new Map(xs.map((x) => [`${x.b.owner!.name} ${formatIp(x.to)}`, x])).values()]
  const pref = (x: (typeof per)[number]): string => {
    // a lower number than the policy rule that diverts them (rules are tried in ascending preference)
    const prios = (x.evidence ?? []).filter((e) => e.file === 'ip-rule.json' && (e.host ?? x.b.owner!.name) === x.b.owner!.name).map((e) => Number(/^(\d+):/.exec(e.text)?.[1])).filter((n) => Number.isFinite(n) && n > 0 && n < 32766)
    return prios.length ? String(Math.min(...prios) - 1) : '<a number lower than the rule that diverts them>'
  }
  return `route the replies to ${h.name}'s address back through ${h.name} on ${per.map((x) => `${x.b.owner!.name} (to ${formatIp(x.to)}: e.g. \`ip rule add to ${formatIp(x.to)} lookup main pref ${pref(x)}\`)`).join(', ')}`
}

/** Every NAT backend is masqueraded, but some answer the masquerade address around the director. */
function snatAstray(svc: LbService, h: HostView, xs: readonly {b: Backend; to: IpAddr; reason: string; evidence: Evidence[]; post: HookResult}[], unknown: string[]) {
  return finding(meta, h.name, {
    message:
      `${h.name} masquerades the connections of ${describeService(svc)} so that the replies come back to it, but some backends route the replies to ${h.name}'s address elsewhere, so they are never rewritten back (the client gets no answer from the service):\n` +
      xs.map((x) => snatLine(h, x)).join('\n'),
    evidence: [ev(svc.loc), ...xs.flatMap((x) => [ev(x.b.loc), ev(x.post.nat!.decision.loc), ...x.evidence])],
    unverified: unknown,
    fix: {summary: routingFix(h, xs), ops: []},
  })
}
