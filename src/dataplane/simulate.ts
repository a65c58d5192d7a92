// The packet's journey across the hosts of the snapshots: each host runs its hooks in the kernel's order
// (hooks.ts), routes (routing.ts), tracks (conntrack.ts), NATs (nat.ts) and balances (ipvs.ts); hosts are
// wired by their addresses. Time is passed in; the only state is the hosts' own tables.
//
// Wiring (ARCHITECTURE.md, trace): a packet routed out of host A to next hop G (or directly to its
// destination) arrives at the host that owns G's address, on the interface holding it. A next hop that is
// not among the snapshots forwards the packet unchanged to its destination. A client address that belongs to
// a host originates on that host's stack; any other client is an outside host attached where a host has a
// connected route to it.
import {formatIp, ipEquals, isLoopback, prefixContains, type IpAddr} from '../model/ip.js'
import type {IptChain, IptRule} from '../model/iptables.js'
import type {Loc} from '../model/source.js'
import {ctView, type CtAttach} from './conntrack.js'
import {hookManip, type Hook} from './hooks.js'
import {ifaceOf, type HostModel} from './host.js'
import {describeService, effectiveMethod, ipvsMethodWord, type IpvsConnection} from './ipvs.js'
import {applyNat, bindNat, natInitialized, nullBinding} from './nat.js'
import {runChain, type MatchEnv} from './netfilter.js'
import {runNftChain, type NftEnv} from './nft.js'
import {chainOnDevice, familySees, natLookups, nftFib} from './nft-hooks.js'
import type {NftChain, NftTable} from '../model/nft.js'
import {PROTO, formatPacket, type IpvsView, type Packet} from './packet.js'
import {arpSenderAddress, checkOutputSource, routeInput, routeLookup, selectSource, tableName, validateSource, type RouteResult} from './routing.js'

export interface TraceStep {
  readonly host: string
  /** a netfilter hook, or ROUTING / LINK / SOCKET for the decisions between them */
  readonly hook: string
  readonly table: string
  readonly chain: string
  readonly rule?: Loc
  readonly verdict: string
  /** the ctstate the packet has on this host at this point ('' before conntrack saw it) */
  readonly ct: string
  /** the packet after this step */
  readonly packet: string
  /** the packet before this step, when the step changed it */
  readonly before?: string
  /** more words: TCP conntrack state change, route details, the assumption made */
  readonly note?: string
  readonly failed?: boolean
}

export interface Failure {
  readonly host: string
  readonly hook: string
  readonly chain: string
  readonly rule?: Loc
  readonly reason: string
  /** a REJECT --reject-with tcp-reset (nft `reject with tcp reset`): a TCP reset goes back to the packet's sender */
  readonly reset?: boolean
}

export type Arrival =
  /** delivered to a local socket of a host of the snapshots */
  | {readonly kind: 'host'; readonly host: HostModel; readonly packet: Packet; readonly iif?: string}
  /** reached the outside client */
  | {readonly kind: 'client'; readonly packet: Packet}
  /** left the snapshots towards an address no snapshot owns; `via` is the last host, `dev` its device */
  | {readonly kind: 'external'; readonly addr: IpAddr; readonly packet: Packet; readonly via: HostModel; readonly dev?: string}

export interface Hop {
  readonly from: string
  readonly to: string
  readonly packet: string
}

export interface Journey {
  readonly steps: TraceStep[]
  readonly hops: Hop[]
  readonly arrival?: Arrival
  readonly failure?: Failure
  readonly assumptions: string[]
}

/** What the kernel keeps with the skb while it is on one host. */
interface Skb {
  packet: Packet
  ct?: CtAttach
  /** raw-table NOTRACK, or ip_vs_notrack */
  untracked: boolean
  /** skb->ipvs_property: IPVS already handled it; the IPVS hooks and conntrack leave it alone */
  ipvsProperty: boolean
  ipvs?: IpvsView
  /**
   * LOCAL_OUT: a hook that routes the packet again after it changed it (ip_route_me_harder) did change it: the
   * mangle table (ipt_mangle_out: saddr, daddr, mark or tos changed within it), an nft chain of type route
   * (nf_route_table_hook, the same test) or the nat core (nf_nat_ipv4_local_fn: the connection's destination is
   * translated). A mark set anywhere else (filter, raw, an nft filter-type chain) routes nothing again.
   */
  reroute?: boolean
  /**
   * what that reroute saw: ip_route_me_harder runs inside the hook that changed the packet, with the mark and
   * addresses of that moment; a mark a later table sets (filter at priority 0, after nat's -100) routes nothing
   */
  rerouteKeys?: {readonly src: Packet['src']; readonly dst: Packet['dst']; readonly mark: number}
}

/** ip_route_me_harder, called by the hook that changed the packet: routed again with the keys of this moment. */
function rerouteNow(skb: Skb): void {
  skb.reroute = true
  skb.rerouteKeys = {src: skb.packet.src, dst: skb.packet.dst, mark: skb.packet.mark}
}

/** Did a LOCAL_OUT hook change what ip_route_me_harder looks at (addresses, mark)? */
function routingKeysChanged(a: Packet, b: Packet): boolean {
  return !ipEquals(a.src, b.src) || !ipEquals(a.dst, b.dst) || (a.mark >>> 0) !== (b.mark >>> 0)
}

type HookOutcome = {kind: 'continue'} | {kind: 'stop'; journey: Journey} | {kind: 'stolen'; journey: Journey}

export interface WorldOptions {
  /** the connection's client address (decides which host originates client packets) */
  readonly client: IpAddr
  /** the service address (prefers its owner when the outside client attaches) */
  readonly service: IpAddr
}

const MAX_HOPS = 32

/** A deterministic stand-in for `-m statistic --mode random` (mulberry32, fixed seed). */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The hosts of a replay, wired together by their addresses. */
export class World {
  readonly clientHost?: HostModel
  private readonly random = seeded(0x1d7)
  private readonly nth = new Map<HostModel, Map<IptRule, number>>()

  constructor(
    readonly hosts: readonly HostModel[],
    readonly opts: WorldOptions,
  ) {
    this.clientHost = this.clientOrigin(opts.client)
  }

  /** The host a client address originates on: its owner; a loopback client on the host that owns the service, else the first director. */
  private clientOrigin(ip: IpAddr): HostModel | undefined {
    if (isLoopback(ip)) {
      return this.hosts.find((h) => h.role === 'director') ?? this.hosts.find((h) => hasNatOutputDnat(h)) ?? this.hosts[0]
    }
    return this.hosts.find((h) => ifaceOf(h, ip) !== undefined)
  }

  /** The host that answers for `ip` on a link: an owner of it on a non-loopback interface. */
  ownerOf(ip: IpAddr, except?: HostModel): {host: HostModel; iface: string} | undefined {
    if (isLoopback(ip)) return undefined
    for (const h of this.hosts) {
      if (h === except) continue
      for (const i of h.routing.interfaces) {
        if (i.name === 'lo') continue
        if (i.addresses.some((a) => ipEquals(a.ip, ip))) return {host: h, iface: i.name}
      }
    }
    return undefined
  }

  /** Where an outside client is attached: a host with a connected route to it (the service owner first). */
  attachment(client: IpAddr): {host: HostModel; iface: string} | undefined {
    const cands: {host: HostModel; iface: string}[] = []
    for (const h of this.hosts) {
      for (const r of h.routing.routes) {
        if (r.type !== 'unicast' || r.gateway || r.nexthops || !r.dev || r.dev === 'lo') continue
        if (tableName(r.table) === 'local') continue
        if (prefixContains(r.dst, client) && r.dst.len > 0) cands.push({host: h, iface: r.dev})
      }
    }
    const owner = this.ownerOf(this.opts.service)
    return cands.find((c) => c.host === owner?.host) ?? cands.find((c) => c.host.conf.dev('forwarding', c.iface) !== 0) ?? cands[0]
  }

  /** A packet sent by the client. */
  sendFromClient(p: Packet, now: number): Journey {
    const sim = new Sim(this, now, this.random, this.nth)
    if (this.clientHost) return sim.finish(sim.fromHost(this.clientHost, p))
    const at = this.attachment(p.src)
    if (at) return sim.finish(sim.receive(at.host, at.iface, p, undefined, 'client'))
    const owner = this.ownerOf(p.dst)
    if (!owner) {
      return sim.finish(sim.fail({host: 'client', hook: 'LINK', chain: '', reason: `no host of the snapshots owns ${formatIp(p.dst)} or has a route to the client ${formatIp(p.src)}: the client's packet has nowhere to go`}, p))
    }
    const back = routeLookup(owner.host.routing, {dst: p.src})
    const iif = back.kind === 'unicast' && back.dev ? back.dev : owner.iface
    sim.assume(`the outside client ${formatIp(p.src)} reaches ${owner.host.name} on ${iif} (no host of the snapshots has a connected route to it)`)
    return sim.finish(sim.receive(owner.host, iif, p, undefined, 'client'))
  }

  /** A packet sent by the server: from a host's own stack, or injected back through the host it came from. */
  sendFromServer(p: Packet, server: {kind: 'host'; host: HostModel; unboundSource?: boolean} | {kind: 'external'; via: HostModel; dev?: string}, now: number): Journey {
    const sim = new Sim(this, now, this.random, this.nth)
    if (server.kind === 'host') return sim.finish(sim.fromHost(server.host, p, server.unboundSource))
    const back = routeLookup(server.via.routing, {dst: p.src})
    const iif = server.dev ?? (back.kind === 'unicast' ? back.dev : undefined) ?? 'eth0'
    return sim.finish(sim.receive(server.via, iif, p, undefined, formatIp(p.src)))
  }
}

function hasNatOutputDnat(h: HostModel): boolean {
  if (h.tables.get('nat')?.chains.get('OUTPUT')?.rules.some((r) => r.target?.kind === 'DNAT')) return true
  return !!h.nft?.natByHook.OUTPUT.some((c) => c.chain.rules.some((r) => r.stmts.some((x) => x.kind === 'nat' && x.type === 'dnat')))
}

class Sim {
  readonly steps: TraceStep[] = []
  readonly hops: Hop[] = []
  readonly assumptions: string[] = []
  private hopCount = 0
  /** how the `-m set` matches of the table run last were decided, for the step that reports it */
  private setWords: string[] = []

  constructor(
    readonly world: World,
    readonly now: number,
    readonly random: () => number,
    readonly nth: Map<HostModel, Map<IptRule, number>>,
  ) {}

  assume(what: string): void {
    if (!this.assumptions.includes(what)) this.assumptions.push(what)
  }

  /** per host: the statistic --mode random rules the stand-in took and skipped, and the assumption that says so */
  private readonly draws = new Map<string, {at: number; taken: string[]; skipped: string[]; perPacket: boolean}>()

  /** One assumption per host for its random draws, rewritten as the replay draws more. */
  noteDraw(host: string, where: string, hit: boolean, nat: boolean): void {
    let d = this.draws.get(host)
    if (!d) {
      d = {at: this.assumptions.length, taken: [], skipped: [], perPacket: false}
      this.assumptions.push('')
      this.draws.set(host, d)
    }
    // the nat table sees a connection's first packet only; elsewhere every packet is drawn anew
    if (!nat) d.perPacket = true
    const list = hit ? d.taken : d.skipped
    if (!list.includes(where)) list.push(where)
    const part = (l: string[], verb: string) => (l.length ? `${verb} ${l.join(', ')}` : '')
    this.assumptions[d.at] =
      `${host}: -m statistic --mode random is a random draw; lvsdoctor's deterministic stand-in ${[part(d.taken, 'took'), part(d.skipped, 'skipped')].filter(Boolean).join(' and ')}: ` +
      `this replay follows one outcome, and other connections${d.perPacket ? ' (outside the nat table: other packets)' : ''} may take other rules (check reports a skewed split as statistic-cascade-skew)`
  }

  finish(j: Journey): Journey {
    return {...j, steps: this.steps, hops: this.hops, assumptions: this.assumptions}
  }

  private done(arrival: Arrival): Journey {
    return {steps: this.steps, hops: this.hops, arrival, assumptions: this.assumptions}
  }

  fail(f: Failure, p: Packet, ct = ''): Journey {
    this.steps.push({host: f.host, hook: f.hook, table: f.hook === 'ROUTING' ? 'route' : '', chain: f.chain, rule: f.rule, verdict: 'DROP', ct, packet: formatPacket(p), note: f.reason, failed: true})
    return {steps: this.steps, hops: this.hops, failure: f, assumptions: this.assumptions}
  }

  private ctWord(skb: Skb): string {
    if (skb.untracked) return 'UNTRACKED'
    return skb.ct?.state ?? ''
  }

  private step(h: HostModel, s: Omit<TraceStep, 'host' | 'ct' | 'packet'> & {packet?: Packet}, skb: Skb): void {
    const {packet, ...rest0} = s
    let rest = rest0
    if (this.setWords.length) {
      // the ipset lookups of the table run this step reports: which entry matched, or that none did
      const shown = this.setWords.length > 6 ? [...this.setWords.slice(0, 6), `${this.setWords.length - 6} more -m set lookups`] : this.setWords
      rest = {...rest0, note: [rest0.note, ...shown].filter(Boolean).join('; ')}
      this.setWords = []
    }
    this.steps.push({host: h.name, ...rest, ct: this.ctWord(skb), packet: formatPacket(packet ?? skb.packet)})
  }

  // ---------------------------------------------------------------------------------------------------
  // Hooks

  private matchEnv(h: HostModel, skb: Skb, iif: string | undefined, oif: string | undefined): MatchEnv {
    let nth = this.nth.get(h)
    if (!nth) this.nth.set(h, (nth = new Map()))
    return {
      iif,
      oif,
      ct: skb.untracked ? {state: 'UNTRACKED', dir: 'ORIGINAL', status: new Set(), mark: 0} : ctView(skb.ct),
      ipvs: skb.ipvs,
      addrType: h.addrType,
      random: this.random,
      nthCounters: nth,
      ipsets: h.snap.ipsets,
      // -m rpfilter's reverse lookup: only from routes the snapshot gives, not the connected routes made up without them
      reverseRoutes: h.snap.routes ? h.routing : undefined,
      setNote: (rule, why) => {
        const w = `${rule.loc.file}:${rule.loc.line} ${why}`
        if (!this.setWords.includes(w)) this.setWords.push(w)
      },
      // statistic --mode random: drawn with the deterministic stand-in, and said so (the replay is one outcome)
      draw: (rule, m) => {
        if (m.mode !== 'random' || m.probability <= 0 || m.probability >= 1) return undefined
        const hit = this.random() < m.probability !== m.neg
        this.noteDraw(h.name, `${rule.loc.file}:${rule.loc.line}`, hit, rule.table === 'nat')
        return hit
      },
    }
  }

  private runHooks(h: HostModel, hook: Hook, skb: Skb, iif: string | undefined, oif: string | undefined): HookOutcome {
    for (const entry of h.hookTable[hook]) {
      const fn = entry.fn
      switch (fn.kind) {
        case 'conntrack-in': {
          // not loaded here, NOTRACK (or ip_vs_notrack), or already attached (loopback, IPVS with vs.conntrack=1).
          // A packet IPVS forwards without a conntrack (INVALID at PREROUTING) is tracked again at LOCAL_OUT:
          // ip_vs_notrack marks only a packet that has one, and nf_conntrack_in has no exception for ipvs_property
          if (!h.ctActive || skb.untracked || skb.ct) break
          const before = skb.ct
          void before
          skb.ct = h.ct.packetIn(skb.packet, this.now)
          const a = skb.ct
          const tcp = a.tcpBefore !== undefined ? ` (TCP ${a.tcpBefore}${a.tcpAfter ? ` -> ${a.tcpAfter}` : ''})` : ''
          this.step(h, {hook, table: 'conntrack', chain: '', verdict: a.state, note: (a.reason ?? (a.entry?.status.has('CONFIRMED') ? 'existing entry' : a.entry?.pickedUp ? 'new entry picked up mid-stream (nf_conntrack_tcp_loose=1)' : 'new entry')) + tcp}, skb)
          break
        }
        case 'conntrack-confirm': {
          const e = skb.ct?.entry
          if (!skb.untracked && e && !e.status.has('CONFIRMED')) {
            h.ct.confirm(e)
            this.step(h, {hook, table: 'conntrack', chain: '', verdict: 'CONFIRMED', note: 'the entry enters the conntrack table at the last hook'}, skb)
          }
          break
        }
        case 'table': {
          const out = fn.table === 'nat' ? this.natHook(h, hook, skb, iif, oif) : this.filterHook(h, hook, fn.table, skb, iif, oif)
          if (out) return out
          break
        }
        case 'ipvs-in': {
          if (!h.ipvs || skb.ipvsProperty) break
          if (hook === 'OUTPUT' && !h.ipvs.findService(skb.packet) && !h.ipvs.inLookup(skb.packet, this.now)) break
          const out = this.ipvsIn(h, hook, skb)
          if (out) return out
          break
        }
        case 'ipvs-out': {
          if (!h.ipvs || skb.ipvsProperty) break
          const r = h.ipvs.out(skb.packet, this.now)
          if (!r) break
          const before = formatPacket(skb.packet)
          skb.packet = r.packet
          skb.ipvsProperty = true
          skb.ipvs = ipvsView(r.conn, 'REPLY')
          const masq = effectiveMethod(r.conn.service, r.conn.dest) === 'masq'
          let note = masq
            ? 'LVS-NAT reply: the source becomes the VIP again (ip_vs_out, handle_response)'
            : `a ${ipvsMethodWord(effectiveMethod(r.conn.service, r.conn.dest))} reply from the VIP crosses the director: IPVS counts it and moves the connection to ${r.conn.state} (handle_response, kernel >= 5.10), unchanged`
          if (!h.ipvsConntrack) note += this.ipvsNotrack(skb, false)
          this.step(h, {hook, table: 'ipvs', chain: describeService(r.conn.service), rule: r.conn.dest.loc, verdict: masq ? 'MASQ reply' : 'reply', before: masq ? before : undefined, note}, skb)
          break
        }
        case 'ipvs-forward-icmp':
          break
        case 'nft': {
          const out = this.nftHook(h, hook, fn.table, fn.chain, skb, iif, oif)
          if (out) return out
          break
        }
      }
    }
    return {kind: 'continue'}
  }

  private filterHook(h: HostModel, hook: Hook, tableName: string, skb: Skb, iif: string | undefined, oif: string | undefined): HookOutcome | undefined {
    const table = h.tables.get(tableName)
    const chain = table?.chains.get(hook)
    if (!table || !chain) return undefined
    if (chain.rules.length === 0 && (chain.policy ?? 'ACCEPT') === 'ACCEPT') return undefined
    this.setWords = []
    const env = this.matchEnv(h, skb, iif, oif)
    const before = skb.packet
    const res = runChain(table, hook, skb.packet, env)
    skb.packet = res.packet
    if (hook === 'OUTPUT' && tableName === 'mangle' && res.verdict !== 'DROP' && routingKeysChanged(before, skb.packet)) rerouteNow(skb)
    if (skb.ct?.entry && res.ctMark !== skb.ct.entry.mark) skb.ct.entry.mark = res.ctMark
    if (res.notrack && !skb.ct) skb.untracked = true
    for (const a of res.assumptions) this.assume(`${h.name} ${a.rule.loc.file}:${a.rule.loc.line}: ${a.what}`)
    const rule = res.rule?.loc ?? chainLoc(chain)
    const changed = formatPacket(before) !== formatPacket(skb.packet)
    const note = res.policy ? `policy of ${tableName} ${hook}` : res.assumptions.length ? res.assumptions.map((a) => a.what).join('; ') : undefined
    const verdict = res.verdict === 'CONTINUE' ? 'ACCEPT' : res.verdict
    const failed = verdict === 'DROP' || verdict === 'REJECT' || verdict === 'QUEUE'
    this.step(h, {hook, table: tableName, chain: hook, rule, verdict, before: changed ? formatPacket(before) : undefined, note, failed: failed || undefined}, skb)
    if (!failed) return undefined
    const ctWord = this.ctWord(skb)
    const why = res.policy
      ? `the ${tableName} ${hook} chain's policy is ${verdict} and no rule accepted this packet (ctstate ${ctWord || 'none'})`
      : `${tableName} ${hook} rule ${rule.file}:${rule.line} ${verdict === 'REJECT' ? 'rejects' : verdict === 'QUEUE' ? 'queues to userspace (not modelled)' : 'drops'} it (ctstate ${ctWord || 'none'}): ${rule.text.trim()}`
    const reset = isTcpReset(verdict, res.target)
    return {kind: 'stop', journey: {steps: this.steps, hops: this.hops, failure: {host: h.name, hook, chain: hook, rule, reason: why + (skb.ct?.reason ? `; ${skb.ct.reason}` : ''), ...(reset ? {reset} : {})}, assumptions: this.assumptions}}
  }

  private nftEnv(h: HostModel, skb: Skb, iif: string | undefined, oif: string | undefined): NftEnv {
    return {...this.matchEnv(h, skb, iif, oif), numgen: h.numgen, fib: (q) => nftFib(h.routing, q, h.addrType)}
  }

  /** One nft base chain (filter/route type, or a netdev chain at the device): like filterHook, with nft's rules. */
  private nftHook(h: HostModel, hook: string, table: NftTable, chain: NftChain, skb: Skb, iif: string | undefined, oif: string | undefined): {kind: 'stop'; journey: Journey} | undefined {
    if (chain.rules.length === 0 && chain.base?.policy !== 'drop') return undefined
    // an ip table never sees IPv6 packets, nor an ip6 table IPv4 ones (netdev and inet see both)
    if (table.family !== 'netdev' && !familySees(table.family, skb.packet.family)) return undefined
    const before = skb.packet
    const res = runNftChain(table, chain, skb.packet, this.nftEnv(h, skb, iif, oif))
    skb.packet = res.packet
    if (hook === 'OUTPUT' && chain.base?.type === 'route' && routingKeysChanged(before, skb.packet)) rerouteNow(skb)
    if (skb.ct?.entry && res.ctMark !== skb.ct.entry.mark) skb.ct.entry.mark = res.ctMark
    if (res.notrack && !skb.ct) skb.untracked = true
    for (const a of res.assumptions) this.assume(`${h.name} ${a.rule.family} ${a.rule.table} ${a.rule.chain} handle ${a.rule.handle}: ${a.what}`)
    const rule = res.rule?.loc ?? chain.loc
    const name = `${table.family} ${table.name} ${chain.name}`
    const changed = formatPacket(before) !== formatPacket(skb.packet)
    const note = res.policy ? `policy of ${name}` : res.assumptions.length ? res.assumptions.map((a) => a.what).join('; ') : undefined
    const verdict = res.verdict === 'CONTINUE' || res.verdict === 'NAT' ? 'ACCEPT' : res.verdict
    const failed = verdict === 'DROP' || verdict === 'REJECT' || verdict === 'QUEUE'
    this.step(h, {hook, table: `nft ${table.family} ${table.name}`, chain: chain.name, rule, verdict, before: changed ? formatPacket(before) : undefined, note, failed: failed || undefined}, skb)
    if (!failed) return undefined
    const ctWord = this.ctWord(skb)
    const why = res.policy
      ? `the policy of ${name} is ${verdict.toLowerCase()} and no rule accepted this packet (ct state ${ctWord.toLowerCase() || 'none'})`
      : `${name} handle ${res.rule!.handle} ${verdict === 'REJECT' ? 'rejects' : verdict === 'QUEUE' ? 'queues to userspace (not modelled)' : 'drops'} it (ct state ${ctWord.toLowerCase() || 'none'}): ${rule.text}`
    const reset = isTcpReset(verdict, res.target)
    return {kind: 'stop', journey: {steps: this.steps, hops: this.hops, failure: {host: h.name, hook, chain: name, rule, reason: why + (skb.ct?.reason ? `; ${skb.ct.reason}` : ''), ...(reset ? {reset} : {})}, assumptions: this.assumptions}}
  }

  /** netdev (and inet) ingress chains of the device a packet arrives on, and netdev egress chains of the one it leaves by. */
  private deviceHooks(h: HostModel, which: 'ingress' | 'egress', dev: string | undefined, skb: Skb): {kind: 'stop'; journey: Journey} | undefined {
    for (const c of h.nft?.[which] ?? []) {
      const on = chainOnDevice(c.chain, dev)
      if (on === false) continue
      if (on === 'unknown' && c.chain.rules.length > 0) this.assume(`${h.name}: the devices of ${c.table.family} ${c.table.name} ${c.chain.name} are not in the JSON (nft < 1.0.7 prints none): assumed to include ${dev ?? 'the device'}`)
      const out = this.nftHook(h, which.toUpperCase(), c.table, c.chain, skb, which === 'ingress' ? dev : undefined, which === 'egress' ? dev : undefined)
      if (out) return out
    }
    return undefined
  }

  private natHook(h: HostModel, hook: Hook, skb: Skb, iif: string | undefined, oif: string | undefined): HookOutcome | undefined {
    const manip = hookManip(hook)
    const entry = skb.ct?.entry
    if (!manip || !entry || skb.untracked || skb.ct?.state === 'INVALID') return undefined
    this.setWords = []
    const before = skb.packet
    let rule: Loc | undefined
    let verdict: string | undefined
    let note: string | undefined
    let natTable = 'nat'
    let natChain: string = hook
    if (!natInitialized(entry, manip)) {
      // nf_nat_inet_fn: the nat lookups (iptables' nat table, nft nat chains, in priority order) are consulted only
      // while the connection has no binding, until one binds
      const lookups = natLookups(hook, h.tables.get('nat'), h.nft, skb.packet.family)
      let bound = false
      for (const lk of lookups) {
        const res = lk.kind === 'ipt' ? runChain(lk.table, hook, skb.packet, this.matchEnv(h, skb, iif, oif)) : runNftChain(lk.table, lk.chain, skb.packet, this.nftEnv(h, skb, iif, oif))
        const where = lk.kind === 'ipt' ? undefined : `${lk.table.family} ${lk.table.name} ${lk.chain.name}`
        natTable = lk.kind === 'ipt' ? 'nat' : `nft ${lk.table.family} ${lk.table.name}`
        natChain = lk.kind === 'ipt' ? hook : lk.chain.name
        for (const a of res.assumptions) this.assume(where ? `${h.name} ${where} handle ${(a.rule as {handle?: number}).handle}: ${a.what}` : `${h.name} ${a.rule.loc.file}:${a.rule.loc.line}: ${a.what}`)
        skb.packet = res.packet // MARK / CONNMARK restore in nat chains (kube-proxy's KUBE-MARK-MASQ)
        entry.mark = res.ctMark
        const chainLocOf = lk.kind === 'ipt' ? lk.table.chains.get(hook)!.loc : lk.chain.loc
        if (res.verdict === 'NAT' && res.target) {
          const bound1 = bindNat(entry, manip, res.target, {
            masqAddr: this.masqAddr(h, skb.packet, oif),
            redirectAddr: iif === undefined ? {family: 4, value: 0x7f000001n} : h.routing.interfaces.find((i) => i.name === iif)?.addresses.find((a) => a.family === skb.packet.family)?.ip,
          })
          rule = res.rule?.loc
          if (!bound1.ok) {
            this.step(h, {hook, table: natTable, chain: natChain, rule, verdict: 'DROP', note: bound1.reason, failed: true}, skb)
            return {kind: 'stop', journey: {steps: this.steps, hops: this.hops, failure: {host: h.name, hook, chain: natChain, rule, reason: bound1.reason}, assumptions: this.assumptions}}
          }
          verdict = res.target.kind
          note = `binding: ${bound1.what}`
          bound = true
          break
        }
        if (res.verdict === 'DROP' || res.verdict === 'REJECT') {
          nullBinding(entry, manip)
          rule = res.rule?.loc ?? chainLocOf
          this.step(h, {hook, table: natTable, chain: natChain, rule, verdict: 'DROP', failed: true}, skb)
          return {kind: 'stop', journey: {steps: this.steps, hops: this.hops, failure: {host: h.name, hook, chain: natChain, rule, reason: `${where ?? `nat ${hook}`} drops it`}, assumptions: this.assumptions}}
        }
        rule = res.rule?.loc ?? chainLocOf
      }
      if (!bound) {
        nullBinding(entry, manip)
        if (lookups.length > 0) {
          verdict = 'ACCEPT'
          note = 'no NAT rule matched: null binding'
        }
      }
    }
    skb.packet = applyNat(skb.packet, entry, skb.ct!.dir, manip)
    if (hook === 'OUTPUT' && !ipEquals(before.dst, skb.packet.dst)) rerouteNow(skb)
    const changed = formatPacket(before) !== formatPacket(skb.packet)
    if (verdict === undefined && changed) {
      verdict = manip === 'dst' ? (skb.ct!.dir === 'ORIGINAL' ? 'DNAT' : 'un-SNAT') : skb.ct!.dir === 'ORIGINAL' ? 'SNAT' : 'un-DNAT'
      note = 'the connection\'s NAT binding applied'
    }
    if (verdict !== undefined) this.step(h, {hook, table: natTable, chain: natChain, rule, verdict, before: changed ? formatPacket(before) : undefined, note}, skb)
    return undefined
  }

  private masqAddr(h: HostModel, p: Packet, oif: string | undefined): IpAddr | undefined {
    const res = routeLookup(h.routing, {dst: p.dst, oif})
    return selectSource(h.routing, res, p.dst)
  }

  private ipvsIn(h: HostModel, hook: Hook, skb: Skb): HookOutcome | undefined {
    const r = h.ipvs!.in(skb.packet, this.now)
    if (r.kind === 'pass') {
      if (h.ipvs!.findService(skb.packet)) this.step(h, {hook, table: 'ipvs', chain: describeService(h.ipvs!.findService(skb.packet)!), verdict: 'ACCEPT', note: r.why}, skb)
      return undefined
    }
    if (r.kind === 'drop') {
      this.step(h, {hook, table: 'ipvs', chain: '', verdict: 'DROP', note: r.reason, failed: true}, skb)
      return {kind: 'stop', journey: {steps: this.steps, hops: this.hops, failure: {host: h.name, hook, chain: 'ipvs', reason: r.reason}, assumptions: this.assumptions}}
    }
    if (r.assumption) this.assume(`${h.name}: ${r.assumption}`)
    const before = formatPacket(skb.packet)
    const c = r.conn
    skb.packet = r.packet
    skb.ipvsProperty = true
    skb.ipvs = ipvsView(c, 'ORIGINAL')
    let note = `${r.isNew ? 'new' : 'existing'} IPVS connection ${c.state} (expires in ${Math.round(c.expires - this.now)} s), ${ipvsMethodWord(effectiveMethod(c.service, c.dest))} to ${formatIp(c.daddr)}:${c.dport}`
    if (!h.ipvsConntrack) {
      note += this.ipvsNotrack(skb, true)
    } else if (!skb.ct?.entry) {
      if (skb.ct) note += '; the packet has no conntrack (INVALID): it is tracked again at LOCAL_OUT'
      skb.ct = undefined
    } else if (r.method === 'masq' && !skb.ct.entry.status.has('CONFIRMED')) {
      // ip_vs_update_conntrack: the reply tuple becomes realserver -> client so that replies match
      skb.ct.entry.reply = {...skb.ct.entry.reply, src: c.daddr, sport: c.dport}
      note += '; net.ipv4.vs.conntrack=1: ip_vs_update_conntrack makes the reply tuple realserver -> client'
    }
    // a destination that is one of the director's own addresses: the xmit functions (ip_vs_nat_xmit,
    // ip_vs_dr_xmit, ip_vs_tunnel_xmit) find a local route and return NF_ACCEPT (ip_vs_send_or_cont with local):
    // the packet, NATed or not and never encapsulated, goes on through LOCAL_IN to the director's own socket
    const localDest = r.method !== 'local' && routeLookup(h.routing, {dst: c.daddr, mark: skb.packet.mark}).kind === 'local'
    if (localDest) note += `; ${formatIp(c.daddr)} is this host's own address: delivered to its own stack (ip_vs_send_or_cont, local)`
    this.step(h, {hook, table: 'ipvs', chain: describeService(c.service), rule: c.dest.loc, verdict: `${ipvsMethodWord(effectiveMethod(c.service, c.dest))} -> ${formatIp(c.daddr)}:${c.dport}`, before: before !== formatPacket(skb.packet) ? before : undefined, note}, skb)
    if (r.method === 'local' || localDest) return undefined
    return {kind: 'stolen', journey: this.ipvsXmit(h, c, r.method, skb)}
  }

  /**
   * ip_vs_notrack (include/net/ip_vs.h), net.ipv4.vs.conntrack=0: a packet with a conntrack entry loses it and
   * goes on UNTRACKED; a packet without one (INVALID) is left alone, so conntrack looks at it again at the next
   * LOCAL_OUT (`toLocalOut`: IPVS transmits it; a reply goes on through POSTROUTING, where conntrack does
   * not run, still INVALID). Returns the words for the step's note.
   */
  private ipvsNotrack(skb: Skb, toLocalOut: boolean): string {
    const e = skb.ct?.entry
    if (e) {
      skb.untracked = true
      skb.ct = undefined
      return e.status.has('CONFIRMED')
        ? '; net.ipv4.vs.conntrack=0: ip_vs_notrack, the packet goes on untracked'
        : '; net.ipv4.vs.conntrack=0: ip_vs_notrack drops the unconfirmed conntrack entry, the packet goes on untracked'
    }
    if (skb.untracked || !skb.ct) return ''
    if (!toLocalOut) return '; net.ipv4.vs.conntrack=0, but the packet has no conntrack (INVALID) for ip_vs_notrack to replace: it stays INVALID'
    skb.ct = undefined
    return '; net.ipv4.vs.conntrack=0, but the packet has no conntrack (INVALID) for ip_vs_notrack to replace: it is not UNTRACKED, and conntrack looks at it again at LOCAL_OUT'
  }

  /** ip_vs_xmit.c: route to the realserver, then LOCAL_OUT and POSTROUTING (ip_vs_send_or_cont). */
  private ipvsXmit(h: HostModel, c: IpvsConnection, method: 'masq' | 'route' | 'tunnel', skb: Skb): Journey {
    const route = routeLookup(h.routing, {dst: c.daddr, mark: skb.packet.mark})
    if (route.kind !== 'unicast' && route.kind !== 'local') {
      return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: `IPVS cannot route to the realserver ${formatIp(c.daddr)} (${route.kind})`}, skb.packet, this.ctWord(skb))
    }
    let nextHop: IpAddr | undefined = route.kind === 'unicast' ? route.gateway : undefined
    const dev = route.kind === 'unicast' ? route.dev : 'lo'
    if (method === 'route') {
      if (route.kind === 'unicast' && route.gateway) {
        return this.fail({host: h.name, hook: 'ROUTING', chain: '', rule: route.route.loc, reason: `LVS-DR sends the unchanged packet to the realserver's MAC, so ${formatIp(c.daddr)} must be on a directly connected network; the route to it goes via ${formatIp(route.gateway)}`}, skb.packet, this.ctWord(skb))
      }
      nextHop = c.daddr // IP_VS_RT_MODE_KNOWN_NH: the frame goes to the realserver itself
    }
    if (method === 'tunnel') {
      const src = selectSource(h.routing, route, c.daddr)
      if (!src) return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: `no source address to reach ${formatIp(c.daddr)} for the IPIP header`}, skb.packet)
      const inner = skb.packet
      skb.packet = {family: inner.family, src, dst: c.daddr, proto: 4, inner, mark: inner.mark}
      // ip_vs_tunnel_xmit_prepare: with vs.conntrack=1 the inner packet's entry is confirmed (ip_vs_confirm_conntrack),
      // then nf_reset_ct; the IPIP packet goes out by ip_local_out, through LOCAL_OUT where conntrack may track it
      if (h.ipvsConntrack && skb.ct?.entry && !skb.ct.entry.status.has('CONFIRMED')) h.ct.confirm(skb.ct.entry)
      skb.ct = undefined
      skb.untracked = false
      this.step(h, {hook: 'INPUT', table: 'ipvs', chain: describeService(c.service), verdict: 'IPIP', before: formatPacket(inner), note: 'encapsulated in IPIP to the realserver'}, skb)
    }
    this.step(h, {hook: 'ROUTING', table: 'route', chain: route.kind === 'unicast' ? tableName(route.route.table) : 'local', rule: route.route.loc, verdict: `to ${formatIp(nextHop ?? c.daddr)} dev ${dev}`, note: 'ip_vs_xmit output route'}, skb)
    const out = this.runHooks(h, 'OUTPUT', skb, undefined, dev)
    if (out.kind !== 'continue') return out.journey
    const post = this.runHooks(h, 'POSTROUTING', skb, undefined, dev)
    if (post.kind !== 'continue') return post.journey
    return this.transmit(h, dev, nextHop, skb.packet)
  }

  // ---------------------------------------------------------------------------------------------------
  // Paths through one host

  /** A packet generated by a local socket on `h` (the OUTPUT path). */
  fromHost(h: HostModel, p: Packet, unboundSource = false): Journey {
    const skb: Skb = {packet: p, untracked: false, ipvsProperty: false}
    // a socket without a bound source address (a UDP server on 0.0.0.0 answering with sendto) is routed with saddr 0:
    // policy rules `from ADDR` do not match it (fib4_rule_match), and the source is then taken from the route
    let route = routeLookup(h.routing, {dst: p.dst, ...(unboundSource ? {} : {src: p.src}), mark: p.mark, proto: p.proto, sport: p.sport, dport: p.dport})
    const rf = this.routeFailure(h, route, p)
    if (rf) return rf
    this.routeStep(h, route, skb, 'output route')
    let dev = devOf(route)
    const bad = checkOutputSource(h.conf, p.src, dev)
    if (bad) return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: bad}, p)
    const out = this.runHooks(h, 'OUTPUT', skb, undefined, dev)
    if (out.kind !== 'continue') return out.journey
    if (skb.reroute) {
      // ip_route_me_harder: nat, the mangle table or an nft route chain changed the packet, route it again (the
      // source stays when local). A mark set by the filter or raw table or an nft filter chain does not reroute.
      const k = skb.rerouteKeys ?? skb.packet
      route = routeLookup(h.routing, {dst: k.dst, src: k.src, mark: k.mark, proto: p.proto, sport: skb.packet.sport, dport: skb.packet.dport})
      const rf2 = this.routeFailure(h, route, skb.packet)
      if (rf2) return rf2
      this.routeStep(h, route, skb, 'rerouted after OUTPUT (ip_route_me_harder)')
      dev = devOf(route)
      const bad2 = checkOutputSource(h.conf, skb.packet.src, dev)
      if (bad2) return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: bad2}, skb.packet, this.ctWord(skb))
    }
    const post = this.runHooks(h, 'POSTROUTING', skb, undefined, dev)
    if (post.kind !== 'continue') return post.journey
    if (route.kind === 'local' || route.kind === 'broadcast') return this.receive(h, 'lo', skb.packet, skb, h.name)
    return this.transmit(h, dev, route.kind === 'unicast' ? route.gateway : undefined, skb.packet)
  }

  /** A packet received on `iif` of `h` (PREROUTING, routing, then INPUT or FORWARD). */
  receive(h: HostModel, iif: string, p: Packet, carried: Skb | undefined, from: string): Journey {
    if (++this.hopCount > MAX_HOPS) return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: `more than ${MAX_HOPS} hops: a routing loop`}, p)
    if (from !== h.name) this.hops.push({from, to: h.name, packet: formatPacket(p)})
    const skb: Skb = carried ?? {packet: {...p, mark: 0}, untracked: false, ipvsProperty: false}
    if (!carried) this.step(h, {hook: 'LINK', table: '', chain: '', verdict: `received on ${iif}`}, skb)
    if (!carried && h.nft?.ingress.length) {
      const ing = this.deviceHooks(h, 'ingress', iif, skb)
      if (ing) return ing.journey
    }
    const pre = this.runHooks(h, 'PREROUTING', skb, iif, undefined)
    if (pre.kind !== 'continue') return pre.journey
    const q = skb.packet
    const decision = routeInput(h.routing, h.conf, {src: q.src, dst: q.dst, iif, mark: q.mark, proto: q.proto, sport: q.sport, dport: q.dport})
    if (!decision.ok) {
      return this.fail({host: h.name, hook: 'ROUTING', chain: '', rule: decision.route && decision.route.kind !== 'none' ? decision.route.route?.loc : undefined, reason: decision.reason}, q, this.ctWord(skb))
    }
    const route = decision.route
    this.routeStep(h, route, skb, 'input route')
    if (route.kind === 'local') {
      const inp = this.runHooks(h, 'INPUT', skb, iif, undefined)
      if (inp.kind !== 'continue') return inp.journey
      if (skb.packet.proto === 4 && skb.packet.inner) return this.decapsulate(h, skb.packet)
      this.step(h, {hook: 'SOCKET', table: '', chain: '', verdict: 'delivered', note: 'to the local stack'}, skb)
      return this.done({kind: 'host', host: h, packet: skb.packet, iif})
    }
    if (route.kind !== 'unicast') return this.fail({host: h.name, hook: 'ROUTING', chain: '', reason: `a ${route.kind} route does not forward`}, q)
    const dev = route.dev
    const fwd = this.runHooks(h, 'FORWARD', skb, iif, dev)
    if (fwd.kind !== 'continue') return fwd.journey
    const post = this.runHooks(h, 'POSTROUTING', skb, iif, dev)
    if (post.kind !== 'continue') return post.journey
    return this.transmit(h, dev, route.gateway, skb.packet)
  }

  /** ipip_rcv: an IPIP packet for this host is unwrapped on the tunnel device and received again. */
  private decapsulate(h: HostModel, outer: Packet): Journey {
    // `ip -j addr` without -d names the kind only as link_type ipip; an up device is the one ip_tunnel_lookup takes
    const isUp = (i: {flags: readonly string[]}) => !i.flags.length || i.flags.includes('UP')
    const tuns = h.routing.interfaces.filter((i) => i.kind === 'ipip' || i.linkType === 'ipip' || /^tunl\d+$/.test(i.name))
    const tun = tuns.find(isUp) ?? tuns[0]
    if (!tun) return this.fail({host: h.name, hook: 'SOCKET', chain: '', reason: 'an IPIP (LVS-TUN) packet arrived, but this host has no ipip tunnel device (tunl0): the kernel answers protocol unreachable'}, outer)
    if (!isUp(tun)) return this.fail({host: h.name, hook: 'SOCKET', chain: '', reason: `the IPIP packet arrived, but ${tun.name} is down: no tunnel takes it (ip_tunnel_lookup uses the fallback tunl0 only when it is up) and the kernel answers ICMP port unreachable (tunnel4_rcv)`}, outer)
    this.steps.push({host: h.name, hook: 'SOCKET', table: 'ipip', chain: '', verdict: `decapsulated on ${tun.name}`, ct: '', packet: formatPacket(outer.inner!)})
    return this.receive(h, tun.name, outer.inner!, undefined, h.name)
  }

  /** The packet leaves `h` on `dev` towards `gateway` (or its destination on the link). */
  private transmit(h: HostModel, dev: string | undefined, gateway: IpAddr | undefined, p: Packet): Journey {
    const nh = gateway ?? p.dst
    const skb: Skb = {packet: p, untracked: false, ipvsProperty: false}
    if (h.nft?.egress.length) {
      const eg = this.deviceHooks(h, 'egress', dev, skb)
      if (eg) return eg.journey
    }
    const owner = this.world.ownerOf(nh, h)
    if (owner) {
      // the next hop answers the ARP request for its address only if that request passes its own source
      // validation (arp_process: ip_route_input of the request, rp_filter included); no answer, nothing is sent
      const sip = dev ? arpSenderAddress(h.routing, h.conf, dev, nh, p.src) : undefined
      const arpBad = sip && !ipEquals(sip, nh) ? validateSource(owner.host.routing, owner.host.conf, {src: sip, dst: nh, iif: owner.iface}) : undefined
      if (arpBad) {
        return this.fail({host: owner.host.name, hook: 'LINK', chain: '', reason: `${owner.host.name} does not answer ${h.name}'s ARP request for ${formatIp(nh)} (from ${formatIp(sip!)} on ${owner.iface}): arp_process validates the request's sender like a packet's source, and ${arpBad}; ${h.name} never learns where to send, and the packet is dropped`}, p)
      }
      this.step(h, {hook: 'LINK', table: '', chain: '', verdict: `sent on ${dev ?? '?'} to ${owner.host.name}`, note: gateway ? `next hop ${formatIp(gateway)}` : undefined}, skb)
      return this.receive(owner.host, owner.iface, p, undefined, h.name)
    }
    const clientOutside = !this.world.clientHost && ipEquals(p.dst, this.world.opts.client)
    if (clientOutside && (!gateway || !this.world.ownerOf(gateway))) {
      this.step(h, {hook: 'LINK', table: '', chain: '', verdict: `sent on ${dev ?? '?'} to the client`, note: gateway ? `via ${formatIp(gateway)}, which is not among the snapshots: forwarded unchanged` : undefined}, skb)
      this.hops.push({from: h.name, to: 'client', packet: formatPacket(p)})
      return this.done({kind: 'client', packet: p})
    }
    if (gateway) {
      // a next hop outside the snapshots forwards the packet unchanged to its destination
      const dstOwner = this.world.ownerOf(p.dst, h)
      if (dstOwner) {
        const back = routeLookup(dstOwner.host.routing, {dst: p.src})
        const iif = back.kind === 'unicast' && back.dev ? back.dev : dstOwner.iface
        this.step(h, {hook: 'LINK', table: '', chain: '', verdict: `sent on ${dev ?? '?'} via ${formatIp(gateway)}`, note: `${formatIp(gateway)} is not among the snapshots: it forwards the packet unchanged to ${dstOwner.host.name}`}, skb)
        return this.receive(dstOwner.host, iif, p, undefined, h.name)
      }
    }
    if (isLoopback(p.dst)) return this.fail({host: h.name, hook: 'LINK', chain: '', reason: `a packet to ${formatIp(p.dst)} cannot leave the host`}, p)
    this.step(h, {hook: 'LINK', table: '', chain: '', verdict: `sent on ${dev ?? '?'} to ${formatIp(p.dst)}`, note: `${formatIp(p.dst)} is not among the snapshots`}, skb)
    this.hops.push({from: h.name, to: formatIp(p.dst), packet: formatPacket(p)})
    return this.done({kind: 'external', addr: p.dst, packet: p, via: h, dev})
  }

  private routeFailure(h: HostModel, route: RouteResult, p: Packet): Journey | undefined {
    if (route.kind === 'unicast' || route.kind === 'local' || route.kind === 'broadcast') return undefined
    const rule = route.kind === 'none' ? undefined : (route.route?.loc ?? route.rule?.loc)
    const why = route.kind === 'none' ? `no route to ${formatIp(p.dst)} (network unreachable)` : `the route to ${formatIp(p.dst)} is ${route.kind}`
    return this.fail({host: h.name, hook: 'ROUTING', chain: '', rule, reason: why}, p)
  }

  private routeStep(h: HostModel, route: RouteResult, skb: Skb, what: string): void {
    if (route.kind === 'none') return
    const r = 'route' in route ? route.route : undefined
    const verdict = route.kind === 'unicast' ? `${route.gateway ? `via ${formatIp(route.gateway)} ` : ''}dev ${route.dev ?? '?'}` : route.kind
    const rule = route.rule && route.rule.priority !== 0 && route.rule.priority < 32766 ? ` (policy rule ${route.rule.priority})` : ''
    this.step(h, {hook: 'ROUTING', table: 'route', chain: r ? tableName(r.table) : '', rule: r?.loc, verdict, note: what + rule}, skb)
    const hops = r?.nexthops ?? []
    if (route.kind === 'unicast' && hops.length > 1) {
      // fib_select_multipath: the next hop is drawn by a hash of the flow (fib_multipath_hash_policy) under a seed
      // that is random per boot unless net.ipv4.fib_multipath_hash_seed is set: not predictable from a snapshot
      const hop = (x: {gateway?: IpAddr; dev?: string}) => `${x.gateway ? `via ${formatIp(x.gateway)} ` : ''}dev ${x.dev ?? '?'}`
      this.assume(`${h.name}: the multipath route ${r!.loc.file}:${r!.loc.line} picks its next hop by a hash of the flow with a per-boot seed: trace follows the first (${hop(hops[0]!)}); the kernel may take ${hops.slice(1).map(hop).join(' or ')}`)
    }
  }
}

function devOf(route: RouteResult): string | undefined {
  if (route.kind === 'unicast') return route.dev
  if (route.kind === 'local' || route.kind === 'broadcast') return 'lo'
  return undefined
}

function isTcpReset(verdict: string, target: {readonly kind: string; readonly with?: string} | undefined): boolean {
  return verdict === 'REJECT' && target?.kind === 'REJECT' && target.with === 'tcp-reset'
}

function chainLoc(chain: IptChain): Loc {
  return chain.loc
}

function ipvsView(c: IpvsConnection, dir: 'ORIGINAL' | 'REPLY'): IpvsView {
  const m = effectiveMethod(c.service, c.dest) === 'masq' ? 'MASQ' : effectiveMethod(c.service, c.dest) === 'tunnel' ? 'IPIP' : 'GATE'
  return {vaddr: c.vaddr, vport: c.vport, vproto: c.proto, method: m, dir}
}

export {PROTO}
