// A packet's way through one host's hooks, in the order the kernel calls them:
//   received:  PREROUTING -> routing -> INPUT (local) | FORWARD -> POSTROUTING
//   sent:      OUTPUT -> POSTROUTING
// IPVS takes a VIP packet at LOCAL_IN after the filter table (firewall.ts), so "reached IPVS" means
// "accepted by INPUT". This is not the trace dataplane: it runs one packet with a conntrack state given by
// the model (ctmodel.ts) and reports where it was decided.
import type {IpAddr} from '../../model/ip.js'
import type {CtState, IptablesRuleset, IptRule, Match} from '../../model/iptables.js'
import {invertTuple, tupleOf, type IpvsView, type Packet, type Tuple} from '../../dataplane/packet.js'
import {HOOK_TABLES, type Decision, type Hook, type HookResult} from './firewall.js'
import {ctView, natConsulted, type FlowPacket} from './ctmodel.js'
import {UNKNOWN_IF, type HostView} from './host.js'
import {addrClass, routeSrcClass, type Scope} from './classes.js'
import {flowPacket, type Endpoints} from './packets.js'

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
  /**
   * receivedSharingTail: the hooks after PREROUTING are another packet's of the same class (same verdicts and
   * decisions; the packets they show, and `packet`, are that other packet's)
   */
  readonly shared?: boolean
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
  /** the packet carries IPVS's mark (skb->ipvs_property, `-m ipvs --ipvs`): sent by IPVS's transmitter */
  readonly ipvs?: IpvsView
  /** received(): the connection was SNATed here (IPS_SRC_NAT: `--ctstate SNAT`, nft `ct status snat` match) */
  readonly snat?: boolean
}

function finish(hooks: HookResult[], packet: Packet, to: PathResult['to'], guesses: string[], shared?: true): PathResult {
  const last = hooks.at(-1)
  if (last && last.verdict !== 'ACCEPT' && last.decision) {
    return shared ? {hooks, blocked: {hook: last, decision: last.decision}, packet, noFirewall: false, guesses, shared} : {hooks, blocked: {hook: last, decision: last.decision}, packet, noFirewall: false, guesses}
  }
  return shared ? {hooks, to, packet, noFirewall: false, guesses, shared} : {hooks, to, packet, noFirewall: false, guesses}
}

/** What one pass over a ruleset's rules finds (a kube-proxy dump: 100,000 rules; a pass costs ~10 ms, so one serves all). */
export interface RulesetFacts {
  /** the tables with a rule that matches on an input / output interface (other than lo) */
  readonly in: ReadonlySet<string>
  readonly out: ReadonlySet<string>
  /** the DNAT rules of the nat table, in table order (chains as declared, rules in chain order) */
  readonly natDnat: readonly IptRule[]
  /** the DNAT and REDIRECT rules of the nat table, in table order (world.ts: the rules a DNAT service may come from) */
  readonly natTargets: readonly IptRule[]
  /** a rule matches on the conntrack tuples (--ctorigsrc/--ctorigdst/--ctreplsrc..., --ctorigdstport...) */
  readonly ctTuple: boolean
}

const facts = new WeakMap<IptablesRuleset, RulesetFacts>()

/**
 * The facts of a ruleset, found once. `visit`, when given, is told every match of every rule (tables, chains and
 * rules in order) during the same pass, or during a pass of its own when the facts are known already: a caller
 * that needs a pass over the matches too (world.ts: the addresses the rules name) shares this one.
 */
export function rulesetFacts(rs: IptablesRuleset, visit?: (m: Match) => void): RulesetFacts {
  let u = facts.get(rs)
  if (u) {
    if (visit) visitMatches(rs, visit)
    return u
  }
  const used = {in: new Set<string>(), out: new Set<string>()}
  const natDnat: IptRule[] = []
  const natTargets: IptRule[] = []
  let ctTuple = false
  // indexed loops and forEach: this runs once over ~100,000 rules, mostly before it is optimised, where each step
  // of a for-of allocates
  rs.tables.forEach((t, name) => {
    const nat = name === 'nat'
    let dirs = 0
    let done = false
    t.chains.forEach((c) => {
      if (done) return
      const rules = c.rules
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!
        if (nat) {
          const tk = r.target?.kind
          if (tk === 'DNAT') natDnat.push(r)
          if (tk === 'DNAT' || tk === 'REDIRECT') natTargets.push(r)
        }
        const ms = r.matches
        for (let j = 0; j < ms.length; j++) {
          const m = ms[j]!
          if (visit) visit(m)
          const k = m.kind
          if (k === 'ctaddr' || k === 'ctport') ctTuple = true
          // the interfaces, until both directions are found in this table
          else if (k === 'iface' && dirs !== 3 && m.name !== 'lo') {
            used[m.dir].add(name)
            dirs |= m.dir === 'in' ? 1 : 2
          }
        }
      }
      if (dirs === 3 && !nat && ctTuple && !visit) done = true
    })
  })
  u = {in: used.in, out: used.out, natDnat, natTargets, ctTuple}
  facts.set(rs, u)
  return u
}

function visitMatches(rs: IptablesRuleset, visit: (m: Match) => void): void {
  rs.tables.forEach((t) => {
    t.chains.forEach((c) => {
      const rules = c.rules
      for (let i = 0; i < rules.length; i++) {
        const ms = rules[i]!.matches
        for (let j = 0; j < ms.length; j++) visit(ms[j]!)
      }
    })
  })
}

const tupleUse = new WeakMap<HostView, boolean>()

/**
 * Do the host's rules look at the conntrack tuples (iptables --ctorigdst and the like; an nft ruleset may, with `ct
 * original daddr`)? Only then are the modelled entries given their tuples (a kube-proxy check makes ~10^5 of them).
 */
function needsTuples(h: HostView): boolean {
  let v = tupleUse.get(h)
  if (v === undefined) {
    // nft: `ct original daddr` and the like carry a direction in the JSON ({"ct": {"key": ..., "dir": "original"}})
    v = !!h.fw && (h.fw.rulesets.some((rs) => rulesetFacts(rs).ctTuple) || (h.fw.kind !== 'iptables' && /"dir"\s*:\s*"(original|reply)"/.test(h.snap.raw.get('nft-ruleset.json') ?? '')))
    tupleUse.set(h, v)
  }
  return v
}

/** The view's tuples for a packet of the direction `dir` (the original tuple before any NAT of this packet). */
function withTuples<T extends {readonly dir: 'ORIGINAL' | 'REPLY'}>(ct: T, p: Packet): T & {orig: Tuple; reply: Tuple} {
  const t = tupleOf(p)
  return ct.dir === 'REPLY' ? {...ct, orig: invertTuple(t), reply: t} : {...ct, orig: t, reply: invertTuple(t)}
}

/** Does any rule of the tables at these hooks match on an input/output interface (other than lo)? */
function usesIface(h: HostView, hooks: readonly Hook[], dir: 'in' | 'out'): boolean {
  for (const rs of h.fw?.rulesets ?? []) {
    const used = rulesetFacts(rs)[dir]
    if (used.size === 0) continue
    for (const hook of hooks) for (const t of HOOK_TABLES[hook]) if (used.has(t)) return true
  }
  return false
}

// The hook lists the paths ask about (constants: the answers are remembered per host and list)
const PRE: readonly Hook[] = ['PREROUTING']
const PRE_IN: readonly Hook[] = ['PREROUTING', 'INPUT']
const PRE_FWD_POST: readonly Hook[] = ['PREROUTING', 'FORWARD', 'POSTROUTING']
const OUT_POST: readonly Hook[] = ['OUTPUT', 'POSTROUTING']

/** per host, per hook list: [uses -i, uses -o] (a check asks for every simulated packet) */
const ifaceUse = new WeakMap<HostView, Map<readonly Hook[], readonly [boolean, boolean]>>()

function ifaceUseOf(h: HostView, hooks: readonly Hook[]): readonly [boolean, boolean] {
  let m = ifaceUse.get(h)
  if (!m) {
    m = new Map()
    ifaceUse.set(h, m)
  }
  let u = m.get(hooks)
  if (!u) {
    u = [usesIface(h, hooks, 'in'), usesIface(h, hooks, 'out')]
    m.set(hooks, u)
  }
  return u
}

const IIF_NOTE = `the interface the packet arrives on is not known (no ip-addr.json/ip-route.json): -i matches were taken as not matching`
const OIF_NOTE = `the interface the packet leaves by is not known (no ip-route.json): -o matches were taken as not matching`

function guessNotes(h: HostView, hooks: readonly Hook[], iif: string | undefined, oif: string | undefined): string[] {
  if (iif !== UNKNOWN_IF && oif !== UNKNOWN_IF) return []
  const out: string[] = []
  const [usesIn, usesOut] = ifaceUseOf(h, hooks)
  if (iif === UNKNOWN_IF && usesIn) out.push(IIF_NOTE)
  if (oif === UNKNOWN_IF && usesOut) out.push(OIF_NOTE)
  return out
}

/** A packet received by the host: PREROUTING, then INPUT or FORWARD + POSTROUTING. */
export function received(h: HostView, pkt: Packet, o: PathOpts): PathResult {
  return receivedPath(h, pkt, o, false)
}

/**
 * received(), with FORWARD and POSTROUTING evaluated once per class of forwarded packets that no rule there
 * can tell apart (the packets of a DNAT balancer's services, after the DNAT, to thousands of backends): the
 * verdicts, decisions and guesses are the packet's own, but when the result says `shared`, the packets it
 * shows after PREROUTING (the hooks' and `packet`) are another member's of the class. For callers that read
 * no packet from the result (or replay it with received() when they need one).
 */
export function receivedSharingTail(h: HostView, pkt: Packet, o: PathOpts, keepPre?: (pre: HookResult) => void): PathResult {
  return receivedPath(h, pkt, o, true, undefined, keepPre)
}

/**
 * received(), with PREROUTING's result given: `pre` is what the PREROUTING hook gave this packet with these options
 * (receivedSharingTail's `keepPre` is told it; that part of a path is never shared). The rest is this packet's own.
 */
export function receivedAfterPre(h: HostView, pkt: Packet, o: PathOpts, pre: HookResult): PathResult {
  return receivedPath(h, pkt, o, false, pre)
}

function receivedPath(h: HostView, pkt: Packet, o: PathOpts, share: boolean, known0?: HookResult, keepPre?: (pre: HookResult) => void): PathResult {
  const fw = h.fw
  if (!fw) return {hooks: [], to: o.local ? 'local' : 'forward', packet: pkt, noFirewall: true, guesses: []}
  const tuples = needsTuples(h)
  const ctBase = ctView(o.state, o.dir, o.ctMark ?? 0)
  const ct0 = o.snat ? {...ctBase, status: new Set([...ctBase.status, 'SNAT'])} : ctBase
  const ct = tuples ? withTuples(ct0, pkt) : ct0
  const nat = natConsulted(o.state) && (o.dir ?? 'ORIGINAL') === 'ORIGINAL'
  const iif = o.iif ?? UNKNOWN_IF
  const hooks: HookResult[] = []
  const pre = known0 ?? fw.runHook('PREROUTING', pkt, h.env({iif, ct, assumeLocal: o.assumeLocal}), nat)
  keepPre?.(pre)
  hooks.push(pre)
  if (pre.verdict !== 'ACCEPT') return finish(hooks, pre.packet, undefined, guessNotes(h, PRE, iif, undefined))
  let p = pre.packet
  const dnatted = pre.nat?.kind === 'DNAT' || pre.nat?.kind === 'REDIRECT'
  // the binding sets IPS_DST_NAT: `-m conntrack --ctstate DNAT` and nft `ct status dnat` match from here on; the
  // reply tuple is the translated packet's, inverted
  const ct2 = {
    ...ct,
    mark: pre.ctMark,
    state: pre.notrack ? ('UNTRACKED' as const) : ct.state,
    ...(dnatted && !pre.notrack ? {status: withDnat(ct.status), ...(tuples ? {reply: invertTuple(tupleOf(p))} : {})} : {}),
  }
  const local = pre.nat?.kind === 'REDIRECT' || (o.local && !dnatted) || (h.isLocal(p.dst) ?? (!dnatted && !!o.assumeLocal?.some((a) => a.value === p.dst.value)))
  if (local) {
    const input = fw.runHook('INPUT', p, h.env({iif, ct: ct2, assumeLocal: o.assumeLocal}), nat && !pre.notrack)
    hooks.push(input)
    return finish(hooks, input.packet, 'local', guessNotes(h, PRE_IN, iif, undefined))
  }
  const oif = o.oif ?? h.oifFor(p.dst, p.src, p.mark) ?? UNKNOWN_IF
  const g = guessNotes(h, PRE_FWD_POST, iif, oif)
  const natPost = nat && !pre.notrack
  const key = share ? tailKey(h, p, iif, oif, o, ct2, natPost) : undefined
  const memo = key === undefined ? undefined : tailMemoOf(h)
  const known = key === undefined ? undefined : memo!.get(key)
  if (known) {
    hooks.push(known.fwd)
    if (known.fwd.verdict !== 'ACCEPT') return finish(hooks, known.fwd.packet, undefined, g, true)
    hooks.push(known.post!)
    return finish(hooks, known.post!.packet, 'forward', g, true)
  }
  const fwd = fw.runHook('FORWARD', p, h.env({iif, oif, ct: ct2, assumeLocal: o.assumeLocal}), false)
  hooks.push(fwd)
  if (fwd.verdict !== 'ACCEPT') {
    if (key !== undefined) memo!.set(key, {fwd})
    return finish(hooks, fwd.packet, undefined, g)
  }
  p = fwd.packet
  const post = fw.runHook('POSTROUTING', p, h.env({oif, ct: {...ct2, mark: fwd.ctMark}, assumeLocal: o.assumeLocal}), natPost)
  hooks.push(post)
  if (key !== undefined) memo!.set(key, {fwd, post})
  return finish(hooks, post.packet, 'forward', g)
}

// ---- the forwarded part of received paths, once per class (receivedSharingTail) ------------------------

const TAIL_NAT: Scope = {hooks: ['FORWARD', 'POSTROUTING'], nat: true}
const TAIL_NO_NAT: Scope = {hooks: ['FORWARD', 'POSTROUTING'], nat: false}

/** The fields of a packet (dataplane/packet.ts) and of a conntrack view a tail key covers; any other field: no sharing. */
const PACKET_FIELDS = new Set(['family', 'src', 'dst', 'proto', 'sport', 'dport', 'flags', 'payload', 'mark'])
const CT_FIELDS = new Set(['state', 'dir', 'status', 'mark'])

function onlyFields(x: object, known: ReadonlySet<string>): boolean {
  for (const k in x) if (!known.has(k)) return false
  return true
}

function flagBits(p: Packet): number {
  const f = p.flags
  if (!f) return -1
  return (f.syn ? 1 : 0) | (f.ack ? 2 : 0) | (f.fin ? 4 : 0) | (f.rst ? 8 : 0) | (f.psh ? 16 : 0) | (f.urg ? 32 : 0)
}

/**
 * Everything FORWARD and POSTROUTING see of a forwarded packet, with its addresses as classes of the rules of
 * those two hooks: the packet, the interfaces, the conntrack view (its status follows from the state asked
 * for), whether the nat table is consulted. The addresses taken as local (a DNAT service's own VIP) reach
 * the hooks only through the route type an addrtype match asks for, which the address classes hold.
 * undefined: not a packet of the fields known here (an ICMP error, a tracked tuple): no sharing.
 */
function tailKey(h: HostView, p: Packet, iif: string, oif: string, o: PathOpts, ct2: {readonly state: CtState; readonly dir: string; readonly mark: number; readonly status: ReadonlySet<string>}, natPost: boolean): string | undefined {
  if (!onlyFields(p, PACKET_FIELDS) || !onlyFields(ct2, CT_FIELDS) || (p.flags && !onlyFields(p.flags, FLAG_FIELDS))) return undefined
  const scope = natPost ? TAIL_NAT : TAIL_NO_NAT
  return (
    `${addrClass(h, scope, 'dst', p.dst, o.assumeLocal)}|${addrClass(h, scope, 'src', p.src, o.assumeLocal)}|${p.family}|${p.proto}|${p.sport}|${p.dport}|${p.mark}|${flagBits(p)}|${p.payload}|` +
    `${iif}|${oif}|${o.state}|${ct2.state}|${ct2.dir}|${ct2.mark}|${natPost}|${ct2.status.has('DNAT') ? 'D' : ''}${ct2.status.has('SNAT') ? 'S' : ''}` +
    // a firewall classes.ts cannot analyse (nft) may ask the route type of an address in ways the classes do not hold
    (h.fw?.kind === 'iptables' ? '' : `|${addrs(o.assumeLocal)}`)
  )
}

const FLAG_FIELDS = new Set(['syn', 'ack', 'fin', 'rst', 'psh', 'urg'])

const tails = new WeakMap<HostView, Map<string, {readonly fwd: HookResult; readonly post?: HookResult}>>()

function tailMemoOf(h: HostView): Map<string, {readonly fwd: HookResult; readonly post?: HookResult}> {
  let m = tails.get(h)
  if (!m) {
    m = new Map()
    tails.set(h, m)
  }
  return m
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
  const ct0 = ctView(o.state, o.dir, o.ctMark ?? 0)
  const ct = needsTuples(h) ? withTuples(ct0, pkt) : ct0
  const nat = natConsulted(o.state) && (o.dir ?? 'ORIGINAL') === 'ORIGINAL'
  const oif = o.oif ?? h.oifFor(pkt.dst, pkt.src, pkt.mark) ?? UNKNOWN_IF
  const hooks: HookResult[] = []
  const out = fw.runHook('OUTPUT', pkt, h.env({oif, ct, assumeLocal: o.assumeLocal, ipvs: o.ipvs}), nat)
  hooks.push(out)
  const g = guessNotes(h, OUT_POST, undefined, oif)
  if (out.verdict !== 'ACCEPT') return finish(hooks, out.packet, undefined, g)
  const oif2 = out.nat?.kind === 'DNAT' ? (h.oifFor(out.packet.dst, out.packet.src, out.packet.mark) ?? oif) : oif
  const post = fw.runHook('POSTROUTING', out.packet, h.env({oif: oif2, ct: {...ct, mark: out.ctMark}, assumeLocal: o.assumeLocal, ipvs: o.ipvs}), nat && !out.notrack)
  hooks.push(post)
  return finish(hooks, post.packet, 'out', g)
}

/** The rules the packet matched on its way (jumps, marks, accepts), for evidence. */
export function acceptingDecision(r: PathResult, hookName: HookResult['hook'], table = 'filter'): Decision | undefined {
  const hook = r.hooks.find((x) => x.hook === hookName)
  return hook?.runs.find((run) => run.table === table)?.decision
}

// ---- one evaluation per class of packets ---------------------------------------------------------------
// A rule that replays the same packet for each of thousands of backends (their replies, the packets sent to
// them) needs one evaluation per class of backend addresses that the rules on the way can tell apart
// (classes.ts). The result returned is the first packet's of the class: its verdicts, decisions, NAT
// bindings and guesses are every member's, but the packets it shows (`packet` of the result and of each hook,
// the runs' packets) are that first packet's. Callers use it only where they read no packet from it.
//
// The memos are nested maps keyed by the inputs one at a time (no key text built per call: a check asks
// ~100,000 times); the inputs a run of calls shares are one `context` text, built when they change.

/** The tables a received packet can meet: every hook of received(), nat when the state consults it. */
const RECEIVED_HOOKS: readonly Hook[] = ['PREROUTING', 'INPUT', 'FORWARD', 'POSTROUTING']
const RECEIVED_NAT: Scope = {hooks: RECEIVED_HOOKS, nat: true}
const RECEIVED_NO_NAT: Scope = {hooks: RECEIVED_HOOKS, nat: false}

type Level<K, V> = Map<K, V>

/** A map level of a memo (get, or make and insert). */
function level<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k)
  if (v === undefined) {
    v = make()
    m.set(k, v)
  }
  return v
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const makeMap = (): Map<any, any> => new Map()

/** A stable text for an address (interned per address object: callers pass the same objects again and again). */
const ipTexts = new WeakMap<IpAddr, string>()

function ipText(ip: IpAddr): string {
  let t = ipTexts.get(ip)
  if (t === undefined) {
    t = `${ip.family}:${ip.value}`
    ipTexts.set(ip, t)
  }
  return t
}

function addrs(a: readonly IpAddr[] | undefined): string {
  if (!a) return '-'
  let s = ''
  for (const x of a) s += `${ipText(x)},`
  return s
}

// The last source class asked for (a rule asks for the replies of one backend in a row); no object per call
let lastSrcHost: HostView | undefined
let lastSrcIp: IpAddr | undefined
let lastSrcScope: Scope | undefined
let lastSrcAssumed: readonly IpAddr[] | undefined
let lastSrcKey = ''

function srcClassKey(h: HostView, ip: IpAddr, scope: Scope, assumeLocal: readonly IpAddr[] | undefined): string {
  if (lastSrcHost === h && lastSrcIp === ip && lastSrcScope === scope && lastSrcAssumed === assumeLocal) return lastSrcKey
  // the firewall's view of the source, and the routing's (policy rules by source decide the output interface)
  const fwClass = addrClass(h, scope, 'src', ip, assumeLocal)
  const rtClass = routeSrcClass(h, ip)
  // a firewall class never holds '/'
  const key = rtClass ? `${fwClass}/${rtClass}` : fwClass
  lastSrcHost = h
  lastSrcIp = ip
  lastSrcScope = scope
  lastSrcAssumed = assumeLocal
  lastSrcKey = key
  return key
}

/**
 * The class of `ip` as the source of packets received by `h` (receivedBySrcClass), with or without the nat
 * table on the way: with it, the class is finer, and valid for either.
 */
export function receivedSrcClass(h: HostView, ip: IpAddr, nat: boolean, assumeLocal?: readonly IpAddr[]): string {
  return srcClassKey(h, ip, nat ? RECEIVED_NAT : RECEIVED_NO_NAT, assumeLocal)
}

/** received(): per host, context -> kind -> state -> source class -> source port -> result */
const received_ = new WeakMap<HostView, Level<string, Level<FlowPacket, Level<CtState, Level<string, Level<number, PathResult>>>>>>()

/** The received() inputs other than the source, its port, the kind and the state, as text; remembered for the last call. */
let lastRecv: {dst: IpAddr; dport: number; proto: string; mark: number; dir?: string; ctMark?: number; iif?: string; oif?: string; local?: boolean; assumeLocal?: readonly IpAddr[]; key: string} | undefined

function recvContext(e: Endpoints, o: PathOpts): string {
  const l = lastRecv
  const mark = e.mark ?? 0
  if (
    l &&
    l.dst === e.dst &&
    l.dport === e.dport &&
    l.proto === e.proto &&
    l.mark === mark &&
    l.dir === o.dir &&
    l.ctMark === o.ctMark &&
    l.iif === o.iif &&
    l.oif === o.oif &&
    l.local === o.local &&
    l.assumeLocal === o.assumeLocal
  )
    return l.key
  const key = `${ipText(e.dst)}|${e.dport}|${e.proto}|${mark}|${o.dir ?? ''}|${o.ctMark ?? 0}|${o.iif ?? ''}|${o.oif ?? ''}|${o.local ?? ''}|${addrs(o.assumeLocal)}`
  lastRecv = {dst: e.dst, dport: e.dport, proto: e.proto, mark, dir: o.dir, ctMark: o.ctMark, iif: o.iif, oif: o.oif, local: o.local, assumeLocal: o.assumeLocal, key}
  return key
}

/**
 * received() of the packet `kind` between the endpoints, evaluated once per class of source addresses (see
 * above): the packet is the caller's own, the result may be another member's of the class.
 */
export function receivedBySrcClass(h: HostView, e: Endpoints, kind: FlowPacket, o: PathOpts): {readonly packet: Packet; readonly result: PathResult} {
  const packet = flowPacket(e, kind)
  if (!h.fw) return {packet, result: received(h, packet, o)}
  const scope = natConsulted(o.state) && (o.dir ?? 'ORIGINAL') === 'ORIGINAL' ? RECEIVED_NAT : RECEIVED_NO_NAT
  let m = received_.get(h)
  if (!m) {
    m = new Map()
    received_.set(h, m)
  }
  const byPort = level(level(level(level(m, recvContext(e, o), makeMap), kind, makeMap), o.state, makeMap), srcClassKey(h, e.src, scope, o.assumeLocal), makeMap)
  let result = byPort.get(e.sport)
  if (!result) {
    result = received(h, packet, o)
    byPort.set(e.sport, result)
  }
  return {packet, result}
}

/** The options of a single hook's run (hookByDstClass). */
export interface HookOpts {
  readonly state: CtState
  readonly dir?: 'ORIGINAL' | 'REPLY'
  readonly ctMark?: number
  readonly iif?: string
  readonly oif?: string
  readonly assumeLocal?: readonly IpAddr[]
  /** the packet's connection was DNATed (IPS_DST_NAT: `--ctstate DNAT`, nft `ct status dnat` match) */
  readonly dnat?: boolean
  /** with dnat: the destination the client asked for (the original tuple's, for --ctorigdst / ct original daddr) */
  readonly orig?: {readonly dst: IpAddr; readonly dport?: number}
  /** IPVS's mark on a packet its transmitter sent (`-m ipvs`) */
  readonly ipvs?: IpvsView
}

/** hookByDstClass: per host, context -> destination class -> port -> mark -> ct mark -> oif -> result */
const hooks_ = new WeakMap<HostView, Level<string, Level<string, Level<number, Level<number, Level<number, Level<string, HookResult>>>>>>>()

/** The hookByDstClass inputs other than the destination, its port, the marks and the oif, as text; remembered for the last call. */
let lastHook: {hook: Hook; nat: boolean; src: IpAddr; sport: number; proto: string; kind: FlowPacket; state: CtState; dir?: string; iif?: string; assumeLocal?: readonly IpAddr[]; dnat?: boolean; tuples: boolean; orig?: HookOpts['orig']; ipvs?: IpvsView; key: string} | undefined

/**
 * `tuples`: the host's rules read the conntrack tuples (needsTuples). Only then does the original destination
 * (`o.orig`) reach the run, and only then is it part of the context: without it, the backends of every service
 * that differ only in the VIP they were asked for share one evaluation per class.
 */
function hookContext(hook: Hook, nat: boolean, e: Endpoints, kind: FlowPacket, o: HookOpts, tuples: boolean): string {
  const l = lastHook
  if (l && l.hook === hook && l.nat === nat && l.src === e.src && l.sport === e.sport && l.proto === e.proto && l.kind === kind && l.state === o.state && l.dir === o.dir && l.iif === o.iif && l.assumeLocal === o.assumeLocal && l.dnat === o.dnat && l.tuples === tuples && (!tuples || l.orig === o.orig) && l.ipvs === o.ipvs) return l.key
  const orig = tuples && o.orig ? `${ipText(o.orig.dst)}:${o.orig.dport}` : ''
  const key = `${hook}|${nat}|${ipText(e.src)}|${e.sport}|${e.proto}|${kind}|${o.state}|${o.dir ?? ''}|${o.iif ?? ''}|${addrs(o.assumeLocal)}|${o.dnat ? 'D' : ''}|${orig}|${o.ipvs ? `${ipText(o.ipvs.vaddr)}:${o.ipvs.vport}/${o.ipvs.vproto}/${o.ipvs.method}/${o.ipvs.dir}` : ''}`
  lastHook = {hook, nat, src: e.src, sport: e.sport, proto: e.proto, kind, state: o.state, dir: o.dir, iif: o.iif, assumeLocal: o.assumeLocal, dnat: o.dnat, tuples, orig: o.orig, ipvs: o.ipvs, key}
  return key
}

/** needsTuples of the host asked about last (hookByDstClass asks for every backend) */
let lastTuplesHost: HostView | undefined
let lastTuples = false

/**
 * One hook (runHook) for the packet `kind` between the endpoints with a conntrack entry in `state`, evaluated
 * once per class of destination addresses (see above): the result may be another member's of the class (of
 * another service's, when the rules do not read the original destination, `o.orig`). Neither `e` nor `o` is
 * kept: a caller may change and pass them again.
 */
export function hookByDstClass(h: HostView, hook: Hook, e: Endpoints, kind: FlowPacket, o: HookOpts, nat: boolean): HookResult | undefined {
  const fw = h.fw
  if (!fw) return undefined
  const scope = HOOK_SCOPES[hook][nat ? 1 : 0]
  let m = hooks_.get(h)
  if (!m) {
    m = new Map()
    hooks_.set(h, m)
  }
  if (lastTuplesHost !== h) {
    lastTuples = needsTuples(h)
    lastTuplesHost = h
  }
  const tuples = lastTuples
  const ctx = hookContext(hook, nat, e, kind, o, tuples)
  const cls = addrClass(h, scope, 'dst', e.dst, o.assumeLocal)
  const mark = e.mark ?? 0
  const ctMark = o.ctMark ?? 0
  const oif = o.oif ?? ''
  // the backends of a service come one after another with the same port, marks and interface: the last answer first
  if (lastAnswerHost === h && lastAnswerCtx === ctx && lastAnswerCls === cls && lastAnswerDport === e.dport && lastAnswerMark === mark && lastAnswerCtMark === ctMark && lastAnswerOif === oif) return lastAnswer
  const byOif = level(level(level(level(level(m, ctx, makeMap), cls, makeMap), e.dport, makeMap), mark, makeMap), ctMark, makeMap)
  let r = byOif.get(oif)
  if (!r) {
    const pkt = flowPacket(e, kind)
    const ct0 = ctView(o.state, o.dir, ctMark)
    let ct = o.dnat ? {...ct0, status: withDnat(ct0.status)} : ct0
    if (tuples) {
      const t = withTuples(ct, pkt)
      // a DNATed connection's original tuple is the one the client sent, to the VIP
      ct = o.dnat && o.orig && (o.dir ?? 'ORIGINAL') === 'ORIGINAL' ? {...t, orig: {...t.orig, dst: o.orig.dst, dport: o.orig.dport ?? t.orig.dport}} : t
    }
    r = fw.runHook(hook, pkt, h.env({iif: o.iif, oif: o.oif, ct, assumeLocal: o.assumeLocal, ipvs: o.ipvs}), nat)
    byOif.set(oif, r)
  }
  lastAnswerHost = h
  lastAnswerCtx = ctx
  lastAnswerCls = cls
  lastAnswerDport = e.dport
  lastAnswerMark = mark
  lastAnswerCtMark = ctMark
  lastAnswerOif = oif
  lastAnswer = r
  return r
}

// the last answer of hookByDstClass and its inputs (module variables: no object per call; ~100,000 calls)
let lastAnswerHost: HostView | undefined
let lastAnswerCtx = ''
let lastAnswerCls = ''
let lastAnswerDport = -1
let lastAnswerMark = 0
let lastAnswerCtMark = 0
let lastAnswerOif = ''
let lastAnswer: HookResult | undefined

const scopesOf = (hook: Hook): readonly [Scope, Scope] => [
  {hooks: [hook], nat: false},
  {hooks: [hook], nat: true},
]
/** per hook, its scope without and with the nat table (constants: analyses are remembered per scope object) */
const HOOK_SCOPES: Readonly<Record<Hook, readonly [Scope, Scope]>> = {
  PREROUTING: scopesOf('PREROUTING'),
  INPUT: scopesOf('INPUT'),
  FORWARD: scopesOf('FORWARD'),
  OUTPUT: scopesOf('OUTPUT'),
  POSTROUTING: scopesOf('POSTROUTING'),
}

const DNAT_STATUS = new Map<ReadonlySet<string>, ReadonlySet<string>>()

/** A status set with DNAT added (shared per base set: a check builds one view per simulated packet). */
function withDnat(status: ReadonlySet<string>): ReadonlySet<string> {
  let s = DNAT_STATUS.get(status)
  if (!s) DNAT_STATUS.set(status, (s = new Set([...status, 'DNAT'])))
  return s
}
