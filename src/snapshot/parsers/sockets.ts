// Listening sockets: `ss -Hltnu` (what `snapshot` runs), `ss -ltnu` with its header, extra columns (`-e`, `-p`), and
// `netstat -ltnu[p]`. TCP sockets in LISTEN and bound UDP sockets (UNCONN) are kept; the other lines of a fuller
// listing (`ss -a`: established connections, unix sockets) are counted under notModelled, never dropped silently.
//
// ss prints an IPv4 socket's wildcard as 0.0.0.0, an IPv6 socket bound to :: as `*` when it also takes IPv4
// (v6only off) and `[::]` when it does not (v6only on), and a device binding as `ADDR%DEV` (ss.c, inet_addr_print;
// checked with sockets made in a network namespace). netstat prints `:::` for both kinds of IPv6 wildcard.
import type {Listener} from '../../model/misc.js'
import type {NotModelled} from '../../model/source.js'
import {ParseError} from '../../model/source.js'
import {parseIp, type IpAddr} from '../../model/ip.js'

export interface ListenerTable {
  readonly listeners: Listener[]
  readonly notModelled: NotModelled[]
}

const PROTOS: Readonly<Record<string, Listener['proto']>> = {tcp: 'tcp', tcp6: 'tcp', udp: 'udp', udp6: 'udp', sctp: 'sctp', sctp6: 'sctp'}

/** Is this the output of ss or netstat listing sockets? (content detection of a bare file) */
export function looksLikeSockets(text: string): boolean {
  return (
    /^Netid\s+State\s+Recv-Q\s+Send-Q\s+Local Address:Port/m.test(text) ||
    /^(State\s+)?Recv-Q\s+Send-Q\s+Local Address:Port\s+Peer Address:Port/m.test(text) ||
    /^Proto\s+Recv-Q\s+Send-Q\s+Local Address\s+Foreign Address/m.test(text) ||
    /^(tcp|udp|sctp)\s+(LISTEN|UNCONN)\s+\d+\s+\d+\s+\S+:(\d+|\*)\s/m.test(text)
  )
}

export function parseListeners(text: string, file: string): ListenerTable {
  if (text.trim() === '') {
    // `ss -Hltnu` prints nothing when nothing listens: an empty file is a real answer
    return {listeners: [], notModelled: []}
  }
  const listeners: Listener[] = []
  const other = new Map<string, {n: number; line: number; text: string}>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '')
    const t = raw.trim()
    if (t === '' || /^(Netid|State|Recv-Q|Proto|Active )/.test(t)) continue
    const w = t.split(/\s+/)
    const loc = {file, line: i + 1, text: raw}
    let proto: string
    let state: string | undefined
    let local: string
    if (/^\d+$/.test(w[1] ?? '') && /^[a-z]/.test(w[0]!)) {
      // netstat: Proto Recv-Q Send-Q Local Foreign [State] [PID/Program]
      if (w.length < 5 || !/^\d+$/.test(w[2] ?? '')) throw new ParseError(file, i + 1, 'a line of `ss -ltnu` or `netstat -ltnu` (proto, state or queues, local and peer address)', raw)
      proto = w[0]!
      local = w[3]!
      state = w[5] && !w[5].includes('/') ? w[5] : undefined
      if (proto.startsWith('udp') && state === undefined) state = 'UNCONN'
    } else if (/^\d+$/.test(w[2] ?? '') && /^\d+$/.test(w[3] ?? '') && w.length >= 6) {
      // ss with the Netid column: Netid State Recv-Q Send-Q Local Peer [details]
      proto = w[0]!
      state = w[1]!
      local = w[4]!
    } else if (/^[A-Z][A-Z0-9-]+$/.test(w[0]!) && /^\d+$/.test(w[1] ?? '') && /^\d+$/.test(w[2] ?? '') && w.length >= 5) {
      // ss of one protocol (`ss -ltn`, `ss -lun`): no Netid column; a TCP socket listens, a UDP one is UNCONN
      state = w[0]!
      proto = state === 'UNCONN' ? 'udp' : 'tcp'
      local = w[3]!
    } else {
      throw new ParseError(file, i + 1, 'a line of `ss -ltnu` (Netid State Recv-Q Send-Q Local:Port Peer:Port) or `netstat -ltnu`', raw)
    }
    const p = PROTOS[proto]
    const listening = state === 'LISTEN' || (state === 'UNCONN' && p === 'udp') || (state === 'LISTEN' && p === 'sctp')
    if (!p || !listening) {
      const key = `${proto} ${state ?? ''}`.trim()
      const o = other.get(key)
      if (o) o.n++
      else other.set(key, {n: 1, line: i + 1, text: raw})
      continue
    }
    const ep = parseLocal(local, proto.endsWith('6'))
    if (!ep) throw new ParseError(file, i + 1, 'a local address ADDR:PORT ([IPv6]:PORT, *:PORT, ADDR%DEV:PORT)', local)
    if (ep.port === undefined) continue
    listeners.push({proto: p, family: ep.family, ...(ep.addr ? {addr: ep.addr} : {}), port: ep.port, ...(ep.dev ? {dev: ep.dev} : {}), loc})
  }
  const notModelled: NotModelled[] = [...other].map(([key, o]) => ({file, line: o.line, what: `${o.n} socket(s) '${key}': not a TCP/UDP/SCTP listener, not used`}))
  return {listeners, notModelled}
}

/** `0.0.0.0:53`, `127.0.0.53%lo:53`, `*:80`, `[::]:22`, `[fe80::1]%eth0:546`, `[::ffff:10.0.0.1]:80`, netstat's and old ss's `:::22`. */
function parseLocal(s: string, netstat6: boolean): {family: Listener['family']; addr?: IpAddr; port?: number; dev?: string} | undefined {
  const c = s.lastIndexOf(':')
  if (c <= 0) return undefined
  const portText = s.slice(c + 1)
  const port = portText === '*' ? undefined : Number(portText)
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) return undefined
  let host = s.slice(0, c)
  let dev: string | undefined
  const pct = host.lastIndexOf('%')
  if (pct > 0 && !host.endsWith(']')) {
    dev = host.slice(pct + 1)
    host = host.slice(0, pct)
  }
  const bracketed = host.startsWith('[') && host.endsWith(']')
  if (bracketed) host = host.slice(1, -1)
  else if (host.startsWith('[')) return undefined
  const scope = host.indexOf('%')
  if (scope > 0) host = host.slice(0, scope)
  if (host === '*') return {family: 'both', port, dev}
  if (host === '0.0.0.0') return {family: 4, port, dev}
  // today's ss prints a dual-stack wildcard as `*` and a v6only one as `[::]`; netstat and the ss of older iproute2
  // (RHEL/CentOS 7) print `:::80` for both, where the default (net.ipv6.bindv6only=0) is dual-stack
  if (host === '::') return {family: netstat6 || !bracketed ? 'both' : 6, port, dev}
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  const addr = parseIp(mapped ? mapped[1]! : host)
  if (!addr) return undefined
  return {family: addr.family, addr, port, dev}
}

/** The listener that takes a connection to ip:port arriving on `iif`, if any. */
export function listenerFor(listeners: readonly Listener[], proto: string, ip: IpAddr, port: number, iif?: string): Listener | undefined {
  let wildcard: Listener | undefined
  for (const l of listeners) {
    if (l.proto !== proto || l.port !== port) continue
    if (l.dev !== undefined && iif !== undefined && l.dev !== iif) continue
    if (l.addr) {
      if (l.addr.family === ip.family && l.addr.value === ip.value) return l
    } else if (l.family === ip.family || l.family === 'both') wildcard ??= l
  }
  return wildcard
}
