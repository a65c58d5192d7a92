// `ipvsadm -Ln --timeout`: one line, `Timeout (tcp tcpfin udp): 900 120 300` (ipvsadm.c print_timeout, the
// ESTABLISHED, FIN_WAIT and UDP timeouts of IPVS connection entries in seconds, set with `ipvsadm --set`).
import type {IpvsTimeouts} from '../../model/snapshot.js'
import {ParseError} from '../../model/source.js'

const LINE = /^Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)\s*$/

export function parseIpvsTimeout(text: string, file: string): IpvsTimeouts {
  const lines = text.split('\n')
  let found: IpvsTimeouts | undefined
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '')
    if (raw.trim() === '') continue
    const m = LINE.exec(raw)
    if (!m || found) throw new ParseError(file, i + 1, found ? 'nothing after the timeout line' : 'the `ipvsadm -Ln --timeout` line `Timeout (tcp tcpfin udp): TCP TCPFIN UDP`', raw)
    found = {tcp: Number(m[1]), tcpfin: Number(m[2]), udp: Number(m[3]), loc: {file, line: i + 1, text: raw}}
  }
  if (!found) throw new ParseError(file, 1, 'the `ipvsadm -Ln --timeout` line `Timeout (tcp tcpfin udp): TCP TCPFIN UDP`', 'an empty file')
  return found
}
