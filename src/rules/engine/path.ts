// A packet's way through one host's hooks, in the order the kernel calls them:
//   received:  PREROUTING -> routing -> INPUT (local) | FORWARD -> POSTROUTING
//   sent:      OUTPUT -> POSTROUTING
// IPVS takes a VIP packet at LOCAL_IN after the filter table (firewall.ts), so "reached IPVS" means
// "accepted by INPUT". This is not the trace dataplane: it runs one packet with a conntrack state given by
// the model (ctmodel.ts) and reports where it was decided.
import type {IpAddr} from '../../model/ip.js'
import type {CtState, IptablesRuleset} from '../../model/iptables.js'
import type {Packet} from '../../dataplane/packet.js'
import {HOOK_TABLES, type Decision, type Hook, type HookResult} from './firewall.js'
import {ctView, natConsulted} from './ctmodel.js'
import {UNKNOWN_IF, type HostView} from './host.js'

export interface PathResult {
  readonly hooks: readonly HookResult[]
  /** the hook and rule that dropped or rejected the packet */
  readonly blocked?: {readonly hook: HookResult; readonly decision: Decision}
  /** where the packet went when not blocked */
  readonly to?: 'local' | 'forward' | 'out'
  readonly packet: Packet
  /** the packet was evaluated without a firewall in the snapshot */
  readonly noFirewall: boolean
  /** what the evaluation had to guess (an interface the snapshot cannot name, used by -i/-o matches) */
  readonly guesses: readonly string[]
}

interface PathOpts {
  readonly state: CtState
  readonly dir?: 'ORIGINAL' | 'REPLY'
  readonly ctMark?: number
  readonly iif?: string
  readonly oif?: string
  /** addresses to treat as local when the snapshot has no addresses (a DNAT balancer's assumed VIP) */
  readonly assumeLocal?: readonly IpAddr[]
  /** force the routing decision (the caller knows the packet is for this host, e.g. an IPVS VIP) */
  readonly local?: boolean
}

function finish(hooks: HookResult[], packet: Packet, to: PathResult['to'], guesses: string[]): PathResult {
  const last = hooks.at(-1)
  if (last && last.verdict !== 'ACCEPT' && last.decision) return {hooks, blocked: {hook: last, decision: last.decision}, packet, noFirewall: false, guesses}
  return {hooks, to, packet, noFirewall: false, guesses}
}

/** Per ruleset, once: the tables with a rule that matches on an input / output interface (other than lo). */
const ifaceTables = new WeakMap<IptablesRuleset, {readonly in: ReadonlySet<string>; readonly out: ReadonlySet<string>}>()

function tablesUsingIface(rs: IptablesRuleset): {readonly in: ReadonlySet<string>; readonly out: ReadonlySet<string>} {
  let u = ifaceTables.get(rs)
  if (!u) {
    const used = {in: new Set<string>(), out: new Set<string>()}
    for (const [name, t] of rs.tables) {
      for (const c of t.chains.values()) for (const r of c.rules) for (const m of r.matches) if (m.kind === 'iface' && m.name !== 'lo') used[m.dir].add(name)
    }
    u = used
    ifaceTables.set(rs, u)
  }
  return u
}

/** Does any rule of the tables at these hooks match on an input/output interface (other than lo)? */
function usesIface(h: HostView, hooks: readonly Hook[], dir: 'in' | 'out'): boolean {
  for (const rs of h.fw?.rulesets ?? []) {
    const used = tablesUsingIface(rs)[dir]
    if (used.size === 0) continue
    for (const hook of hooks) for (const t of HOOK_TABLES[hook]) if (used.has(t)) return true
  }
  return false
}

function guessNotes(h: HostView, hooks: readonly Hook[], iif: string | undefined, oif: string | undefined): string[] {
  const out: string[] = []
  if (iif === UNKNOWN_IF && usesIface(h, hooks, 'in')) out.push(`the interface the packet arrives on is not known (no ip-addr.json/ip-route.json): -i matches were taken as not matching`)
  if (oif === UNKNOWN_IF && usesIface(h, hooks, 'out')) out.push(`the interface the packet leaves by is not known (no ip-route.json): -o matches were taken as not matching`)
  return out
}

/** A packet received by the host: PREROUTING, then INPUT or FORWARD + POSTROUTING. */
export function received(h: HostView, pkt: Packet, o: PathOpts): PathResult {
  const fw = h.fw
  if (!fw) return {hooks: [], to: o.local ? 'local' : 'forward', packet: pkt, noFirewall: true, guesses: []}
  const ct = ctView(o.state, o.dir, o.ctMark ?? 0)
  const nat = natConsulted(o.state) && (o.dir ?? 'ORIGINAL') === 'ORIGINAL'
  const iif = o.iif ?? UNKNOWN_IF
  const hooks: HookResult[] = []
  const pre = fw.runHook('PREROUTING', pkt, h.env({iif, ct, assumeLocal: o.assumeLocal}), nat)
  hooks.push(pre)
  if (pre.verdict !== 'ACCEPT') return finish(hooks, pre.packet, undefined, guessNotes(h, ['PREROUTING'], iif, undefined))
  let p = pre.packet
  const ct2 = {...ct, mark: pre.ctMark, state: pre.notrack ? ('UNTRACKED' as const) : ct.state}
  const dnatted = pre.nat?.kind === 'DNAT' || pre.nat?.kind === 'REDIRECT'
  const local = pre.nat?.kind === 'REDIRECT' || (o.local && !dnatted) || (h.isLocal(p.dst) ?? (!dnatted && !!o.assumeLocal?.some((a) => a.value === p.dst.value)))
  if (local) {
    const input = fw.runHook('INPUT', p, h.env({iif, ct: ct2, assumeLocal: o.assumeLocal}), nat && !pre.notrack)
    hooks.push(input)
    return finish(hooks, input.packet, 'local', guessNotes(h, ['PREROUTING', 'INPUT'], iif, undefined))
  }
  const oif = o.oif ?? h.oifFor(p.dst, p.src, p.mark) ?? UNKNOWN_IF
  const fwd = fw.runHook('FORWARD', p, h.env({iif, oif, ct: ct2, assumeLocal: o.assumeLocal}), false)
  hooks.push(fwd)
  const g = guessNotes(h, ['PREROUTING', 'FORWARD', 'POSTROUTING'], iif, oif)
  if (fwd.verdict !== 'ACCEPT') return finish(hooks, fwd.packet, undefined, g)
  p = fwd.packet
  const post = fw.runHook('POSTROUTING', p, h.env({oif, ct: {...ct2, mark: fwd.ctMark}, assumeLocal: o.assumeLocal}), nat && !pre.notrack)
  hooks.push(post)
  return finish(hooks, post.packet, 'forward', g)
}

/**
 * Equal as inputs of a path: the same own keys, with values that are identical, addresses of one value, TCP
 * flags with the same bits, or lists of such (anything else must be the same object: a conservative test).
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false
    const x = (a as Record<string, unknown>)[k]
    const y = (b as Record<string, unknown>)[k]
    if (x === y) continue
    // nested objects: only addresses ({family, value}) and TCP flags (booleans) compare by value
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null || Array.isArray(x)) {
      if (!Array.isArray(x) || !sameValue(x, y)) return false
      continue
    }
    if (!flatEqual(x, y)) return false
  }
  return true
}

/** Objects whose values are all primitives, equal key by key. */
function flatEqual(a: object, b: object): boolean {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) {
    const x = (a as Record<string, unknown>)[k]
    if (typeof x === 'object' && x !== null) return false
    if (!Object.hasOwn(b, k) || x !== (b as Record<string, unknown>)[k]) return false
  }
  return true
}

/**
 * The last packet sent, and what became of it: a rule replays the same packet for each backend of a service
 * (localhost-dnat: every node-port backend), and a path is a function of the host, the packet and the options.
 */
let lastSent: {readonly h: HostView; readonly pkt: Packet; readonly o: PathOpts; readonly r: PathResult} | undefined

/** A packet the host sends (a local process, or IPVS's transmit through LOCAL_OUT): OUTPUT + POSTROUTING. */
export function sent(h: HostView, pkt: Packet, o: PathOpts): PathResult {
  const last = lastSent
  if (last && last.h === h && sameValue(last.pkt, pkt) && sameValue(last.o, o)) return last.r
  const r = sentUncached(h, pkt, o)
  lastSent = {h, pkt, o, r}
  return r
}

function sentUncached(h: HostView, pkt: Packet, o: PathOpts): PathResult {
  const fw = h.fw
  if (!fw) return {hooks: [], to: 'out', packet: pkt, noFirewall: true, guesses: []}
  const ct = ctView(o.state, o.dir, o.ctMark ?? 0)
  const nat = natConsulted(o.state) && (o.dir ?? 'ORIGINAL') === 'ORIGINAL'
  const oif = o.oif ?? h.oifFor(pkt.dst, pkt.src, pkt.mark) ?? UNKNOWN_IF
  const hooks: HookResult[] = []
  const out = fw.runHook('OUTPUT', pkt, h.env({oif, ct, assumeLocal: o.assumeLocal}), nat)
  hooks.push(out)
  const g = guessNotes(h, ['OUTPUT', 'POSTROUTING'], undefined, oif)
  if (out.verdict !== 'ACCEPT') return finish(hooks, out.packet, undefined, g)
  const oif2 = out.nat?.kind === 'DNAT' ? (h.oifFor(out.packet.dst, out.packet.src, out.packet.mark) ?? oif) : oif
  const post = fw.runHook('POSTROUTING', out.packet, h.env({oif: oif2, ct: {...ct, mark: out.ctMark}, assumeLocal: o.assumeLocal}), nat && !out.notrack)
  hooks.push(post)
  return finish(hooks, post.packet, 'out', g)
}

/** The rules the packet matched on its way (jumps, marks, accepts), for evidence. */
export function acceptingDecision(r: PathResult, hookName: HookResult['hook'], table = 'filter'): Decision | undefined {
  const hook = r.hooks.find((x) => x.hook === hookName)
  return hook?.runs.find((run) => run.table === table)?.decision
}
