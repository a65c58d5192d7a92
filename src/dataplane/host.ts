// One host of the replay: its snapshot turned into what the dataplane needs (routing tables, the
// per-interface sysctls as the kernel combines them, iptables tables, its own conntrack and IPVS state).
import {formatIp, hostPrefix, makePrefix, type IpAddr} from '../model/ip.js'
import type {AddrType, IptTable} from '../model/iptables.js'
import type {IfAddr, Interface, Route} from '../model/net.js'
import type {HostSnapshot, Role} from '../model/snapshot.js'
import {ConntrackTable, ctSettingsFrom} from './conntrack.js'
import {HOOK_TABLE, withNftChains, type Hook, type HookEntry} from './hooks.js'
import {DEFAULT_IPVS_SETTINGS, IpvsState} from './ipvs.js'
import {iptablesViewBeside, nftHostChains, nftNeedsConntrack, type NftHostChains} from './nft-hooks.js'
import {isLocalAddress, lookupTable, type InetConf, type RoutingTables} from './routing.js'

export interface HostModel {
  readonly name: string
  readonly role: Role
  readonly snap: HostSnapshot
  readonly routing: RoutingTables
  readonly conf: InetConf
  sysctl(key: string): string | undefined
  /** iptables (IPv4) tables by name; empty when the snapshot has no iptables-save */
  readonly tables: ReadonlyMap<string, IptTable>
  /** the nftables base chains replayed on this host (nft-hooks.ts); undefined without nft-ruleset.json */
  readonly nft?: NftHostChains
  /** the hook table of this host: the kernel's (hooks.ts) with its nft base chains merged in by priority */
  readonly hookTable: Readonly<Record<Hook, readonly HookEntry[]>>
  /** `numgen inc` counters of the nft rules (kernel state kept per host for the replay) */
  readonly numgen: Map<string, number>
  readonly ct: ConntrackTable
  readonly ipvs?: IpvsState
  /** net.ipv4.vs.conntrack */
  readonly ipvsConntrack: boolean
  /**
   * Whether conntrack runs in this network namespace at all: the kernel registers its hooks only when
   * something needs it (nf_ct_netns_get): the nat table, a conntrack/state/connmark match, a CONNMARK or CT
   * target, IPVS, or entries in the snapshot's conntrack table.
   */
  readonly ctActive: boolean
  /** what had to be assumed because a file is missing */
  readonly assumptions: string[]
  /** the address's type (xt_addrtype, nft fib type); `dev`: as seen on that device only (--limit-iface-in/out) */
  addrType(ip: IpAddr, dev?: string): AddrType
}

/** sysctl spells a dot in an interface name as '/' (eth0.100 -> net.ipv4.conf.eth0/100.rp_filter). */
function confKey(iface: string, name: string): string {
  return `net.ipv4.conf.${iface.replace(/\./g, '/')}.${name}`
}

export function hostModel(snap: HostSnapshot): HostModel {
  const assumptions: string[] = []
  const sys = snap.sysctl
  const sysctl = (k: string) => sys?.get(k)?.value.trim()
  if (!sys) assumptions.push(`${snap.name}: no sysctl.txt: assumed forwarding on, rp_filter 0, route_localnet 0, net.ipv4.vs.conntrack 0`)
  const num = (k: string): number | undefined => {
    const v = sysctl(k)
    return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined
  }
  const conf: InetConf = {
    or: (name, iface) => (num(confKey('all', name)) ?? 0) !== 0 || (iface !== undefined && (num(confKey(iface, name)) ?? 0) !== 0),
    max: (name, iface) => Math.max(num(confKey('all', name)) ?? 0, iface === undefined ? 0 : (num(confKey(iface, name)) ?? 0)),
    dev: (name, iface) => {
      const v = iface === undefined ? undefined : num(confKey(iface, name))
      if (v !== undefined) return v
      if (name === 'forwarding') return num(confKey('all', 'forwarding')) ?? num('net.ipv4.ip_forward') ?? (sys ? 0 : 1)
      return num(confKey('all', name))
    },
  }
  let interfaces = snap.interfaces ?? []
  let fromVrrp = false
  if (!snap.interfaces) {
    // keepalived.conf alone (a runbook's "is my config right?"): the VRRP addresses stand for the host's own
    const vrrp = keepalivedInterfaces(snap)
    if (vrrp) {
      interfaces = vrrp
      fromVrrp = true
      assumptions.push(`${snap.name}: no ip-addr.json: assumed to be the VRRP master, holding the virtual_ipaddress of keepalived.conf (${vrrp.map((i) => `${i.addresses.map((a) => formatIp(a.ip)).join(', ')} on ${i.name}`).join('; ')})`)
    } else assumptions.push(`${snap.name}: no ip-addr.json: the host's addresses are unknown`)
  }
  let routes: readonly Route[] = snap.routes ?? []
  if (!snap.routes) {
    routes = connectedRoutes(interfaces)
    const v4 = fromVrrp ? interfaces.find((i) => i.addresses.some((a) => a.family === 4)) : undefined
    if (v4) {
      // the clients are somewhere beyond the VIP's network: out of its device, as if on-link
      routes = [...routes, {table: 'main', type: 'unicast', family: 4, dst: makePrefix({family: 4, value: 0n}, 0), dev: v4.name, scope: 'link', metric: 0, flags: [], loc: v4.loc}]
      assumptions.push(`${snap.name}: no ip-route.json: assumed a default route out of ${v4.name}, the device of the first IPv4 VRRP address`)
    }
    assumptions.push(`${snap.name}: no ip-route.json: only the connected and local routes of its addresses are assumed`)
  }
  const routing: RoutingTables = {interfaces, routes, rules: snap.rules}
  const tables = snap.iptables?.tables ?? new Map<string, IptTable>()
  if (!snap.iptables && !snap.nft) assumptions.push(`${snap.name}: no iptables-save.txt: assumed no rules (every chain ACCEPT)`)
  const nft = snap.nft ? nftHostChains(snap.nft, {iptablesBeside: iptablesViewBeside(snap)}) : undefined
  if (nft && nft.skipped.length) assumptions.push(`${snap.name}: nft tables made by iptables-nft (${nft.skipped.map((t) => `${t.family} ${t.name}`).join(', ')}) are replayed once, from iptables-save.txt`)
  const hookTable = Object.fromEntries(
    (Object.keys(HOOK_TABLE) as Hook[]).map((k) => [k, withNftChains(HOOK_TABLE[k], nft?.byHook[k] ?? [])]),
  ) as Record<Hook, HookEntry[]>
  const ipvsConntrack = (num('net.ipv4.vs.conntrack') ?? 0) !== 0
  const ipvs = snap.ipvs && snap.ipvs.services.length > 0
    ? new IpvsState(snap.ipvs.services, {...DEFAULT_IPVS_SETTINGS, conntrack: ipvsConntrack, sloppyTcp: (num('net.ipv4.vs.sloppy_tcp') ?? 0) !== 0, expireQuiescentTemplate: (num('net.ipv4.vs.expire_quiescent_template') ?? 0) !== 0}, snap.ipvsConns)
    : undefined
  const addrType = (ip: IpAddr, dev?: string): AddrType => {
    if (ip.family === 4) {
      // __inet_dev_addr_type: 0/8 and 255.255.255.255 are BROADCAST, then the type of the route the local table
      // gives; limited to a device (addrtype --limit-iface-in/out, nft fib ... iif/oif type), a route of another
      // device leaves the address UNICAST (the VIP on lo is not LOCAL "on eth0")
      if (ip.value >> 24n === 0n || ip.value === 0xffffffffn) return 'BROADCAST'
      if (ip.value >> 28n === 0xen) return 'MULTICAST'
      const r = lookupTable(routes, 'local', ip)
      if (!r || (dev !== undefined && r.dev !== undefined && r.dev !== dev)) return 'UNICAST'
      return r.type.toUpperCase() as AddrType
    }
    if (ip.value === 0n) return 'UNSPEC'
    if (isLocalAddress(routing, ip)) return 'LOCAL'
    if (routes.some((r) => r.type === 'broadcast' && r.family === ip.family && r.dst.value === ip.value && r.dst.len === (ip.family === 4 ? 32 : 128))) return 'BROADCAST'
    return 'UNICAST'
  }
  const ctActive = needsConntrack(snap) || (!!snap.nft && nftNeedsConntrack(snap.nft, iptablesViewBeside(snap)))
  return {
    nft,
    hookTable,
    numgen: new Map(),
    ctActive,
    name: snap.name,
    role: snap.role,
    snap,
    routing,
    conf,
    sysctl,
    tables,
    ct: new ConntrackTable(ctSettingsFrom(sysctl)),
    ipvs,
    ipvsConntrack,
    assumptions,
    addrType,
  }
}

const CT_MATCHES = new Set(['ctstate', 'ctaddr', 'ctport', 'ctstatus', 'ctproto', 'ctdir'])

function needsConntrack(snap: HostSnapshot): boolean {
  // IPVS itself takes conntrack into the netns only for FTP-NAT services (__ip_vs_update_dest calls
  // ip_vs_register_conntrack when the service port is 21); the lab's 6.1 directors without rules keep an empty
  // conntrack table even for TUN, whose IPIP packets would otherwise be tracked at LOCAL_OUT
  if (snap.ipvs?.services.some((s) => s.port === 21 && s.dests.some((d) => d.method === 'masq'))) return true
  if (snap.conntrack && snap.conntrack.length > 0) return true
  if (!snap.iptables && !snap.sysctl) return true // nothing known: assume the usual, conntrack loaded
  for (const [name, t] of snap.iptables?.tables ?? []) {
    if (name === 'nat') return true
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        if (r.matches.some((m) => CT_MATCHES.has(m.kind) || (m.kind === 'mark' && m.module === 'connmark'))) return true
        if (r.target && (r.target.kind === 'CONNMARK' || (r.target.kind === 'CT' && !r.target.notrack))) return true
      }
    }
  }
  return false
}

/** The routes the kernel adds for each address (fib_add_ifaddr): a local route and the connected subnet. */
/** keepalived's vrrp_instance virtual_ipaddress entries as interfaces (the device named, else eth0). */
function keepalivedInterfaces(snap: HostSnapshot): Interface[] | undefined {
  const vrrp = snap.keepalived?.vrrpAddresses
  if (!vrrp || vrrp.length === 0) return undefined
  const byDev = new Map<string, IfAddr[]>()
  for (const a of vrrp) {
    const dev = a.dev ?? 'eth0'
    const list = byDev.get(dev) ?? []
    if (!byDev.has(dev)) byDev.set(dev, list)
    list.push({family: a.ip.family, ip: a.ip, prefixlen: a.prefixlen ?? (a.ip.family === 4 ? 32 : 128), scope: 'global', loc: a.loc})
  }
  return [...byDev].map(([name, addresses], i) => ({ifindex: i + 2, name, flags: ['UP'], operstate: 'UP', addresses, loc: addresses[0]!.loc}))
}

function connectedRoutes(interfaces: readonly Interface[]): Route[] {
  const out: Route[] = []
  for (const i of interfaces) {
    for (const a of i.addresses) {
      const loc = a.loc
      out.push({table: 'local', type: 'local', family: a.family, dst: hostPrefix(a.ip), dev: i.name, src: a.ip, scope: 'host', metric: 0, flags: [], loc})
      if (a.prefixlen < (a.family === 4 ? 32 : 128)) {
        out.push({table: 'main', type: 'unicast', family: a.family, dst: makePrefix(a.ip, a.prefixlen), dev: i.name, src: a.ip, scope: 'link', metric: 0, flags: [], loc})
      }
    }
  }
  return out
}

/** A host's non-loopback interface that holds `ip`, if any. */
export function ifaceOf(h: HostModel, ip: IpAddr): string | undefined {
  for (const i of h.routing.interfaces) {
    for (const a of i.addresses) if (a.ip.family === ip.family && a.ip.value === ip.value) return i.name
  }
  return undefined
}

export function describeHostAddr(h: HostModel, ip: IpAddr): string {
  return `${h.name} (${formatIp(ip)})`
}
