// IPVS virtual services, destinations and connections, from ipvsadm or keepalived.conf.
import type {Family, IpAddr} from './ip.js'
import type {Loc, NotModelled} from './source.js'

export type IpvsProto = 'tcp' | 'udp' | 'sctp'
/** 'unknown': `ipvsadm -Ln --stats`/`--rate`/`--thresholds`/`--persistent-conn` do not print the method */
export type IpvsMethod = 'masq' | 'route' | 'tunnel' | 'local' | 'bypass' | 'unknown'

export interface IpvsStats {
  readonly conns: number
  readonly inPkts: number
  readonly outPkts: number
  readonly inBytes: number
  readonly outBytes: number
}

/** `ipvsadm -Ln --rate`: per-second rates */
export interface IpvsRate {
  readonly cps: number
  readonly inPps: number
  readonly outPps: number
  readonly inBps: number
  readonly outBps: number
}

export interface IpvsDest {
  readonly ip: IpAddr
  readonly port: number
  readonly method: IpvsMethod
  /** NaN when the listing does not show it (`ipvsadm -Ln --stats`/`--rate`/`--thresholds`) */
  readonly weight: number
  /** upper/lower connection thresholds (-x/-y), 0 = none */
  readonly upperThreshold: number
  readonly lowerThreshold: number
  readonly activeConns?: number
  readonly inactiveConns?: number
  readonly stats?: IpvsStats
  readonly tunnelType?: 'ipip' | 'gue' | 'gre'
  /** GUE destination port (`--tun-port`) */
  readonly tunnelPort?: number
  /** GUE/GRE checksum mode: `--tun-nocsum` / `--tun-csum` / `--tun-remcsum` */
  readonly tunnelCsum?: 'nocsum' | 'csum' | 'remcsum'
  /** `ipvsadm -Ln --rate` */
  readonly rate?: IpvsRate
  /** `ipvsadm -Ln --persistent-conn` */
  readonly persistConns?: number
  /** keepalived.conf: the health checks of this real_server (HTTP_GET, TCP_CHECK... blocks) */
  readonly checks?: readonly HealthCheck[]
  readonly loc: Loc
}

/** A keepalived health checker of a real_server: what it connects to (connect_ip/connect_port, else the real server). */
export interface HealthCheck {
  /** HTTP_GET, SSL_GET, TCP_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, MISC_CHECK, BFD_CHECK, FILE_CHECK */
  readonly kind: string
  readonly ip: IpAddr
  /** undefined: no port (PING_CHECK, MISC_CHECK, FILE_CHECK, BFD_CHECK), or neither connect_port nor a real_server port */
  readonly port?: number
  /** `bindto`: the source address keepalived binds the check to */
  readonly bindto?: IpAddr
  /** UDP_CHECK `require_reply`: without it a timeout counts as success (only an ICMP error fails the check) */
  readonly requireReply?: boolean
  readonly loc: Loc
}

export interface IpvsService {
  readonly family: Family
  /** the service key: protocol + VIP:port, or an fwmark */
  readonly proto: IpvsProto | 'fwmark'
  readonly vip?: IpAddr
  readonly port?: number
  readonly fwmark?: number
  readonly scheduler: string
  /** persistence timeout in seconds, undefined when not persistent */
  readonly persistence?: number
  readonly persistenceNetmask?: number
  readonly flags: readonly string[]
  /** ipvsadm -Ln prints the scheduler flags after the scheduler name; -Sn prints `-b` */
  readonly schedFlags: readonly string[]
  readonly ops: boolean
  /** persistence engine (`--pe sip`) */
  readonly pe?: string
  readonly stats?: IpvsStats
  /** `ipvsadm -Ln --rate` */
  readonly rate?: IpvsRate
  readonly dests: IpvsDest[]
  /** options lvsdoctor keeps in loc.text but does not interpret (keepalived `sorry_server`, `quorum`...) */
  readonly notModelled?: readonly NotModelled[]
  readonly loc: Loc
}

export interface IpvsConfig {
  /** which file the services were read from */
  readonly source: 'ipvsadm-Sn.txt' | 'ipvsadm-Ln.txt' | 'keepalived.conf'
  readonly services: readonly IpvsService[]
}

export interface IpvsConn {
  readonly proto: string
  /** seconds left, from `mm:ss` */
  readonly expire: number
  readonly state: string
  readonly client: {readonly ip: IpAddr; readonly port: number}
  readonly virtual: {readonly ip: IpAddr; readonly port: number}
  readonly dest: {readonly ip: IpAddr; readonly port: number}
  /**
   * a persistence template of an fwmark service (protocol `IP`): ipvsadm prints the mark where the virtual
   * address goes (`0.0.0.10:0` for mark 10), so `virtual` is no address
   */
  readonly fwmark?: number
  readonly loc: Loc
}
