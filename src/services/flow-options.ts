// `--vip IP:PORT [--proto tcp|udp] [--client IP[:PORT]]`: the connection a command is asked about (trace replays
// it; check's rules also check that this very flow is served). A bad value is a UsageError (exit 2).
import {parseEndpoint, parseIp, type Endpoint, type IpAddr} from '../model/ip.js'
import {UsageError} from '../model/source.js'

export interface FlowOptions {
  readonly vip: Endpoint
  readonly proto: 'tcp' | 'udp'
  readonly client?: IpAddr
  readonly clientPort?: number
}

/** `what` says in an error who cannot take an IPv6 flow (the dataplane and the service model are IPv4). */
export function flowOptions(vip: string, proto: 'tcp' | 'udp', client: string | undefined, what: string): FlowOptions {
  const ep = parseEndpoint(vip)
  if (!ep) throw new UsageError(`--vip ${JSON.stringify(vip)}: expected IP:PORT, e.g. 203.0.113.100:80`)
  if (ep.ip.family !== 4) throw new UsageError(`--vip ${JSON.stringify(vip)}: ${what}; IPv6 is not modelled`)
  let c: IpAddr | undefined
  let port: number | undefined
  if (client !== undefined) {
    const asEp = parseEndpoint(client)
    c = asEp?.ip ?? parseIp(client)
    port = asEp?.port
    if (!c) throw new UsageError(`--client ${JSON.stringify(client)}: expected an IP address (or IP:PORT)`)
    if (c.family !== ep.ip.family) throw new UsageError('--client and --vip must be of the same address family')
  }
  return {vip: ep, proto, client: c, clientPort: port}
}
