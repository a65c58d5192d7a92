// `snapshot`: collect this host (read-only), write the snapshot directory or .tar.gz, summarise.
import {hostname as osHostname} from 'node:os'
import type {Role} from '../model/snapshot.js'
import {UsageError} from '../model/source.js'
import {collect, type Collection, type Gap, type IptablesBackendInfo, type Progress} from '../snapshot/collect.js'
import type {Runner} from '../snapshot/exec.js'
import {checkHostName, checkOutput, defaultOutputName, writeSnapshot, type OutputKind, type Written} from '../snapshot/write.js'
import type {CaptureRecord, SnapshotCaptureOptions} from '../snapshot/capture.js'

export interface SnapshotOptions {
  /** a directory, or a file ending in .tar.gz / .tgz; default ./lvsdoctor-snapshot-<host>-<UTC time> */
  readonly output?: string
  readonly name?: string
  readonly role?: Role
  readonly version: string
  readonly progress?: Progress
  readonly runner?: Runner
  readonly timeoutMs?: number
  readonly proc?: string
  readonly keepalivedPath?: string
  readonly now?: () => Date
  readonly hostname?: () => string
  readonly stderr?: NodeJS.WriteStream
  /** --capture-seconds N [--iface IF]: a bounded capture.pcap once the rest is collected */
  readonly capture?: SnapshotCaptureOptions
}

export interface SnapshotSummary {
  readonly host: string
  readonly role: Role
  readonly output: string
  readonly kind: OutputKind
  readonly collectedAt: string
  /** time spent collecting (ms) */
  readonly durationMs: number
  readonly files: string[]
  readonly gaps: Gap[]
  readonly notes: string[]
  readonly iptablesBackend?: IptablesBackendInfo
  /** what the capture did, with --capture-seconds (its manifest record) */
  readonly capture?: CaptureRecord
}

export interface SnapshotResult {
  readonly collection: Collection
  readonly written: Written
  readonly summary: SnapshotSummary
}

/** The host name to use: --name as given (checked), else this host's name made safe for a directory. */
export function hostName(name: string | undefined, hostname: () => string = osHostname): string {
  if (name !== undefined) return checkHostName(name)
  const h = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64)
  return h === '' ? 'localhost' : h
}

export async function takeSnapshot(o: SnapshotOptions): Promise<SnapshotResult> {
  const host = hostName(o.name, o.hostname)
  const now = o.now ?? (() => new Date())
  const output = o.output ?? defaultOutputName(host, now())
  if (output === '') throw new UsageError('-o: expected a directory or a .tar.gz file name')
  checkOutput(output)
  const collection = await collect({
    host,
    role: o.role ?? 'auto',
    runner: o.runner,
    timeoutMs: o.timeoutMs,
    proc: o.proc,
    keepalivedPath: o.keepalivedPath,
    progress: o.progress,
    stderr: o.stderr,
    now,
    ...(o.capture ? {capture: o.capture} : {}),
  })
  const written = writeSnapshot(collection, output, o.version)
  return {
    collection,
    written,
    summary: {
      host,
      role: collection.role,
      output,
      kind: written.kind,
      collectedAt: collection.collectedAt,
      durationMs: collection.durationMs,
      files: written.files,
      gaps: collection.gaps,
      notes: collection.notes,
      ...(collection.iptablesBackend ? {iptablesBackend: collection.iptablesBackend} : {}),
      ...(collection.capture ? {capture: collection.capture} : {}),
    },
  }
}

/** One line per distinct gap (the three ipvsadm files usually share one), then the notes. */
export function gapLines(gaps: readonly Gap[], notes: readonly string[] = []): string[] {
  const byText = new Map<string, string[]>()
  for (const g of gaps) byText.set(g.gap, [...(byText.get(g.gap) ?? []), g.file])
  return [...[...byText].map(([gap, files]) => `gap  ${files.join(', ')}: ${gap}`), ...notes.map((n) => `note ${n}`)]
}

export interface RunSnapshotOptions extends SnapshotOptions {
  readonly json: boolean
  readonly out?: (s: string) => void
  readonly err?: (s: string) => void
}

/** The `snapshot` command without argv. Exit 2 when nothing at all could be collected. */
export async function runSnapshot(o: RunSnapshotOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  const r = await withCaptureSignal(o.capture, (capture) => takeSnapshot({...o, ...(capture ? {capture} : {}), progress: o.json ? 'silent' : (o.progress ?? 'auto')}))
  const s = r.summary
  const nothing = r.collection.files.size === 0
  if (o.json) out(JSON.stringify({tool: 'lvsdoctor', version: o.version, ...s}, null, 2) + '\n')
  else {
    const n = s.files.length - 1
    out(`snapshot of ${s.host} written to ${s.output} (${n} file${n === 1 ? '' : 's'} and manifest.json, collected in ${(s.durationMs / 1000).toFixed(2)} s)\n`)
    const c = s.capture
    if (c && !c.gap) out(`  capture.pcap: ${c.packets} packets on ${c.iface} in ${(c.durationMs / 1000).toFixed(1)} s, stopped by ${c.stoppedBy}${c.drops ? ` (${c.drops} dropped)` : ''}; filter: ${c.filter || 'none (no service found)'}\n`)
    for (const l of gapLines(s.gaps, s.notes)) out(`  ${l}\n`)
  }
  if (nothing) {
    err(`lvsdoctor: nothing could be collected on this host (every command failed; see the gaps in ${s.output}/manifest.json)\n`)
    return 2
  }
  return 0
}

/**
 * While a snapshot with a capture runs, Ctrl-C (SIGINT/SIGTERM) stops the capture and keeps what it has: the
 * snapshot is still written. A second one ends the process.
 */
async function withCaptureSignal<T>(capture: SnapshotCaptureOptions | undefined, run: (c: SnapshotCaptureOptions | undefined) => Promise<T>): Promise<T> {
  if (!capture || capture.signal) return run(capture)
  const ac = new AbortController()
  const onSignal = (sig: NodeJS.Signals): void => {
    if (ac.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143)
    ac.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    return await run({...capture, signal: ac.signal})
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
