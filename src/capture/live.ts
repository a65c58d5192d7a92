// Live capture behind our own types. libpcap (through the optional `pcap` module) runs in a child process
// (live-worker.ts) that writes a pcap file with our writer and ends itself with process.exit: node_pcap's
// close() leaves a poll handle in the event loop (it only finalises when one more packet arrives), its
// decoders throw on hostile packets and it prints to stdout. Quarantined in a child, none of that can keep
// lvsdoctor alive, crash it or spoil its output; the caller gets a file that our own reader decodes.
import {fork, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {formatIp, type Endpoint, type IpAddr} from '../model/ip.js'
import {CaptureUnavailableError, INSTALL_HINT} from './errors.js'

export interface LiveOptions {
  /** interface name (`any` for all) */
  readonly iface: string
  /** BPF filter ('' for every packet); see buildFilter */
  readonly filter?: string
  /** stop after this many seconds */
  readonly seconds?: number
  /** stop after this many packets */
  readonly count?: number
  /** the pcap file to write */
  readonly out: string
  /** bytes kept per packet (default 262144) */
  readonly snaplen?: number
  /** called once the handle is open and capturing */
  readonly onStarted?: (info: {linkType: number; warnings: string[]}) => void
  /** aborting stops the capture early, keeping what it has (the command wires Ctrl-C to it) */
  readonly signal?: AbortSignal
}

export interface LiveResult {
  readonly packets: number
  readonly out: string
  readonly linkType: number
  /** what ended the capture */
  readonly stoppedBy: 'seconds' | 'count' | 'signal' | 'parent' | 'killed'
  /** packets the kernel or libpcap dropped, as libpcap counts them */
  readonly drops: number
  readonly durationMs: number
  readonly warnings: readonly string[]
}

/** The default bound when neither seconds nor count is given. */
export const DEFAULT_SECONDS = 10
/** How long after its bound the worker gets to end by itself before it is killed. */
export const GRACE_MS = 3000

export type WorkerStart = {type: 'start'; iface: string; filter: string; seconds?: number; count?: number; out: string; snaplen: number}
export type WorkerReply =
  | {type: 'started'; linkType: number; warnings: string[]}
  | {type: 'error'; unavailable: boolean; message: string}
  | {type: 'done'; packets: number; stoppedBy: 'seconds' | 'count' | 'signal' | 'parent'; drops: number; linkType: number; warnings: string[]}

function workerPath(): string {
  // '../capture/': the same file from dist/capture/ and from the bundled check path in dist/bundle/
  const here = fileURLToPath(new URL('../capture/live-worker.js', import.meta.url))
  if (existsSync(here)) return here
  // running from the TypeScript sources (vitest): use the build
  const built = here.replace(/([/\\])src([/\\]capture[/\\])/, '$1dist$2')
  if (existsSync(built)) return built
  throw new CaptureUnavailableError(`live capture needs the built worker (${here}); run the build first`)
}

/**
 * Captures on `iface` until `seconds` or `count` (default DEFAULT_SECONDS), Ctrl-C (via `signal`), or the
 * worker's end; writes `out` and resolves with what was captured. Rejects with CaptureUnavailableError when
 * libpcap or the `pcap` module is missing (with what to install) or the interface cannot be opened.
 */
export function captureLive(o: LiveOptions): Promise<LiveResult> {
  const seconds = o.seconds ?? (o.count === undefined ? DEFAULT_SECONDS : undefined)
  const t0 = Date.now()
  return new Promise<LiveResult>((resolve, reject) => {
    const start: WorkerStart = {
      type: 'start', iface: o.iface, filter: o.filter ?? '', out: o.out, snaplen: o.snaplen ?? 262144,
      ...(seconds !== undefined ? {seconds} : {}), ...(o.count !== undefined ? {count: o.count} : {}),
    }
    let child: ChildProcess
    try {
      // the start order travels in argv so that no message can arrive before the worker listens
      child = fork(workerPath(), [JSON.stringify(start)], {stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json', execArgv: []})
    } catch (e) {
      reject(e instanceof CaptureUnavailableError ? e : new CaptureUnavailableError(`cannot start the capture worker: ${(e as Error).message}`))
      return
    }
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString()
    })
    let started: {linkType: number; warnings: string[]} | undefined
    let done: Extract<WorkerReply, {type: 'done'}> | undefined
    let failure: Error | undefined
    let killTimer: NodeJS.Timeout | undefined
    let killed = false
    const armKill = (ms: number): void => {
      if (killTimer) clearTimeout(killTimer)
      killTimer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, ms)
    }
    const onAbort = (): void => {
      if (child.connected) child.send({type: 'stop'})
      armKill(GRACE_MS)
    }
    o.signal?.addEventListener('abort', onAbort, {once: true})
    child.on('message', (m: WorkerReply) => {
      if (m.type === 'started') {
        started = {linkType: m.linkType, warnings: m.warnings}
        // the worker keeps its own bound; this one only guards against a worker that does not end
        if (seconds !== undefined) armKill(seconds * 1000 + GRACE_MS)
        o.onStarted?.(started)
      } else if (m.type === 'error') {
        failure = new CaptureUnavailableError(m.unavailable ? `${m.message}: ${INSTALL_HINT}` : m.message)
      } else if (m.type === 'done') done = m
    })
    child.on('error', (e) => {
      failure ??= new CaptureUnavailableError(`capture worker: ${e.message}`)
    })
    child.on('exit', (code, sig) => {
      if (killTimer) clearTimeout(killTimer)
      o.signal?.removeEventListener('abort', onAbort)
      if (failure) return reject(failure)
      if (done) {
        return resolve({
          packets: done.packets, out: o.out, linkType: done.linkType, stoppedBy: done.stoppedBy, drops: done.drops,
          durationMs: Date.now() - t0, warnings: done.warnings,
        })
      }
      if (killed && started) {
        // the worker flushes every 500 ms: what it wrote is still a readable (perhaps cut) capture
        return resolve({packets: -1, out: o.out, linkType: started.linkType, stoppedBy: 'killed', drops: 0, durationMs: Date.now() - t0, warnings: started.warnings})
      }
      const why = stderr.trim().split('\n').slice(-3).join(' / ')
      reject(new CaptureUnavailableError(`the capture worker ended (${sig ?? `exit ${code}`})${why ? `: ${why}` : ''}`))
    })
    // until the worker says it started, nothing may take longer than opening a handle
    armKill(15_000 + (seconds ?? 0) * 1000)
    if (o.signal?.aborted) onAbort()
  })
}

function bpfHost(ip: IpAddr): string {
  return `${ip.family === 6 ? 'ip6 ' : ''}host ${formatIp(ip)}`
}

/**
 * The BPF filter for a service: its VIP:port (TCP and UDP), the realservers' addresses (any port: NAT
 * changes ports), ICMP/ICMPv6 (errors quoting the flows come from anywhere), and tunnel packets (IPIP, IPv6
 * in IPv4, GRE, GUE on port 6080: LVS-TUN's requests, whose VIP and port BPF cannot see under the outer
 * header). '' when nothing is known.
 */
export function buildFilter(vips: readonly Endpoint[], realservers: readonly IpAddr[] = []): string {
  const parts: string[] = []
  for (const v of vips) parts.push(v.port === 0 ? bpfHost(v.ip) : `(${bpfHost(v.ip)} and port ${v.port})`)
  for (const r of realservers) parts.push(bpfHost(r))
  if (parts.length === 0) return ''
  parts.push('icmp', 'icmp6', TUNNEL_FILTER)
  return parts.join(' or ')
}

/** tunnel packets (the decoder unwraps them: src/capture/decode.ts) */
export const TUNNEL_FILTER = 'ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080'
