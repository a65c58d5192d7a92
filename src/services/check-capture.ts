// `check` with captures: a snapshot's capture.pcap / capture.pcapng is analysed (the VIPs of every host's
// IPVS and DNAT services as the capture's services), and each symptom becomes evidence of the findings it
// explains: a finding whose rule is among the symptom's likely rules, on the host that took the capture or on
// a host whose VIP or realserver the flow involves. Symptoms that explain no finding are reported as well.
//
// The rule engine stays synchronous: this is an async step around checkHosts (load, analyse, check, attach).
// The report gains two keys, only when a host has a capture file (the rest of the contract is unchanged):
//   captures  [{host, file, format, packets, flows, vips, symptoms, skipped, truncated?, tunnelled?, partial?}]
//   symptoms  [{host, file, kind, severity, title, message, flow, packets, rules, vip?, from?, icmp?, tunnel?,
//               mtu?, findings: [{rule, host}]}]     findings: those the symptom is evidence for ([]: none)
// Tunnelled traffic (LVS-TUN) is unwrapped; the GUE ports of the snapshots' IPVS destinations (--tun-port) are
// decoded as GUE, and a symptom about a tunnel also involves the hosts owning its two ends.
// A capture that cannot be read is an input error of its host (errors[] with the byte offset), exit 2.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Evidence, Finding} from '../model/finding.js'
import {ipEquals, parseEndpoint, parseIp, formatEndpoint, type Endpoint, type IpAddr} from '../model/ip.js'
import type {HostSnapshot} from '../model/snapshot.js'
import type {CaptureAnalysis} from '../capture/analyse.js'
import type {CaptureFormatError} from '../capture/errors.js'
import type {Truncation} from '../capture/reader.js'
import type {Symptom} from '../capture/symptoms.js'
import {loadSnapshots} from '../snapshot/store.js'
import {checkHosts, type CheckOptions, type CheckReport, type InputProblem} from './check.js'
import type {ServiceAddresses} from '../snapshot/capture.js'

// The capture side (decoders, symptom detectors, live capture) is loaded only when a snapshot has a capture:
// a check without one does not pay for it at start-up.
let captureApi: typeof import('../capture/index.js') | undefined

async function loadCaptureApi(): Promise<typeof import('../capture/index.js')> {
  return (captureApi ??= await import('../capture/index.js'))
}

export interface CaptureSummary {
  readonly host: string
  readonly file: string
  readonly format: 'pcap' | 'pcapng'
  readonly packets: number
  readonly flows: number
  /** the services the capture was analysed for (every host's IPVS and DNAT VIP:port) */
  readonly vips: readonly string[]
  /** symptoms found in it */
  readonly symptoms: number
  /** packets that could not be decoded */
  readonly skipped: number
  /** the file ends inside a packet: what came before was analysed */
  readonly truncated?: Truncation
  /** packets that came inside a tunnel and were unwrapped (absent: none) */
  readonly tunnelled?: number
  /** packets decoded only in part, by reason (absent: none) */
  readonly partial?: Readonly<Record<string, number>>
}

export interface SymptomReport extends Symptom {
  /** the host whose capture shows it, and the capture file */
  readonly host: string
  readonly file: string
  /** the findings it is evidence for; empty when no finding explains it */
  readonly findings: readonly {readonly rule: string; readonly host: string}[]
}

/** An unreadable capture: an input error with where in the file it went wrong. */
export interface CaptureInputProblem extends InputProblem {
  readonly offset: number
  readonly packet?: number
}

export interface CheckCaptureReport extends CheckReport {
  captures?: CaptureSummary[]
  symptoms?: SymptomReport[]
}

/** One host's capture, analysed (or the reason it could not be). */
export interface HostCapture {
  readonly host: string
  readonly file: string
  readonly analysis?: CaptureAnalysis
  readonly error?: CaptureFormatError
}

/** The capture file of a host (the store prefers capture.pcapng when both are there). */
export function captureFileOf(h: HostSnapshot): string | undefined {
  if (!h.capturePath && !h.captureData) return undefined
  return h.files.includes('capture.pcapng') ? 'capture.pcapng' : 'capture.pcap'
}

/** Analyses the capture of every host that has one; an unreadable file is that host's input error. */
export async function analyseHostCaptures(hosts: readonly HostSnapshot[], vips: readonly Endpoint[]): Promise<HostCapture[]> {
  const out: HostCapture[] = []
  if (!hosts.some((h) => captureFileOf(h))) return out
  const {analyseCaptureFile, CaptureFormatError} = await loadCaptureApi()
  const guePorts = guePortsOf(hosts)
  for (const h of hosts) {
    const file = captureFileOf(h)
    if (!file) continue
    let tmp: string | undefined
    try {
      let path = h.capturePath
      if (!path) {
        tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-check-capture-'))
        path = join(tmp, file)
        writeFileSync(path, h.captureData!, {mode: 0o600})
      }
      out.push({host: h.name, file, analysis: await analyseCaptureFile(path, {vips, name: file, guePorts})})
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (e instanceof CaptureFormatError) out.push({host: h.name, file, error: e})
      // a read error in the middle of the file (EIO, EISDIR...) is as much an unreadable input
      else if (typeof code === 'string') out.push({host: h.name, file, error: new CaptureFormatError(file, 0, undefined, 'a readable capture file', code)})
      else throw e
    } finally {
      if (tmp) rmSync(tmp, {recursive: true, force: true})
    }
  }
  return out
}

/** The GUE ports of the hosts' IPVS tunnel destinations (`--tun-type gue --tun-port P`), once each. */
export function guePortsOf(hosts: readonly HostSnapshot[]): number[] {
  const ports = new Set<number>()
  for (const h of hosts) {
    for (const s of h.ipvs?.services ?? []) for (const d of s.dests) if (d.tunnelType === 'gue' && d.tunnelPort) ports.add(d.tunnelPort)
  }
  return [...ports]
}

function ipOf(text: string | undefined): IpAddr | undefined {
  if (text === undefined) return undefined
  return parseEndpoint(text)?.ip ?? parseIp(text)
}

/**
 * The hosts a symptom is about: the one that captured it, the director whose VIP or realserver the flow's
 * server, replier or ICMP sender is (with that service's realservers), and the host owning such an address.
 */
export function involvedHosts(s: Symptom, captureHost: string, services: readonly ServiceAddresses[], hosts: readonly HostSnapshot[]): Set<string> {
  const names = new Set([captureHost])
  const ips = [ipOf(s.flow.server), ipOf(s.from), ipOf(s.vip), ipOf(s.tunnel?.from), ipOf(s.tunnel?.to)].filter((x): x is IpAddr => x !== undefined)
  const hit = (ip: IpAddr | undefined) => ip !== undefined && ips.some((x) => ipEquals(x, ip))
  for (const svc of services) {
    if (!hit(svc.vip) && !svc.backends.some((b) => hit(b.ip))) continue
    names.add(svc.host)
    for (const b of svc.backends) if (b.owner) names.add(b.owner)
  }
  for (const h of hosts) {
    if (names.has(h.name)) continue
    if ((h.interfaces ?? []).some((i) => i.addresses.some((a) => hit(a.ip)))) names.add(h.name)
  }
  return names
}

/**
 * Adds the captures to a report: symptoms as evidence of the findings they explain, the `captures` and
 * `symptoms` keys, and unreadable captures as input errors with their byte offset.
 */
export function attachCaptures(report: CheckReport, hosts: readonly HostSnapshot[], captures: readonly HostCapture[], services: readonly ServiceAddresses[], vips: readonly Endpoint[]): CheckCaptureReport {
  if (captures.length === 0) return report
  // captures come from analyseHostCaptures, which loaded the capture side
  const symptomEvidence = captureApi?.symptomEvidence
  if (!symptomEvidence) throw new Error('attachCaptures: analyse the captures with analyseHostCaptures first')
  const findings: Finding[] = report.findings.map((f) => ({...f, evidence: [...f.evidence]}))
  const summaries: CaptureSummary[] = []
  const symptoms: SymptomReport[] = []
  for (const c of captures) {
    const a = c.analysis
    if (!a) continue
    summaries.push({
      host: c.host, file: c.file, format: a.format, packets: a.packets, flows: a.flows, vips: vips.map(formatEndpoint),
      symptoms: a.symptoms.length, skipped: a.skipped, ...(a.truncated ? {truncated: a.truncated} : {}),
      ...(a.tunnelled ? {tunnelled: a.tunnelled} : {}), ...(Object.keys(a.partial).length ? {partial: a.partial} : {}),
    })
    for (const s of a.symptoms) {
      const about = involvedHosts(s, c.host, services, hosts)
      const explained: {rule: string; host: string}[] = []
      for (const f of findings) {
        if (!s.rules.includes(f.rule) || !about.has(f.host)) continue
        explained.push({rule: f.rule, host: f.host})
        const ev = f.evidence as Evidence[]
        for (const e of symptomEvidence(s, c.file, c.host === f.host ? undefined : c.host)) {
          if (!ev.some((x) => x.file === e.file && x.line === e.line && x.host === e.host && x.text === e.text)) ev.push(e)
        }
      }
      symptoms.push({host: c.host, file: c.file, ...s, findings: explained})
    }
  }
  const bad = captures.filter((c) => c.error)
  const errors: InputProblem[] = report.errors.map((e) => {
    const c = bad.find((x) => x.host === e.host && x.file === e.file && x.error!.message === e.message)
    if (!c) return e
    const p: CaptureInputProblem = {...e, offset: c.error!.offset, ...(c.error!.packet !== undefined ? {packet: c.error!.packet} : {})}
    return p
  })
  return {...report, findings, errors, captures: summaries, symptoms}
}

/**
 * `check` of snapshot paths, captures included: load, analyse every capture (async), run the rules
 * (synchronous), attach. Without captures this is checkPaths.
 */
export async function checkWithCaptures(paths: readonly string[], opts: CheckOptions): Promise<CheckCaptureReport> {
  const hosts = loadSnapshots(paths)
  if (!hosts.some((h) => captureFileOf(h))) return checkHosts(hosts, opts)
  const {servicesOf, vipEndpoints} = await import('../snapshot/capture.js')
  const services = await servicesOf(hosts)
  const vips = vipEndpoints(services)
  const captures = await analyseHostCaptures(hosts, vips)
  // an unreadable capture is its host's input error, like any malformed file (exit 2, the rest still checked)
  for (const c of captures) if (c.error) hosts.find((h) => h.name === c.host)!.errors.push(c.error)
  return attachCaptures(checkHosts(hosts, opts), hosts, captures, services, vips)
}
