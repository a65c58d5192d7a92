// The typed model of an `ipset save` dump (ipset-save.txt): the sets `-m set --match-set NAME FLAGS` looks up.
// ipset(8): `create NAME TYPE [create-options]` then `add NAME ENTRY [entry-options]`, one line each.
import type {Family, IpAddr, Prefix} from './ip.js'
import type {Loc, NotModelled} from './source.js'

/**
 * What one dimension of a set type holds. A `-m set` match gives one src/dst flag per dimension (xt_set: the
 * flags beyond the set's dimensions are ignored, fewer never match); `set` is list:set's member.
 */
export type IpsetDim = 'ip' | 'net' | 'port' | 'mark' | 'iface' | 'mac' | 'set'

/** The set types lvsdoctor models, with their dimensions (ipset(8) SET TYPES; kernel net/netfilter/ipset/ip_set_*.c). */
export const IPSET_TYPES: Readonly<Record<string, readonly IpsetDim[]>> = {
  'hash:ip': ['ip'],
  'hash:net': ['net'],
  'hash:ip,port': ['ip', 'port'],
  'hash:net,port': ['net', 'port'],
  'hash:ip,port,ip': ['ip', 'port', 'ip'],
  'hash:ip,port,net': ['ip', 'port', 'net'],
  'hash:net,port,net': ['net', 'port', 'net'],
  'hash:net,net': ['net', 'net'],
  'hash:ip,mark': ['ip', 'mark'],
  'hash:net,iface': ['net', 'iface'],
  'hash:mac': ['mac'],
  'bitmap:ip': ['ip'],
  'bitmap:port': ['port'],
  'bitmap:ip,mac': ['ip', 'mac'],
  'list:set': ['set'],
}

/** One dimension of an entry, as `ipset save` prints it (a range only when the input gave one). */
export type IpsetPart =
  /** an address dimension: one address (from = to) or a range; hash:ip with `netmask`: the masked network */
  | {readonly kind: 'ip'; readonly from: IpAddr; readonly to: IpAddr}
  | {readonly kind: 'net'; readonly prefix: Prefix}
  /**
   * the port dimension includes the protocol (ip_set_getport.c): tcp/udp/sctp/udplite ports; icmp/icmpv6
   * (type << 8) | code; any other protocol port 0. `proto` undefined: a protocol name lvsdoctor does not know.
   */
  | {readonly kind: 'port'; readonly proto: number | undefined; readonly protoName: string; readonly from: number; readonly to: number}
  | {readonly kind: 'mark'; readonly value: number}
  /** hash:net,iface: `physdev:NAME` entries match bridge ports only (never from an iptables rule without bridging) */
  | {readonly kind: 'iface'; readonly name: string; readonly physdev: boolean}
  | {readonly kind: 'mac'; readonly mac: string}
  | {readonly kind: 'set'; readonly name: string}

export interface IpsetEntry {
  readonly loc: Loc
  /** the ENTRY word as written */
  readonly text: string
  /** one per dimension of the set's type (empty for a type that is not modelled) */
  readonly parts: readonly IpsetPart[]
  /** `nomatch`: hash types with a net dimension skip the packet when this entry is the most specific one */
  readonly nomatch: boolean
  /** hash:net,iface `wildcard`: the interface name is a prefix */
  readonly wildcard: boolean
  /** seconds left when the snapshot was taken */
  readonly timeout?: number
  readonly packets?: number
  readonly bytes?: number
  readonly comment?: string
  readonly skbmark?: string
  readonly skbprio?: string
  readonly skbqueue?: number
  /** entry options lvsdoctor does not know (listed under notModelled) */
  readonly unknownOptions?: readonly string[]
}

export interface IpSet {
  readonly name: string
  /** the type as written, e.g. `hash:ip,port` */
  readonly type: string
  /** the dimensions of a modelled type; undefined: a type lvsdoctor does not model (its matches stay undecided) */
  readonly dims?: readonly IpsetDim[]
  /** `family inet|inet6` (bitmap:port and list:set hold no addresses: undefined) */
  readonly family?: Family
  readonly loc: Loc
  /** create options with their values as written (`counters`, `comment`, `skbinfo`, `forceadd`: '') */
  readonly options: ReadonlyMap<string, string>
  /** hash:ip / bitmap:ip `netmask N`: entries and packets are masked to this prefix length */
  readonly netmask?: number
  /** hash:ip,mark `markmask` (default 0xffffffff) */
  readonly markmask?: number
  /** bitmap:ip range (first and last address), bitmap:port range (ports) */
  readonly range?: {readonly from: IpAddr; readonly to: IpAddr}
  readonly portRange?: readonly [number, number]
  /** the default timeout of the set: entries may expire after the snapshot */
  readonly timeout?: number
  readonly entries: readonly IpsetEntry[]
}

export interface IpsetSnapshot {
  readonly file: string
  /** by name, in the order of their `create` lines */
  readonly sets: ReadonlyMap<string, IpSet>
  readonly notModelled: readonly NotModelled[]
  /** number of `add` lines */
  readonly entryCount: number
}
