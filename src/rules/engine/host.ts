// One host as the rules see it: its firewall, routing, addresses and sysctls, with evidence for each.
import {ipEquals, isLoopback, prefixContains, type IpAddr} from '../../model/ip.js'
import type {AddrType} from '../../model/iptables.js'
import type {Evidence} from '../../model/finding.js'
import type {IfAddr, Interface} from '../../model/net.js'
import type {SysctlValue} from '../../model/misc.js'
import type {HostSnapshot} from '../../model/snapshot.js'
import type {Loc} from '../../model/source.js'
import {isLocalAddress, lookupTable, routeLookup, selectSource, type FlowKey, type InetConf, type RouteResult, type RoutingTables} from '../../dataplane/routing.js'
import type {MatchEnv} from '../../dataplane/netfilter.js'
import type {CtView, IpvsView} from '../../dataplane/packet.js'
import {IptablesFirewall, type Firewall} from './firewall.js'
import {listenerFor} from '../../snapshot/parsers/sockets.js'
import {nftFirewallFor} from './nft-firewall.js'

export function ev(loc: Loc, host?: string): Evidence {
  return host === undefined ? {file: loc.file, line: loc.line, text: loc.text} : {file: loc.file, line: loc.line, text: loc.text, host}
}

// nft evidence points at nft-ruleset.json, whose whole ruleset is one JSON line: a rule is named by its table,
// chain and handle instead. The engine's nft rules carry `FAMILY TABLE CHAIN: RULE # handle N` (nft-view.ts
// nftRuleText, a map alternative adds ` (element K)`), base chains `chain FAMILY TABLE NAME { ... }`.
const NFT_RULE_LOC = /^(ip6?|inet|arp|bridge|netdev) (\S+) (\S+): .* # handle (\d+)( \(element .*\))?$/s
const NFT_CHAIN_LOC = /^chain (ip6?|inet|arp|bridge|netdev) (\S+) (\S+)(?: \{|$)/

/**
 * Where a rule (or chain) of a message is, for iptables and nft alike: `iptables-save.txt:12` for a line of a
 * text file, `nft rule inet filter input handle 7` / `nft chain inet filter input` for nft. Evidence keeps
 * file and line (the JSON contract); messages name rules with this.
 */
export function locRef(loc: Loc, o: {element?: boolean} = {}): string {
  const t = loc.text
  const r = NFT_RULE_LOC.exec(t)
  if (r) return `nft rule ${r[1]} ${r[2]} ${r[3]} handle ${r[4]}${o.element === false ? '' : (r[5] ?? '')}`
  const c = NFT_CHAIN_LOC.exec(t)
  if (c) return `nft chain ${c[1]} ${c[2]} ${c[3]}`
  return `${loc.file}:${loc.line}`
}

/** Several rules by locRef, each named once (the alternatives of one nft map rule are one rule). */
export function locRefs(locs: readonly Loc[]): string {
  return [...new Set(locs.map((l) => locRef(l, {element: false})))].join(', ')
}

/** An interface name whose rules no `-i NAME` pattern matches: the interface a packet came in on is not known. */
export const UNKNOWN_IF = '(unknown)'

/** The kernel's per-interface knobs combine `all` and the device (include/linux/inetdevice.h). */
export type ConfCombine = 'max' | 'or' | 'dev'

export interface ConfValue {
  readonly value: number
  /** the sysctl lines that decided */
  readonly lines: readonly SysctlValue[]
  /** false when a needed key is not in the snapshot (the kernel default was used) */
  readonly known: boolean
}

export class SysctlView {
  constructor(private readonly host: HostSnapshot) {}

  get present(): boolean {
    return this.host.sysctl !== undefined
  }

  get(key: string): SysctlValue | undefined {
    return this.host.sysctl?.get(key)
  }

  num(key: string): number | undefined {
    const v = this.get(key)
    if (!v) return undefined
    const n = Number(v.value.trim().split(/\s+/)[0])
    return Number.isFinite(n) ? n : undefined
  }

  /** `net.ipv4.conf.<dev>.<name>` as the kernel computes it: IN_DEV_MAXCONF (max), IN_DEV_ORCONF (or), or the device alone. */
  conf(name: string, dev: string, combine: ConfCombine, dflt = 0): ConfValue {
    const key = (d: string) => `net.ipv4.conf.${d.replace(/\./g, '/')}.${name}`
    const all = this.get(key('all'))
    const one = this.get(key(dev))
    const n = (v: SysctlValue | undefined) => (v ? Number(v.value.trim()) || 0 : dflt)
    const known = !!one && (combine === 'dev' || !!all)
    if (combine === 'dev') return {value: n(one), lines: one ? [one] : [], known}
    const a = n(all)
    const d = n(one)
    const value = combine === 'max' ? Math.max(a, d) : a || d ? 1 : 0
    return {value, lines: [all, one].filter((x): x is SysctlValue => !!x), known}
  }
}

/** statistic --mode random outside a cascade: the draw that always matches */
const NO_RANDOM = (): number => 0

export class HostView {
  readonly name: string
  readonly fw?: Firewall
  readonly rt?: RoutingTables
  readonly sysctl: SysctlView

  constructor(readonly snap: HostSnapshot) {
    this.name = snap.name
    const rulesets = [snap.iptables, snap.iptablesLegacy].filter((r): r is NonNullable<typeof r> => !!r && r.tables.size > 0)
    if (snap.interfaces || snap.routes) this.rt = {interfaces: snap.interfaces ?? [], routes: snap.routes ?? [], rules: snap.rules}
    // nft rulesets (with the iptables ones of the same host, in hook order): nft-firewall.ts
    this.fw = nftFirewallFor(snap, rulesets, this.rt) ?? (rulesets.length ? new IptablesFirewall(rulesets) : undefined)
    this.sysctl = new SysctlView(snap)
  }

  /** true/false when the snapshot has addresses or routes, undefined when it cannot tell */
  isLocal(ip: IpAddr): boolean | undefined {
    if (!this.rt) return undefined
    return isLocalAddress(this.rt, ip)
  }

  addressOf(ip: IpAddr): {iface: Interface; addr: IfAddr} | undefined {
    for (const iface of this.snap.interfaces ?? []) for (const addr of iface.addresses) if (ipEquals(addr.ip, ip)) return {iface, addr}
    return undefined
  }

  /** the first global IPv4 address of an interface other than lo */
  primaryAddress(family: 4 | 6 = 4): IpAddr | undefined {
    for (const i of this.snap.interfaces ?? []) {
      if (i.name === 'lo') continue
      for (const a of i.addresses) if (a.family === family && a.scope === 'global' && !isLoopback(a.ip)) return a.ip
    }
    return undefined
  }

  route(k: FlowKey): RouteResult | undefined {
    return this.rt ? routeLookup(this.rt, k) : undefined
  }

  sourceFor(dst: IpAddr): IpAddr | undefined {
    if (!this.rt) return undefined
    return selectSource(this.rt, routeLookup(this.rt, {dst}), dst)
  }

  /** the interface a packet to `dst` leaves by */
  oifFor(dst: IpAddr, src?: IpAddr, mark?: number): string | undefined {
    if (!this.rt) return undefined
    const r = this.route({dst, src, mark})
    if (!r) return undefined
    if (r.kind === 'unicast') return r.dev
    if (r.kind === 'local') return 'lo'
    return undefined
  }

  /** the route type of an address on this host, as the addrtype match sees it */
  addrType(ip: IpAddr, assumeLocal: readonly IpAddr[] = [], dev?: string): AddrType {
    // limited to a device (addrtype --limit-iface-in/out, nft fib ... iif/oif type: inet_dev_addr_type), an address
    // whose local-table route is another device's is UNICAST there (a VIP on lo is not LOCAL for a packet on eth0);
    // only with the routes the snapshot gives (the local table is then known)
    if (dev !== undefined && this.rt && this.snap.routes && ip.family === 4 && ip.value >> 24n !== 0n && ip.value !== 0xffffffffn && ip.value >> 28n !== 0xen) {
      const r = lookupTable(this.rt.routes, 'local', ip)
      if (r && r.dev !== undefined && r.dev !== dev) return 'UNICAST'
    }
    if (assumeLocal.some((a) => ipEquals(a, ip))) return 'LOCAL'
    if (this.rt) {
      if (isLocalAddress(this.rt, ip)) return 'LOCAL'
      if (this.rt.routes.some((r) => r.type === 'broadcast' && r.family === ip.family && prefixContains(r.dst, ip) && r.dst.len === (ip.family === 4 ? 32 : 128))) return 'BROADCAST'
    }
    if (ip.family === 4 && ip.value >> 28n === 0xen) return 'MULTICAST'
    if (ip.family === 4 && ip.value === 0xffffffffn) return 'BROADCAST'
    return 'UNICAST'
  }

  env(o: {iif?: string; oif?: string; ct?: CtView; assumeLocal?: readonly IpAddr[]; ipvs?: IpvsView}): MatchEnv {
    const assumeLocal = o.assumeLocal
    return {
      iif: o.iif,
      oif: o.oif,
      ct: o.ct,
      ...(o.ipvs ? {ipvs: o.ipvs} : {}),
      // one closure per host for the common case (no assumed-local addresses): envs are made per simulated hook
      addrType: assumeLocal === undefined ? (this.addrTypeOf ??= (ip, dev) => this.addrType(ip, undefined, dev)) : (ip, dev) => this.addrType(ip, assumeLocal, dev),
      // statistic --mode random in a filter path: taken as matching (cascades are computed separately)
      random: NO_RANDOM,
      redirectAddr: (this.redirectAddrOf ??= (iif) => this.deviceAddress(iif)),
      // -m set decided from ipset-save.txt (undefined without it: assumed, as before)
      ipsets: this.snap.ipsets,
      // -m rpfilter's reverse lookup: only from routes the snapshot gives (without them it is assumed to pass, said)
      ...(this.snap.routes && this.rt ? {reverseRoutes: this.rt} : {}),
    }
  }

  private addrTypeOf?: (ip: IpAddr, dev?: string) => AddrType
  private redirectAddrOf?: (iif: string | undefined) => IpAddr | undefined

  /** The first IPv4 address of a device (what REDIRECT rewrites the destination to); undefined when unknown. */
  deviceAddress(iif: string | undefined): IpAddr | undefined {
    if (iif === undefined) return undefined
    for (const i of this.snap.interfaces ?? []) {
      if (i.name !== iif) continue
      for (const a of i.addresses) if (a.family === 4) return a.ip
    }
    return undefined
  }

  /** The per-interface settings as the dataplane reads them (InetConf: all and the device combined as the kernel does). */
  inetConf(): InetConf {
    return (this.conf ??= inetConfOf(this.sysctl))
  }

  private conf?: InetConf

  sysctlEvidence(...keys: string[]): Evidence[] {
    const out: Evidence[] = []
    for (const k of keys) {
      const v = this.sysctl.get(k)
      if (v) out.push(ev(v.loc))
    }
    return out
  }
}

/**
 * The source a host's answers from `ip`:`port` are routed with: none for a UDP server on a wildcard address (it
 * answers with sendto and no bound address, so the kernel routes with saddr 0 and policy rules `from ADDR` do not
 * apply: fib4_rule_match), else `ip`. Only when the listening sockets are known (ss-ltnu.txt); trace does the same.
 */
export function answerSource(h: HostView, proto: string, ip: IpAddr, port: number | undefined): IpAddr | undefined {
  const ls = h.snap.listeners
  if (proto !== 'udp' || !ls || port === undefined) return ip
  const l = listenerFor(ls, 'udp', ip, port)
  return l && !l.addr ? undefined : ip
}

/** InetConf over a snapshot's sysctls, read as dataplane/host.ts reads them (missing keys: 0; forwarding: all, then ip_forward). */
function inetConfOf(v: SysctlView): InetConf {
  const key = (d: string, name: string) => `net.ipv4.conf.${d.replace(/\./g, '/')}.${name}`
  const num = (k: string): number | undefined => {
    const x = v.get(k)?.value.trim()
    return x !== undefined && /^-?\d+$/.test(x) ? Number(x) : undefined
  }
  return {
    or: (name, dev) => (num(key('all', name)) ?? 0) !== 0 || (dev !== undefined && (num(key(dev, name)) ?? 0) !== 0),
    max: (name, dev) => Math.max(num(key('all', name)) ?? 0, dev === undefined ? 0 : (num(key(dev, name)) ?? 0)),
    dev: (name, dev) => {
      const x = dev === undefined ? undefined : num(key(dev, name))
      if (x !== undefined) return x
      if (name === 'forwarding') return num(key('all', 'forwarding')) ?? num('net.ipv4.ip_forward') ?? (v.present ? 0 : 1)
      return num(key('all', name))
    },
  }
}
