// The capture side of a snapshot: what to capture (the BPF filter of the host's own IPVS and DNAT services,
// found in the files just collected, and the interface of the default route) and the bounded capture itself.
// `check` uses the service discovery too (the VIPs a snapshot's capture is analysed for).
//
// Capturing is read-only: libpcap opens a packet socket without promiscuous mode (live-worker.ts), which
// changes no rule, route, address, sysctl or interface flag. The capture runs in lvsdoctor's own worker
// process (src/capture/live.ts), not as an external program, so it is not on exec.ts's allowlist.
import {mkdtempSync, rmSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ipEquals, type Endpoint, type IpAddr} from '../model/ip.js'
import type {Route} from '../model/net.js'
import type {CommandRecord, HostSnapshot} from '../model/snapshot.js'
import {buildFilter, captureLive, type LiveOptions, type LiveResult} from '../capture/live.js'
import {CaptureUnavailableError} from '../capture/errors.js'

/** What the capture side needs to know of a service: its VIP and the addresses behind it. */
export interface ServiceAddresses {
  readonly host: string
  readonly vip?: IpAddr
  readonly port?: number
  readonly backends: readonly {readonly ip: IpAddr; readonly owner?: string}[]
}

/**
 * The load-balanced services of the hosts (IPVS and DNAT, as the rule engine discovers them). Should the
 * engine fail on some input, the IPVS services of the snapshots are used (check reports that failure itself).
 */
export async function servicesOf(hosts: readonly HostSnapshot[]): Promise<ServiceAddresses[]> {
  try {
    const {world} = await import('../rules/engine/world.js')
    return world({hosts}).services.map((s) => ({
      host: s.host.name,
      ...(s.vip ? {vip: s.vip} : {}),
      ...(s.port !== undefined ? {port: s.port} : {}),
      backends: s.backends.filter((b) => !b.local).map((b) => ({ip: b.ip, ...(b.owner ? {owner: b.owner.name} : {})})),
    }))
  } catch {
    return hosts.flatMap((h) =>
      (h.ipvs?.services ?? []).map((s) => ({host: h.name, ...(s.vip ? {vip: s.vip} : {}), ...(s.port !== undefined ? {port: s.port} : {}), backends: s.dests.map((d) => ({ip: d.ip}))})),
    )
  }
}

/** VIP:port of every service that has both, once each. */
export function vipEndpoints(services: readonly ServiceAddresses[]): Endpoint[] {
  const out: Endpoint[] = []
  for (const s of services) {
    if (!s.vip || s.port === undefined || s.port === 0) continue
    if (!out.some((e) => e.port === s.port && ipEquals(e.ip, s.vip))) out.push({ip: s.vip, port: s.port})
  }
  return out
}

/** The realserver addresses of the services (not the director's own), once each. */
export function realserverAddresses(services: readonly ServiceAddresses[]): IpAddr[] {
  const out: IpAddr[] = []
  for (const s of services) for (const b of s.backends) if (!out.some((x) => ipEquals(x, b.ip))) out.push(b.ip)
  return out
}

/** The interface of the main table's default route (IPv4 first, lowest metric), as `ip route show default` lists it. */
export function defaultRouteInterface(routes: readonly Route[] | undefined): string | undefined {
  const defaults = (routes ?? [])
    .filter((r) => r.table === 'main' && r.type === 'unicast' && r.dst.len === 0)
    .sort((a, b) => a.family - b.family || a.metric - b.metric)
  for (const r of defaults) {
    const dev = r.dev ?? r.nexthops?.find((n) => n.dev)?.dev
    if (dev) return dev
  }
  return undefined
}

/** A capture's entry in manifest.json `commands`: a command record with what the capture did. */
export interface CaptureRecord extends CommandRecord {
  readonly iface?: string
  /** the BPF filter ('' : every packet) */
  readonly filter?: string
  readonly seconds: number
  readonly snaplen: number
  readonly packets?: number
  readonly stoppedBy?: string
  /** packets the kernel or libpcap dropped */
  readonly drops?: number
}

export interface SnapshotCaptureOptions {
  /** the bound, in seconds */
  readonly seconds: number
  /** default: the interface of the default route */
  readonly iface?: string
  /** bytes kept per packet (default SNAPSHOT_SNAPLEN) */
  readonly snaplen?: number
  /** aborting stops the capture early, keeping what it has (snapshot wires Ctrl-C to it) */
  readonly signal?: AbortSignal
  /** the live capture; tests pass a fake */
  readonly live?: (o: LiveOptions) => Promise<LiveResult>
  /** called when the capture is about to start (the progress line) */
  readonly onStart?: (what: {iface: string; filter: string; seconds: number}) => void
}

/**
 * Bytes kept per packet: the headers the symptom detectors read (link, IP, TCP/UDP, and the headers an ICMP
 * error quotes, through VLAN tags and IPIP) fit with room to spare; payloads, which may be private, mostly do not.
 */
export const SNAPSHOT_SNAPLEN = 512

export interface SnapshotCaptureResult {
  readonly record: CaptureRecord
  /** the capture file's bytes, when there is one */
  readonly data?: Buffer
  /** why there is none */
  readonly gap?: string
}

/** The argv-like description recorded in the manifest (what libpcap was asked for). */
export function captureArgv(iface: string, seconds: number, snaplen: number, filter: string): string[] {
  return ['libpcap', '--iface', iface, '--seconds', String(seconds), '--snaplen', String(snaplen), ...(filter ? ['--filter', filter] : [])]
}

function explain(message: string): string {
  if (/permission|not permitted|EPERM|EACCES/i.test(message)) return `permission denied (run as root): ${message}`
  return message
}

/**
 * Captures on this host for `seconds`, with the filter of the services of `host` (the files collected so
 * far, parsed), or every packet when it has none. Never throws for a capture that cannot run: that is a gap.
 */
export async function snapshotCapture(host: HostSnapshot | undefined, o: SnapshotCaptureOptions): Promise<SnapshotCaptureResult> {
  const snaplen = o.snaplen ?? SNAPSHOT_SNAPLEN
  const services = host ? await servicesOf([host]) : []
  const filter = buildFilter(vipEndpoints(services), realserverAddresses(services))
  const iface = o.iface ?? defaultRouteInterface(host?.routes)
  if (!iface) {
    const gap = host?.routes
      ? 'no default route in ip-route.json to take the interface from: give --iface IF (or --iface any)'
      : 'no routes collected to find the default route\'s interface: give --iface IF (or --iface any)'
    return {gap, record: {argv: captureArgv('?', o.seconds, snaplen, filter), exitCode: null, durationMs: 0, stderr: '', gap, filter, seconds: o.seconds, snaplen}}
  }
  const argv = captureArgv(iface, o.seconds, snaplen, filter)
  const base = {argv, iface, filter, seconds: o.seconds, snaplen}
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-snapshot-capture-'))
  const t0 = performance.now()
  try {
    o.onStart?.({iface, filter, seconds: o.seconds})
    const r = await (o.live ?? captureLive)({iface, filter, seconds: o.seconds, out: join(tmp, 'capture.pcap'), snaplen, ...(o.signal ? {signal: o.signal} : {})})
    const data = await readFile(r.out)
    // the worker stops when asked to (stoppedBy 'parent'): that was our Ctrl-C
    const stoppedBy = r.stoppedBy === 'parent' && o.signal?.aborted ? 'signal' : r.stoppedBy
    return {
      data,
      record: {...base, exitCode: 0, durationMs: r.durationMs, stderr: r.warnings.join('\n'), packets: r.packets, stoppedBy, drops: r.drops},
    }
  } catch (e) {
    if (!(e instanceof CaptureUnavailableError)) throw e
    const gap = explain(e.message)
    return {gap, record: {...base, exitCode: null, durationMs: Math.round(performance.now() - t0), stderr: '', gap}}
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}
