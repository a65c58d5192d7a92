// The `trace` command without argv: load, replay, (with --fix: apply check's fixes to copies and replay
// again), render, exit code.
import type {Finding} from '../model/finding.js'
import type {HostSnapshot} from '../model/snapshot.js'
import {UsageError} from '../model/source.js'
import {applyFixes, type FixOutcome} from '../dataplane/apply-fix.js'
import {loadSnapshots} from '../snapshot/store.js'
import {renderJson} from '../render/json.js'
import {renderTraceText} from '../render/trace-text.js'
import {flowOptions} from './flow-options.js'
import {connectionOk, traceConnection, traceToJson, type TraceOptions, type TraceResult} from './trace.js'

export interface TraceCommandOptions {
  vip: string
  proto: 'tcp' | 'udp'
  client?: string
  fix: boolean
  json: boolean
  out?: (s: string) => void
  err?: (s: string) => void
  /** the rule engine, injectable for tests (default: runRules of src/rules/index.ts) */
  findings?: (hosts: readonly HostSnapshot[], flow: TraceOptions) => Promise<Finding[]> | Finding[]
}

export interface FixedTrace {
  readonly result: TraceResult
  readonly outcomes: readonly FixOutcome[]
}

/** Parses --vip and --client; a bad value is a UsageError (exit 2). */
export function traceOptions(vip: string, proto: 'tcp' | 'udp', client?: string): TraceOptions {
  return flowOptions(vip, proto, client, 'trace replays IPv4 connections only')
}

/** Applies every finding's fix commands to copies of the hosts they name and replays again. */
export async function traceWithFixes(hosts: readonly HostSnapshot[], o: TraceOptions, findings: readonly Finding[]): Promise<FixedTrace> {
  const byHost = new Map<string, string[]>()
  const outcomes: FixOutcome[] = []
  for (const f of findings) {
    for (const c of f.fix?.commands ?? []) {
      if (!hosts.some((h) => h.name === f.host)) {
        outcomes.push({host: f.host, command: c, applied: false, reason: `no snapshot named ${f.host}`})
        continue
      }
      const list = byHost.get(f.host) ?? []
      list.push(c)
      byHost.set(f.host, list)
    }
  }
  const copies = hosts.map((h) => {
    const cmds = byHost.get(h.name)
    if (!cmds) return h
    const r = applyFixes(h, cmds)
    outcomes.push(...r.outcomes)
    return r.host
  })
  return {result: traceConnection(copies, o), outcomes}
}

/** check's findings, told which flow is traced (a MARK for another port is then a finding too) */
async function defaultFindings(hosts: readonly HostSnapshot[], flow: TraceOptions): Promise<Finding[]> {
  const {runRules} = await import('../rules/index.js')
  return runRules({hosts, flows: [{vip: flow.vip, proto: flow.proto, client: flow.client, clientPort: flow.clientPort}]})
}

export async function runTrace(paths: string[], o: TraceCommandOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  if (paths.length === 0) throw new UsageError('trace needs at least one snapshot (a directory, .tar.gz or file per host)')
  const opts = traceOptions(o.vip, o.proto, o.client)
  const hosts = loadSnapshots(paths)
  for (const h of hosts) for (const e of h.errors) err(`lvsdoctor: ${e.message}\n`)
  const before = traceConnection(hosts, opts)
  let fixed: FixedTrace | undefined
  if (o.fix) fixed = await traceWithFixes(hosts, opts, await (o.findings ?? defaultFindings)(hosts, opts))
  if (o.json) {
    const json: Record<string, unknown> = traceToJson(before)
    json.fixed = fixed ? {...traceToJson(fixed.result), fixes: fixed.outcomes} : null
    out(renderJson(json))
  } else {
    out(renderTraceText(before, fixed ? 'before the fixes' : 'trace'))
    if (fixed) {
      out('\n')
      const applied = fixed.outcomes.filter((x) => x.applied)
      const not = fixed.outcomes.filter((x) => !x.applied)
      out(`fixes applied to copies of the snapshots (the hosts are not touched): ${applied.length}\n`)
      for (const a of applied) out(`  ${a.host}: ${a.command}\n`)
      for (const n of not) out(`  not applied on ${n.host}: ${n.command}\n    (${n.reason})\n`)
      if (fixed.outcomes.length === 0) out('  check found nothing to fix\n')
      out('\n' + renderTraceText(fixed.result, 'after the fixes'))
    }
  }
  const final = fixed ? fixed.result : before
  return connectionOk(final) ? 0 : 1
}
