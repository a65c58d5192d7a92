// Sysctls, the conntrack table and keepalived's configuration.
import type {IpAddr} from './ip.js'
import type {IpvsService} from './ipvs.js'
import type {Loc, NotModelled} from './source.js'

export interface SysctlValue {
  readonly value: string
  readonly loc: Loc
}

/** `sysctl -a` output: key = value. Keys use dots (`net.ipv4.ip_forward`). */
export type Sysctls = ReadonlyMap<string, SysctlValue>

export interface CtTuple {
  readonly src: IpAddr
  readonly dst: IpAddr
  readonly sport?: number
  readonly dport?: number
  /** icmp */
  readonly type?: number
  readonly code?: number
  readonly id?: number
}

export interface ConntrackEntry {
  readonly l3: 'ipv4' | 'ipv6'
  readonly proto: string
  readonly protoNum: number
  readonly timeout?: number
  /** TCP/SCTP/DCCP state, e.g. ESTABLISHED, TIME_WAIT */
  readonly state?: string
  readonly orig: CtTuple
  readonly reply: CtTuple
  /** ASSURED, UNREPLIED, SEEN_REPLY... (from the [FLAG] words of conntrack -L) */
  readonly flags: readonly string[]
  readonly mark?: number
  readonly zone?: number
  readonly use?: number
  readonly loc: Loc
}

/**
 * A listening socket (`ss -Hltnu`, `ss -ltnu`, `netstat -ltnu`): TCP in LISTEN, UDP bound (UNCONN). `addr` is
 * undefined for a wildcard: `0.0.0.0` (IPv4 only), `*` (an IPv6 socket that also takes IPv4, v6only off) or
 * `[::]` (IPv6 only, v6only on; netstat's `:::` cannot tell and is taken as ss's `*`, the Linux default).
 */
export interface Listener {
  readonly proto: 'tcp' | 'udp' | 'sctp'
  /** which connections it can take: 4 (an IPv4 address or 0.0.0.0), 6 (v6only), 'both' (`*`, `:::`) */
  readonly family: 4 | 6 | 'both'
  readonly addr?: IpAddr
  readonly port: number
  /** bound to a device (SO_BINDTODEVICE, ss's `%dev`) */
  readonly dev?: string
  readonly loc: Loc
}

export interface KeepalivedConfig {
  readonly services: readonly IpvsService[]
  /** VIPs of vrrp_instance virtual_ipaddress blocks */
  readonly vrrpAddresses: readonly {readonly ip: IpAddr; readonly prefixlen?: number; readonly dev?: string; readonly loc: Loc}[]
  readonly vrrpStrict: boolean
  /** global_defs `lvs_timeouts [tcp N] [tcpfin N] [udp N]`: what keepalived sets with ipvsadm --set at start */
  readonly lvsTimeouts?: {readonly tcp?: number; readonly tcpfin?: number; readonly udp?: number; readonly loc: Loc}
  /** `include` lines: recorded, not followed (the included files are not in the snapshot) */
  readonly includes?: readonly {readonly path: string; readonly loc: Loc}[]
  /** valid keepalived syntax lvsdoctor does not interpret (virtual_server_group ranges, unknown keywords...) */
  readonly notModelled?: readonly NotModelled[]
}
