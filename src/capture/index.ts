// What other parts of lvsdoctor use from the capture side (check, snapshot):
//   analyseCaptureFile(path, {vips})  a pcap/pcapng file → packets, flows and symptoms (no native code)
//   captureLive({iface, filter, seconds, count, out})  a bounded live capture written to `out` (libpcap)
//   buildFilter(vips, realservers)  the BPF filter for a service
//   symptomEvidence(symptom, file)  a symptom as Evidence lines for a Finding
export {analyseCaptureFile, type AnalyseOptions, type CaptureAnalysis, type SkippedPacket} from './analyse.js'
export {captureLive, buildFilter, DEFAULT_SECONDS, type LiveOptions, type LiveResult} from './live.js'
export {CaptureFormatError, CaptureUnavailableError, INSTALL_HINT} from './errors.js'
export {RULES as SYMPTOM_RULES, type Symptom, type SymptomKind, type SymptomFlow, type SymptomPacket} from './symptoms.js'
import type {Evidence} from '../model/finding.js'
import type {Symptom} from './symptoms.js'

/**
 * The packets of a symptom as Evidence for a Finding: `file` is the capture's name in the snapshot,
 * `line` the packet number (Wireshark's frame number: `tcpdump -r FILE` prints them in that order),
 * `text` the packet's one-line description with the symptom kind.
 */
export function symptomEvidence(s: Symptom, file: string, host?: string): Evidence[] {
  return s.packets.map((p) => ({file, line: p.n, text: `[${s.kind}] ${p.what}`, ...(host ? {host} : {})}))
}
