// The `check` command without argv: load, check, render, exit code.
import {UsageError} from '../model/source.js'
import type {Severity} from '../model/finding.js'
import {checkExitCode, checkPaths} from './check.js'
import {renderJson} from '../render/json.js'
import {renderCheckText} from '../render/check-text.js'

export interface CheckCommandOptions {
  format: 'text' | 'json' | 'markdown'
  failOn: Severity | 'none'
  ignore: string[]
  keep?: string
  version: string
  out?: (s: string) => void
  err?: (s: string) => void
}

export async function runCheck(paths: string[], o: CheckCommandOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  if (paths.length === 0) throw new UsageError('no snapshot given (live snapshot of this host is not available in this build)')
  const report = checkPaths(paths, {version: o.version, ignore: o.ignore})
  if (o.format === 'json') out(renderJson(report))
  else if (o.format === 'markdown') {
    const {renderCheckMarkdown} = await import('../render/check-markdown.js')
    out(renderCheckMarkdown(report))
  } else out(renderCheckText(report))
  for (const e of report.errors) err(`lvsdoctor: ${e.message}\n`)
  return checkExitCode(report, o.failOn)
}
