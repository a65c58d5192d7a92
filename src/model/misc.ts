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

export interface KeepalivedConfig {
  readonly services: readonly IpvsService[]
  /** VIPs of vrrp_instance virtual_ipaddress blocks */
  readonly vrrpAddresses: readonly {readonly ip: IpAddr; readonly prefixlen?: number; readonly dev?: string; readonly loc: Loc}[]
  readonly vrrpStrict: boolean
  /** `include` lines: recorded, not followed (the included files are not in the snapshot) */
  readonly includes?: readonly {readonly path: string; readonly loc: Loc}[]
  /** valid keepalived syntax lvsdoctor does not interpret (virtual_server_group ranges, unknown keywords...) */
  readonly notModelled?: readonly NotModelled[]
}
