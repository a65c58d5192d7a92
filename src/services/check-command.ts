// The `check` command without argv: load, check, render, exit code.
import {UsageError} from '../model/source.js'
import type {Severity} from '../model/finding.js'
import {checkExitCode} from './check.js'
import {checkWithCaptures, type CheckCaptureReport} from './check-capture.js'
import {renderJson} from '../render/json.js'
import {flowOptions, type FlowOptions} from './flow-options.js'

export interface CheckCommandOptions {
  format: 'text' | 'json' | 'markdown'
  failOn: Severity | 'none'
  ignore: string[]
  keep?: string
  /** `--vip IP:PORT` (repeatable), with `--proto` and `--client`: flows the rules also check */
  vips?: string[]
  proto?: 'tcp' | 'udp'
  client?: string
  /** with no paths: how to snapshot this host (tests pass a fake runner, a /proc of their own...) */
  live?: Omit<import('./snapshot.js').SnapshotOptions, 'output' | 'version'>
  version: string
  out?: (s: string) => void
  err?: (s: string) => void
}

export async function runCheck(paths: string[], o: CheckCommandOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  if (paths.length > 0 && o.keep !== undefined) throw new UsageError('--keep only applies without a SNAPSHOT argument (it keeps the live snapshot of this host)')
  // a mistyped --ignore id is a usage error before anything is collected
  const {RULES} = await import('../rules/index.js')
  for (const id of o.ignore) if (!RULES.some((r) => r.meta.id === id)) throw new UsageError(`--ignore ${id}: no such rule (rules: ${RULES.map((r) => r.meta.id).join(', ')})`)
  if (o.client !== undefined && !o.vips?.length) throw new UsageError('--client needs --vip (the flow it is the client of)')
  const flows = (o.vips ?? []).map((v) => flowOptions(v, o.proto ?? 'tcp', o.client, "check's rules read IPv4 services only"))
  // captures in the snapshots are analysed here (async); the rules themselves run synchronously
  const report = paths.length === 0 ? await checkLive(o, err, flows) : await checkWithCaptures(paths, {version: o.version, ignore: o.ignore, flows})
  // the human renderers (and chalk) are loaded only for the format asked for
  if (o.format === 'json') out(renderJson(report))
  else if (o.format === 'markdown') {
    const [{renderCheckMarkdown}, {renderCapturesMarkdown}] = await Promise.all([import('../render/check-markdown.js'), import('../render/check-captures.js')])
    out(renderCheckMarkdown(report) + renderCapturesMarkdown(report))
  } else {
    const [{renderCheckText}, {renderCapturesText}] = await Promise.all([import('../render/check-text.js'), import('../render/check-captures.js')])
    out(renderCheckText(report) + renderCapturesText(report))
  }
  for (const e of report.errors) err(`lvsdoctor: ${e.message}\n`)
  return checkExitCode(report, o.failOn)
}

/**
 * No SNAPSHOT: snapshot this host (read-only) into a temporary directory, or into --keep DIR, and check
 * that. Progress and gaps go to stderr (none under --json); the temporary snapshot is removed afterwards.
 */
async function checkLive(o: CheckCommandOptions, err: (s: string) => void, flows: readonly FlowOptions[]): Promise<CheckCaptureReport> {
  const {mkdtempSync, rmSync} = await import('node:fs')
  const {tmpdir} = await import('node:os')
  const {join} = await import('node:path')
  const {takeSnapshot, gapLines} = await import('./snapshot.js')
  const json = o.format === 'json'
  const temp = o.keep === undefined ? mkdtempSync(join(tmpdir(), 'lvsdoctor-live-')) : undefined
  const cleanup = () => {
    if (temp) rmSync(temp, {recursive: true, force: true})
  }
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup()
    process.exit(sig === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const snap = await takeSnapshot({...o.live, output: temp ?? o.keep, version: o.version, progress: json ? 'silent' : (o.live?.progress ?? 'auto')})
    if (!json) for (const l of gapLines(snap.summary.gaps, snap.summary.notes)) err(`lvsdoctor: ${l}\n`)
    if (snap.collection.files.size === 0) throw new UsageError('nothing could be collected on this host (every command failed)')
    const report = await checkWithCaptures([temp ?? o.keep!], {version: o.version, ignore: o.ignore, flows})
    // the report names where the snapshot is; a temporary one is gone when the report is read
    if (temp) for (const h of report.hosts) h.source = 'live'
    else if (!json) err(`lvsdoctor: snapshot kept in ${o.keep}\n`)
    return report
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    cleanup()
  }
}
