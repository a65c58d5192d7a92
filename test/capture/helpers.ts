// Shared helpers of the capture tests: temp files and a tiny TCP conversation.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {tcpPacket, type TcpSpec} from '../../src/capture/craft.js'
import {DecodedPacket, decodeFrame, DECODE} from '../../src/capture/decode.js'
import {readCapture, type ReadOptions, type ReadSummary} from '../../src/capture/reader.js'
import {TCP_FLAG} from '../../src/capture/wire.js'

export const {SYN, ACK, FIN, RST, PSH} = TCP_FLAG

let dir: string | undefined
export function tmpFile(name: string, data: Uint8Array): string {
  dir ??= mkdtempSync(join(tmpdir(), 'ldc-test-'))
  const p = join(dir, name)
  writeFileSync(p, data)
  return p
}

export function cleanupTmp(): void {
  if (dir) rmSync(dir, {recursive: true, force: true})
  dir = undefined
}

/** A healthy TCP connection: handshake, request, response, close; one packet per `step` seconds. */
export function conversation(c: string, s: string, cport: number, sport: number, t0 = 1_700_000_000, step = 0.01): {time: number; packet: Uint8Array}[] {
  const cs = 1000
  const ss = 5000
  const spec = (from: 'c' | 's', flags: number, seq: number, ack: number, payload = 0): TcpSpec =>
    from === 'c'
      ? {src: c, dst: s, sport: cport, dport: sport, flags, seq, ack, payload}
      : {src: s, dst: c, sport, dport: cport, flags, seq, ack, payload}
  const steps: TcpSpec[] = [
    spec('c', SYN, cs, 0),
    spec('s', SYN | ACK, ss, cs + 1),
    spec('c', ACK, cs + 1, ss + 1),
    spec('c', PSH | ACK, cs + 1, ss + 1, 10),
    spec('s', PSH | ACK, ss + 1, cs + 11, 20),
    spec('c', FIN | ACK, cs + 11, ss + 21),
    spec('s', FIN | ACK, ss + 21, cs + 12),
    spec('c', ACK, cs + 12, ss + 22),
  ]
  return steps.map((t, i) => ({time: t0 + i * step, packet: tcpPacket(t)}))
}

export interface Seen {
  index: number
  time: number
  linkType: number
  status: number
  problem?: string
  src?: string
  family: number
  sport: number
  dport: number
  flags: number
}

/** Reads a file and decodes every packet into plain values. */
export async function readAll(path: string, opts: ReadOptions = {}): Promise<{summary: ReadSummary; seen: Seen[]}> {
  const d = new DecodedPacket()
  const seen: Seen[] = []
  const summary = await readCapture(path, (r) => {
    const status = r.problem ? -1 : decodeFrame(r.linkType, r.data, r.start, r.start + r.caplen, d)
    seen.push({
      index: r.index, time: r.time, linkType: r.linkType, status,
      ...(r.problem ?? (status !== DECODE.OK ? d.problem : undefined) ? {problem: r.problem ?? d.problem} : {}),
      family: d.family, sport: d.sport, dport: d.dport, flags: d.flags,
    })
  }, opts)
  return {summary, seen}
}
