// Interfaces, addresses, routes and policy rules as `ip -j` prints them.
import type {Family, IpAddr, Prefix} from './ip.js'
import type {Loc} from './source.js'

export interface IfAddr {
  readonly family: Family
  readonly ip: IpAddr
  readonly prefixlen: number
  /** 'host' | 'link' | 'global' | 'site' | a number */
  readonly scope: string
  readonly label?: string
  /** point-to-point peer address (`peer` in ip addr) */
  readonly peer?: Prefix
  readonly broadcast?: IpAddr
  /** a secondary address of its subnet (`secondary` in ip addr) */
  readonly secondary?: boolean
  /** other address flags ip prints: nodad, tentative, deprecated, dadfailed, dynamic, noprefixroute... */
  readonly flags?: readonly string[]
  readonly loc: Loc
}

export interface Interface {
  readonly ifindex: number
  readonly name: string
  readonly flags: readonly string[]
  readonly mtu?: number
  readonly operstate?: string
  /** `link` name of a veth/vlan peer, when ip prints it */
  readonly link?: string
  readonly linkType?: string
  /** `linkinfo.info_kind`: veth, ipip, vlan, bridge, dummy... (only with `ip -d`) */
  readonly kind?: string
  readonly mac?: string
  readonly master?: string
  /** `link_netnsid`: the veth peer (or lower device) lives in another network namespace */
  readonly linkNetnsid?: number
  readonly addresses: readonly IfAddr[]
  readonly loc: Loc
}

export type RouteType =
  | 'unicast' | 'local' | 'broadcast' | 'multicast' | 'anycast'
  | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | 'nat'

export interface NextHop {
  readonly gateway?: IpAddr
  readonly dev?: string
  readonly weight?: number
  /** onlink, dead, linkdown... */
  readonly flags?: readonly string[]
}

export interface Route {
  /** 'main', 'local', 'default' or a number as a string */
  readonly table: string
  readonly type: RouteType
  readonly family: Family
  readonly dst: Prefix
  readonly gateway?: IpAddr
  readonly dev?: string
  /** multipath routes */
  readonly nexthops?: readonly NextHop[]
  readonly src?: IpAddr
  readonly scope: string
  readonly metric: number
  readonly protocol?: string
  readonly tos?: number
  readonly flags: readonly string[]
  /** IPv6 router preference (`pref medium`) */
  readonly pref?: string
  /** attributes lvsdoctor keeps in loc.text but does not interpret (`from` source routing, `nhid`, `encap`...) */
  readonly notModelled?: readonly string[]
  readonly loc: Loc
}

export interface IpRule {
  readonly priority: number
  readonly family: Family
  readonly not: boolean
  readonly from?: Prefix
  readonly to?: Prefix
  readonly fwmark?: number
  readonly fwmask?: number
  readonly iif?: string
  readonly oif?: string
  readonly tos?: number
  readonly ipproto?: number
  readonly sport?: readonly [number, number]
  readonly dport?: readonly [number, number]
  readonly uidrange?: readonly [number, number]
  /** 'lookup' with a table, or a terminal action */
  readonly action: 'lookup' | 'blackhole' | 'unreachable' | 'prohibit' | 'goto' | 'nop'
  readonly table?: string
  readonly goto?: number
  readonly suppressPrefixlen?: number
  readonly suppressIfgroup?: number
  /** selectors lvsdoctor keeps in loc.text but does not interpret (`l3mdev`, `tun_id`, `tos` names...) */
  readonly notModelled?: readonly string[]
  readonly loc: Loc
}
