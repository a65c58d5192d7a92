// IPVS virtual services, destinations and connections, from ipvsadm or keepalived.conf.
import type {Family, IpAddr} from './ip.js'
import type {Loc} from './source.js'

export type IpvsProto = 'tcp' | 'udp' | 'sctp'
export type IpvsMethod = 'masq' | 'route' | 'tunnel' | 'local' | 'bypass'

export interface IpvsStats {
  readonly conns: number
  readonly inPkts: number
  readonly outPkts: number
  readonly inBytes: number
  readonly outBytes: number
}

export interface IpvsDest {
  readonly ip: IpAddr
  readonly port: number
  readonly method: IpvsMethod
  readonly weight: number
  /** upper/lower connection thresholds (-x/-y), 0 = none */
  readonly upperThreshold: number
  readonly lowerThreshold: number
  readonly activeConns?: number
  readonly inactiveConns?: number
  readonly stats?: IpvsStats
  readonly tunnelType?: 'ipip' | 'gue' | 'gre'
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
  readonly stats?: IpvsStats
  readonly dests: IpvsDest[]
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
  readonly loc: Loc
}
