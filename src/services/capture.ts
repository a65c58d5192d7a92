// The `capture` command without argv: read a file or capture live, analyse, render, exit code.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseEndpoint, formatEndpoint, type Endpoint} from '../model/ip.js'
import {UsageError} from '../model/source.js'
import {analyseCaptureFile, type CaptureAnalysis, type SkippedPacket} from '../capture/analyse.js'
import type {Truncation} from '../capture/reader.js'
import type {Symptom} from '../capture/symptoms.js'
import {renderJson} from '../render/json.js'

export interface CaptureCommandOptions {
  readonly read?: string
  readonly iface?: string
  readonly vips: readonly string[]
  readonly seconds?: number
  readonly count?: number
  readonly write?: string
  /** more UDP ports whose packets are decoded as GUE (IPVS --tun-port; 6080 is always taken) */
  readonly guePorts?: readonly number[]
  readonly json: boolean
  readonly version: string
  readonly out?: (s: string) => void
  readonly err?: (s: string) => void
}

export interface CaptureInterfaceReport {
  readonly linkType: number
  readonly link: string
  /** timestamp units per second */
  readonly tsPerSecond: number
  readonly name?: string
}

export type CaptureSource =
  | {readonly source: 'file'; readonly file: string; readonly format: 'pcap' | 'pcapng'; readonly byteOrder: 'little' | 'big'; readonly interfaces: readonly CaptureInterfaceReport[]}
  | {
      readonly source: 'live'; readonly iface: string; readonly filter: string; readonly stoppedBy: string; readonly durationMs: number
      readonly drops: number; readonly written: string | null; readonly format: 'pcap'; readonly byteOrder: 'little' | 'big'
      readonly interfaces: readonly CaptureInterfaceReport[]
    }

/** The `--json` output of `capture` (documented in docs/dev/capture.md by the lead, shape fixed here). */
export interface CaptureReport {
  readonly tool: 'lvsdoctor'
  readonly version: string
  readonly capture: CaptureSource
  readonly vips: readonly string[]
  readonly packets: number
  readonly ip: number
  readonly notIp: number
  readonly flows: number
  readonly skipped: {readonly count: number; readonly reasons: Readonly<Record<string, number>>; readonly first: readonly SkippedPacket[]}
  readonly truncated: Truncation | null
  /** packets seen inside a tunnel (IPIP, GRE, GUE: LVS-TUN), when there were any */
  readonly tunnelled?: number
  /** packets decoded only in part (a tunnel header cut or unreadable), by reason, when there were any */
  readonly partial?: Readonly<Record<string, number>>
  readonly firstTime?: number
  readonly lastTime?: number
  readonly symptoms: readonly Symptom[]
}

export function parseVips(texts: readonly string[]): Endpoint[] {
  return texts.map((t) => {
    const e = parseEndpoint(t)
    if (!e) throw new UsageError(`--vip: expected IP:PORT (e.g. 192.0.2.10:80 or [2001:db8::10]:443), found ${JSON.stringify(t)}`)
    return e
  })
}

async function linkName(t: number): Promise<string> {
  const {linkName: n} = await import('../render/capture-text.js')
  return n(t)
}

async function report(a: CaptureAnalysis, capture: CaptureSource, vips: Endpoint[], version: string): Promise<CaptureReport> {
  return {
    tool: 'lvsdoctor',
    version,
    capture,
    vips: vips.map(formatEndpoint),
    packets: a.packets,
    ip: a.ip,
    notIp: a.notIp,
    flows: a.flows,
    skipped: {count: a.skipped, reasons: a.skippedReasons, first: a.skippedFirst},
    truncated: a.truncated ?? null,
    ...(a.tunnelled ? {tunnelled: a.tunnelled} : {}),
    ...(Object.keys(a.partial).length ? {partial: a.partial} : {}),
    ...(a.firstTime !== undefined ? {firstTime: a.firstTime, lastTime: a.lastTime} : {}),
    symptoms: a.symptoms,
  }
}

async function interfaces(a: CaptureAnalysis): Promise<CaptureInterfaceReport[]> {
  return Promise.all(a.interfaces.map(async (i) => ({linkType: i.linkType, link: await linkName(i.linkType), tsPerSecond: i.tsPerSecond, ...(i.name ? {name: i.name} : {})})))
}

export async function runCapture(o: CaptureCommandOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  if (!o.read === !o.iface) throw new UsageError('give either --read FILE or --iface IF')
  if (o.read && (o.write || o.seconds !== undefined || o.count !== undefined)) throw new UsageError('-w, --seconds and --count go with --iface, not --read')
  const vips = parseVips(o.vips)
  let r: CaptureReport
  if (o.read) {
    const a = await analyseCaptureFile(o.read, {vips, ...(o.guePorts?.length ? {guePorts: o.guePorts} : {})})
    r = await report(a, {source: 'file', file: o.read, format: a.format, byteOrder: a.byteOrder, interfaces: await interfaces(a)}, vips, o.version)
  } else {
    r = await live(o, vips, err)
  }
  if (o.json) out(renderJson(r))
  else {
    const {renderCaptureText} = await import('../render/capture-text.js')
    out(renderCaptureText(r))
  }
  if (r.truncated && o.json) err(`lvsdoctor: warning: ${o.read ?? 'capture'} ends inside packet ${r.truncated.packet ?? '?'}; analysed what came before\n`)
  return r.symptoms.length > 0 ? 1 : 0
}

async function live(o: CaptureCommandOptions, vips: Endpoint[], err: (s: string) => void): Promise<CaptureReport> {
  const {captureLive, buildFilter} = await import('../capture/live.js')
  const filter = buildFilter(vips)
  const tmp = o.write ? undefined : mkdtempSync(join(tmpdir(), 'lvsdoctor-capture-'))
  const file = o.write ?? join(tmp!, 'live.pcap')
  const ac = new AbortController()
  const onSigint = (): void => ac.abort()
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigint)
  try {
    const res = await captureLive({
      iface: o.iface!, filter, out: file, signal: ac.signal,
      ...(o.seconds !== undefined ? {seconds: o.seconds} : {}), ...(o.count !== undefined ? {count: o.count} : {}),
      onStarted: () => {
        if (!o.json) {
          const bound = o.count !== undefined ? `${o.count} packets` : `${o.seconds ?? 10} s`
          err(`lvsdoctor: capturing on ${o.iface}${filter ? ` (${filter})` : ''} for ${bound}; Ctrl-C stops and keeps what was captured\n`)
        }
      },
    })
    const a = await analyseCaptureFile(file, {vips, ...(o.guePorts?.length ? {guePorts: o.guePorts} : {}), name: o.write ?? `capture on ${o.iface}`})
    return await report(a, {
      source: 'live', iface: o.iface!, filter, stoppedBy: res.stoppedBy, durationMs: res.durationMs, drops: res.drops,
      written: o.write ?? null, format: 'pcap', byteOrder: a.byteOrder, interfaces: await interfaces(a),
    }, vips, o.version)
  } finally {
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigint)
    if (tmp) rmSync(tmp, {recursive: true, force: true})
  }
}
