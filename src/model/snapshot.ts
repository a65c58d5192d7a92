// One host's snapshot, parsed: what `check` and `trace` work on.
import type {IptablesRuleset} from './iptables.js'
import type {IpsetSnapshot} from './ipset.js'
import type {IpvsConfig, IpvsConn} from './ipvs.js'
import type {ConntrackEntry, KeepalivedConfig, Listener, Sysctls} from './misc.js'
import type {Interface, IpRule, Route} from './net.js'
import type {NftRuleset} from './nft.js'
import type {Loc, NotModelled, ParseError} from './source.js'

export const SNAPSHOT_FORMAT = 'lvsdoctor-snapshot/1'

export type Role = 'director' | 'realserver' | 'client' | 'router' | 'auto'

export interface CommandRecord {
  readonly argv: readonly string[]
  readonly exitCode: number | null
  readonly durationMs: number
  readonly stderr: string
  /** lvsdoctor's one-line explanation when the command could not give its output */
  readonly gap?: string
  /** lvsdoctor's remark on an output that is complete (e.g. which iptables backend produced it) */
  readonly note?: string
}

export interface Manifest {
  readonly format: string
  readonly host: string
  readonly role: Role
  readonly collectedAt?: string
  readonly commands?: Readonly<Record<string, CommandRecord>>
  readonly [extra: string]: unknown
}

/** The files of the format, in the order of ARCHITECTURE.md. */
export const SNAPSHOT_FILES = [
  'manifest.json',
  'iptables-save.txt',
  'iptables-legacy-save.txt',
  'ip6tables-save.txt',
  'nft-ruleset.json',
  'ipvsadm-Sn.txt',
  'ipvsadm-Ln.txt',
  'ipvsadm-Lnc.txt',
  'ipvsadm-timeout.txt',
  'ip-addr.json',
  'ip-route.json',
  'ip-rule.json',
  'sysctl.txt',
  'conntrack.txt',
  'ss-ltnu.txt',
  'ipset-save.txt',
  'keepalived.conf',
  'capture.pcap',
  'capture.pcapng',
] as const

export type SnapshotFile = (typeof SNAPSHOT_FILES)[number]

/**
 * The timeouts of IPVS connection entries in seconds (ipvsadm --set TCP TCPFIN UDP; kernel defaults 900 120 300):
 * an idle ESTABLISHED entry expires after `tcp`. From `ipvsadm -Ln --timeout` or keepalived's `lvs_timeouts`
 * (`source`), where a value keepalived leaves out is undefined (unchanged).
 */
export interface IpvsTimeouts {
  readonly tcp?: number
  readonly tcpfin?: number
  readonly udp?: number
  readonly loc: Loc
}

export interface HostSnapshot {
  readonly name: string
  role: Role
  /** true when the role was not given by the manifest but inferred from the contents */
  roleInferred: boolean
  /** the path the snapshot was read from */
  readonly source: string
  /** snapshot files present (names of the format) */
  readonly files: string[]
  /** raw text of each text file, kept so that fixes can be applied to copies and evidence quoted */
  readonly raw: Map<string, string>
  manifest?: Manifest
  iptables?: IptablesRuleset
  /** iptables-legacy-save.txt: rules held by the legacy backend when both backends have rules */
  iptablesLegacy?: IptablesRuleset
  ip6tables?: IptablesRuleset
  nft?: NftRuleset
  ipvs?: IpvsConfig
  ipvsConns?: readonly IpvsConn[]
  /** IPVS connection timeouts: ipvsadm-timeout.txt, else keepalived's global_defs lvs_timeouts (undefined: not known) */
  ipvsTimeouts?: IpvsTimeouts
  interfaces?: readonly Interface[]
  routes?: readonly Route[]
  rules?: readonly IpRule[]
  sysctl?: Sysctls
  conntrack?: readonly ConntrackEntry[]
  /** ss-ltnu.txt: the host's listening sockets (absent: unknown, not none) */
  listeners?: readonly Listener[]
  keepalived?: KeepalivedConfig
  /** ipset-save.txt: the host's ipsets (`ipset save`); absent: `-m set` matches stay undecided (assumed, said) */
  ipsets?: IpsetSnapshot
  /** path of a capture file in the snapshot, read on demand */
  capturePath?: string
  /** the capture's bytes when the snapshot came from a .tar.gz (no path to read it from) */
  captureData?: Buffer
  readonly notModelled: NotModelled[]
  /** files that failed to parse; the other files still loaded */
  readonly errors: ParseError[]
}
