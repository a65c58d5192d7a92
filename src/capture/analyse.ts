// A capture file → symptoms: the reader, the decoder and the detector in one pass over the file.
// This is the function other commands call (check attaches the symptoms of a snapshot's capture.pcap(ng)).
import type {Endpoint} from '../model/ip.js'
import {DECODE, DEFAULT_DECODE, DecodedPacket, decodeConfig, decodeFrame} from './decode.js'
import {readCapture, type CaptureFormat, type CaptureInterface, type PacketRecord, type Truncation} from './reader.js'
import {SymptomDetector, type Symptom} from './symptoms.js'

export interface AnalyseOptions {
  /** virtual services (VIP:port) the capture is about; optional */
  readonly vips?: readonly Endpoint[]
  /** name used in messages instead of the path (e.g. `snapshot/d/capture.pcap`) */
  readonly name?: string
  /** read chunk size in bytes */
  readonly chunkSize?: number
  /** UDP ports carrying GUE besides 6080 (the snapshot's ipvsadm --tun-port values) */
  readonly guePorts?: readonly number[]
}

export interface SkippedPacket {
  /** 1-based packet number */
  readonly n: number
  /** byte offset of its record in the file */
  readonly offset: number
  readonly reason: string
}

export interface CaptureAnalysis {
  /** packet records in the file */
  readonly packets: number
  /** of which decoded as IPv4/IPv6 */
  readonly ip: number
  /** well-formed frames without IP (ARP...) */
  readonly notIp: number
  /** malformed frames, frames of unsupported link types, records without a usable frame */
  readonly skipped: number
  /** the first skipped packets, with the reason */
  readonly skippedFirst: readonly SkippedPacket[]
  /** skipped packets counted by reason */
  readonly skippedReasons: Readonly<Record<string, number>>
  /**
   * packets decoded only in part, counted by reason: a tunnel or transport header cut by the capture's
   * snap length, fragments, tunnels of a kind not unwrapped (the outer packet still counts)
   */
  readonly partial: Readonly<Record<string, number>>
  /** packets that came inside a tunnel (IPIP, GRE, GUE) and were unwrapped */
  readonly tunnelled: number
  /** TCP/UDP flows met */
  readonly flows: number
  readonly format: CaptureFormat
  readonly byteOrder: 'little' | 'big'
  readonly interfaces: readonly CaptureInterface[]
  /** the file ended inside a record; everything before was analysed */
  readonly truncated?: Truncation
  /** time of the first and last packet (seconds since the epoch), when there were packets with a time */
  readonly firstTime?: number
  readonly lastTime?: number
  readonly symptoms: Symptom[]
}

const MAX_SKIPPED_LISTED = 20
/** distinct reasons of partial decodes kept (reasons are short fixed texts, a few ports at most) */
const MAX_PARTIAL_REASONS = 50

/**
 * Reads a pcap/pcapng file and returns its symptoms. Rejects with CaptureFormatError (a ParseError: file,
 * byte offset, packet, expected/found) when the file is not a readable capture; a file cut short is
 * analysed up to the cut and says so in `truncated`.
 */
export async function analyseCaptureFile(path: string, opts: AnalyseOptions = {}): Promise<CaptureAnalysis> {
  const pkt = new DecodedPacket()
  const det = new SymptomDetector({vips: opts.vips ?? []})
  let ip = 0
  let notIp = 0
  let skipped = 0
  const skippedFirst: SkippedPacket[] = []
  const reasons: Record<string, number> = {}
  const partial: Record<string, number> = {}
  let tunnelled = 0
  const cfg = opts.guePorts?.length ? decodeConfig(opts.guePorts) : DEFAULT_DECODE
  // doubles in an object's fields are updated in place (closure variables would be boxed per packet)
  const span = {first: Infinity, last: -Infinity}
  const skip = (r: PacketRecord, reason: string): void => {
    skipped++
    reasons[reason] = (reasons[reason] ?? 0) + 1
    if (skippedFirst.length < MAX_SKIPPED_LISTED) skippedFirst.push({n: r.index, offset: r.offset, reason})
  }
  const summary = await readCapture(
    path,
    (r) => {
      if (r.problem !== undefined) return skip(r, r.problem)
      const t = r.time
      if (t < span.first && t > 0) span.first = t
      if (t > span.last) span.last = t
      const st = decodeFrame(r.linkType, r.data, r.start, r.start + r.caplen, pkt, cfg)
      if (st === DECODE.OK) {
        ip++
        if (pkt.tunnel !== 0) tunnelled++
        const pr = pkt.problem
        if (pr !== undefined && Object.keys(partial).length < MAX_PARTIAL_REASONS) partial[pr] = (partial[pr] ?? 0) + 1
        else if (pr !== undefined && partial[pr] !== undefined) partial[pr]++
        pkt.index = r.index
        pkt.time = t
        det.packet(pkt)
      } else if (st === DECODE.NOT_IP) notIp++
      else skip(r, pkt.problem ?? 'undecodable frame')
    },
    {...(opts.name ? {name: opts.name} : {}), ...(opts.chunkSize ? {chunkSize: opts.chunkSize} : {})},
  )
  const symptoms = det.finish()
  return {
    packets: summary.packets,
    ip,
    notIp,
    skipped,
    skippedFirst,
    skippedReasons: reasons,
    partial,
    tunnelled,
    flows: det.flows,
    format: summary.format,
    byteOrder: summary.byteOrder,
    interfaces: summary.interfaces,
    ...(summary.truncated ? {truncated: summary.truncated} : {}),
    ...(span.last > 0 && span.first !== Infinity ? {firstTime: span.first, lastTime: span.last} : {}),
    symptoms,
  }
}
